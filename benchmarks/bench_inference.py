"""Inference wrapper benchmarks; prints one JSON object.

1. ``overhead``: the cost of ``await TorchModelInterface.infer(x)`` over a bare ``model(x)`` for a
   small Torch model (Linear 64->64->8, batch 1), telemetry ON (SDK providers from
   ``setup_telemetry`` with the JSON-lines exporter, every span sampled), for the inline and the
   thread-offload modes, inline with 10% trace sampling, and inline with no SDK at all (the
   wrapper alone) for reference. Bare and wrapped
   calls are measured in alternating blocks in the same run; the target is p50 overhead <= 50 us.
2. ``overload``: open-loop arrivals at 2x the model's capacity (capacity = max_concurrency /
   compute time). Compute is a ``time.sleep`` inside ``forward`` so the scheduler, not CPU
   contention on a shared machine, is what is measured. Reports p99 of accepted calls against
   the budget (ratio), how many were refused, and how long a refusal took.

Run: ``python benchmarks/bench_inference.py [--quick]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/<name>.py`: import this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from aiconfig import MonitoringConfig
from aiconfig.inference import LatencyBudgetExceeded, Overloaded, TorchModelInterface
from aiconfig.inference.runner import percentile
from aiconfig.monitoring import setup_telemetry


def small_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8))


def stats_us(ns: list[int]) -> dict[str, float]:
    us = [v / 1000 for v in ns]
    return {
        "p50_us": round(statistics.median(us), 2),
        "p99_us": round(float(percentile(us, 99) or 0.0), 2),
        "n": len(us),
    }


async def _wrapped_block(m: TorchModelInterface, x: torch.Tensor, n: int) -> list[int]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        await m.infer(x)
        out.append(time.perf_counter_ns() - t0)
    return out


def _bare_block(model: torch.nn.Module, x: torch.Tensor, n: int) -> list[int]:
    out = []
    with torch.inference_mode():
        for _ in range(n):
            t0 = time.perf_counter_ns()
            model(x)
            out.append(time.perf_counter_ns() - t0)
    return out


def bench_overhead(blocks: int, per_block: int, tmp: Path) -> dict[str, Any]:
    torch.set_num_threads(1)
    model = small_model()
    x = torch.randn(1, 64)
    tel = setup_telemetry(
        MonitoringConfig(exporters=("jsonl",), jsonl_path=str(tmp / "bench.jsonl")),
        run_id="bench",
    )
    kw: dict[str, Any] = {
        "tracer_provider": tel.tracer_provider,
        "meter_provider": tel.meter_provider,
        "observers": (tel.alerts,),
    }
    common: dict[str, Any] = {
        "device": "cpu",
        "latency_budget_ms": 1_000,
        "max_concurrency": 1,
        "max_queue": 64,
    }
    sampled = setup_telemetry(
        MonitoringConfig(
            exporters=("jsonl",), jsonl_path=str(tmp / "bench10.jsonl"), sample_ratio=0.1
        ),
        run_id="bench",
    )
    kw10: dict[str, Any] = {
        "tracer_provider": sampled.tracer_provider,
        "meter_provider": sampled.meter_provider,
        "observers": (sampled.alerts,),
    }
    modes = ("inline", "offload", "inline_sampled_10pct", "inline_no_sdk")
    results: dict[str, list[int]] = {"bare": [], **{m: [] for m in modes}}

    async def run() -> None:
        inline = TorchModelInterface(model, name="bench", offload=False, **common, **kw)
        offload = TorchModelInterface(model, name="bench", offload=True, **common, **kw)
        plain = TorchModelInterface(model, name="bench", offload=False, **common)
        tenth = TorchModelInterface(model, name="bench", offload=False, **common, **kw10)
        for m in (inline, offload, plain, tenth):  # warm-up
            await _wrapped_block(m, x, 200)
        _bare_block(model, x, 200)
        for _ in range(blocks):
            results["bare"] += _bare_block(model, x, per_block)
            results["inline"] += await _wrapped_block(inline, x, per_block)
            results["bare"] += _bare_block(model, x, per_block)
            results["offload"] += await _wrapped_block(offload, x, per_block)
            results["bare"] += _bare_block(model, x, per_block)
            results["inline_no_sdk"] += await _wrapped_block(plain, x, per_block)
            results["bare"] += _bare_block(model, x, per_block)
            results["inline_sampled_10pct"] += await _wrapped_block(tenth, x, per_block)
        await offload.aclose()

    asyncio.run(run())
    tel.shutdown()
    sampled.shutdown()
    bare = statistics.median(results["bare"]) / 1000
    out: dict[str, Any] = {"bare_model_call": stats_us(results["bare"])}
    for mode in modes:
        s = stats_us(results[mode])
        s["overhead_p50_us"] = round(s["p50_us"] - bare, 2)
        s["ratio_p50_vs_bare"] = round(s["p50_us"] / bare, 2)
        out[mode] = s
    out["target_overhead_p50_us"] = 50.0
    out["meets_target_inline_telemetry_on"] = out["inline"]["overhead_p50_us"] <= 50.0
    out["meets_target_offload_telemetry_on"] = out["offload"]["overhead_p50_us"] <= 50.0
    return out


class SleepModel(torch.nn.Module):
    def __init__(self, compute_s: float) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(8, 8)
        self.compute_s = compute_s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.compute_s)
        out: torch.Tensor = self.lin(x)
        return out


def bench_overload(duration_s: float, tmp: Path) -> dict[str, Any]:
    compute_ms, conc, queue, budget_ms = 4.0, 2, 4, 40.0
    capacity_per_s = conc * 1000.0 / compute_ms
    rate = 2 * capacity_per_s
    tel = setup_telemetry(
        MonitoringConfig(exporters=("jsonl",), jsonl_path=str(tmp / "overload.jsonl")),
        run_id="bench-overload",
    )
    m = TorchModelInterface(
        SleepModel(compute_ms / 1000),
        name="overload",
        device="cpu",
        latency_budget_ms=budget_ms,
        max_concurrency=conc,
        max_queue=queue,
        tracer_provider=tel.tracer_provider,
        meter_provider=tel.meter_provider,
    )
    x = torch.ones(1, 8)
    accepted: list[float] = []
    refused_ns: list[int] = []
    over_budget: list[str] = []

    async def one() -> None:
        t0 = time.perf_counter_ns()
        try:
            r = await m.infer(x)
        except Overloaded:
            refused_ns.append(time.perf_counter_ns() - t0)
        except LatencyBudgetExceeded as exc:
            over_budget.append(exc.phase)
        else:
            accepted.append(r.total_ms)

    async def run() -> int:
        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks: list[asyncio.Task[None]] = []
        sent = 0
        while (now := loop.time()) - start < duration_s:
            due = int((now - start) * rate)
            while sent < due:  # open loop: arrivals do not wait for completions
                tasks.append(asyncio.create_task(one()))
                sent += 1
            await asyncio.sleep(0.0005)
        await asyncio.gather(*tasks)
        return sent

    sent = asyncio.run(run())
    asyncio.run(m.aclose())
    tel.shutdown()
    offered = len(accepted) + len(refused_ns) + len(over_budget)
    assert offered == sent
    p99 = percentile(accepted, 99) or 0.0
    return {
        "compute_ms": compute_ms,
        "max_concurrency": conc,
        "max_queue": queue,
        "budget_ms": budget_ms,
        "capacity_per_s": capacity_per_s,
        "offered_per_s": round(sent / duration_s, 1),
        "offered_vs_capacity": round(sent / duration_s / capacity_per_s, 2),
        "calls": offered,
        "accepted": len(accepted),
        "refused_overloaded": len(refused_ns),
        "budget_exceeded": len(over_budget),
        "budget_exceeded_phases": sorted(set(over_budget)),
        "accepted_p50_ms": round(percentile(accepted, 50) or 0.0, 3),
        "accepted_p99_ms": round(p99, 3),
        "accepted_max_ms": round(max(accepted, default=0.0), 3),
        "accepted_p99_vs_budget": round(p99 / budget_ms, 3),
        "refusal_p50_us": round((percentile(refused_ns, 50) or 0) / 1000, 2),
        "refusal_p99_us": round((percentile(refused_ns, 99) or 0) / 1000, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = parser.parse_args()
    blocks, per_block, duration = (2, 300, 1.0) if args.quick else (6, 1000, 3.0)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="aiconfig-bench-") as tmp:
        result: dict[str, Any] = {
            "benchmark": "aiconfig.inference",
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpus": os.cpu_count(),
            "overhead": bench_overhead(blocks, per_block, Path(tmp)),
            "overload_2x": bench_overload(duration, Path(tmp)),
        }
    # A shared machine: the load says how much to trust absolute microseconds (ratios hold up).
    result["loadavg_1min_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
