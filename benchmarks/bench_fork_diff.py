"""Fork (merge + validate) and diff of a 2000-leaf config, against OmegaConf and raw DeepDiff.

Prints one JSON object: median milliseconds per operation and ratios, all measured in this run
on the same data. Run: ``python benchmarks/bench_fork_diff.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/<name>.py`: import this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiconfig import AIConfig, diff_configs, fork_for_experiment
from aiconfig._loader import load_unverified_bytes

ROOT = Path(__file__).resolve().parents[1]
OVERRIDES: dict[str, Any] = {
    "training.lr": 1e-3,
    "training.batch_size": 128,
    "training.epochs": 5,
    "training.optimizer.weight_decay": 0.05,
    "model.dropout": 0.2,
    "model.num_layers": 8,
    "inference.latency_budget_ms": 40.0,
    "capture.preset": "veryfast",
    "monitoring.resource_attributes.k7": "changed",
    "monitoring.latency_thresholds_ms.m3": 99.0,
}


def big_config() -> AIConfig:
    data = (ROOT / "experiments" / "baseline.yaml").read_bytes()
    base = load_unverified_bytes(data, "baseline.yaml", env={})
    dump = base.model_dump()
    dump["monitoring"]["resource_attributes"] = {f"k{i}": f"v{i}" for i in range(1000)}
    dump["monitoring"]["latency_thresholds_ms"] = {f"m{i}": float(i + 1) for i in range(914)}
    return AIConfig.model_validate(dump)


def leaves(node: Any) -> int:
    if isinstance(node, dict):
        return sum(leaves(v) for v in node.values())
    return 1


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1e3, 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=30)
    repeat = parser.parse_args().repeat

    from deepdiff import DeepDiff
    from omegaconf import OmegaConf

    base = big_config()
    fork = fork_for_experiment(base, "bench", OVERRIDES)
    plain = base.model_dump(mode="json")
    omega_base = OmegaConf.create(plain)
    dotlist = [f"{k}={v}" for k, v in OVERRIDES.items()]

    def omegaconf_fork() -> AIConfig:
        merged = OmegaConf.merge(omega_base, OmegaConf.from_dotlist(dotlist))
        data = OmegaConf.to_container(merged, resolve=True)
        return AIConfig.model_validate(data)

    fork_plain = fork.model_dump(mode="json")
    changes, _ = diff_configs(base, fork)
    raw = DeepDiff(plain, fork_plain, verbose_level=2, threshold_to_diff_deeper=0)
    results = {
        "leaves": leaves(plain),
        "overrides": len(OVERRIDES),
        "repeat": repeat,
        "fork_merge_validate_ms": median_ms(
            lambda: fork_for_experiment(base, "bench", OVERRIDES), repeat
        ),
        "omegaconf_merge_resolve_validate_ms": median_ms(omegaconf_fork, repeat),
        "diff_ms": median_ms(lambda: diff_configs(base, fork), repeat),
        "raw_deepdiff_ms": median_ms(
            lambda: DeepDiff(plain, fork_plain, verbose_level=2, threshold_to_diff_deeper=0),
            max(3, repeat // 3),
        ),
        "diff_changes_found": len(changes) + len(diff_configs(base, fork)[1]),
        "raw_deepdiff_changes_found": sum(len(v) for v in raw.values()),
    }
    results["omegaconf_over_fork_ratio"] = round(
        results["omegaconf_merge_resolve_validate_ms"] / results["fork_merge_validate_ms"], 1
    )
    results["raw_deepdiff_over_diff_ratio"] = round(
        results["raw_deepdiff_ms"] / results["diff_ms"], 1
    )
    results["targets_ms"] = {"fork": 5.0, "diff": 30.0}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
