"""``aiconfig infer --config FILE``: run the configured backend over input, with telemetry.

Backends (``inference.backend``):

* ``torch`` -- frames from ``--frames`` (a ``.npy`` of uint8 ``(N, H, W, 3)`` or a video) or
  ``--synthetic N`` seeded random frames, through ``model.checkpoint`` (a ``torch.export``
  ``.pt2``) or the built-in seeded demo policy; one call per frame.
* ``vllm`` -- prompts from ``--prompt`` (repeatable) or ``--prompts FILE`` (one a line) sent to
  the external sidecar after a preflight (``--skip-preflight`` to skip); ``--completion`` uses
  ``/v1/completions`` instead of chat, ``--stream`` streams.

stdout gets one JSON line per call and a last ``{"summary": ...}`` line (with ``--log-json``:
``infer.call`` and ``infer.summary`` log events instead). The run (docs/harness.md) also writes
``OUT/calls.jsonl``, ``OUT/summary.json``, the telemetry files and ``OUT/manifest.json``; OUT is
``--out`` / ``AP_OUT_DIR``, or ``runs/infer/<run id>``. The ready file is written once the
backend is up (sidecar preflight passed, or the model warmed up). Exit 0 when every call
succeeded, 1 when any was refused, ran past its budget or failed (the summary says which).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..harness.settings import add_run_arguments
from ._common import add_trust_options, load_from_args


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "infer",
        help="run the configured inference backend over frames or prompts, with telemetry",
        description="Run inference.backend of a config over input under its latency budget, "
        "bounded concurrency and queue, with the config's monitoring. One JSON line per call "
        "on stdout, then a summary line; exit 1 if any call failed.",
    )
    p.add_argument("--config", required=True, metavar="FILE")
    src = p.add_argument_group("input (torch)")
    src.add_argument("--frames", metavar="PATH", help=".npy uint8 (N,H,W,3) or a video file")
    src.add_argument("--synthetic", type=int, metavar="N", help="N seeded random frames")
    llm = p.add_argument_group("input (vllm)")
    llm.add_argument("--prompt", action="append", default=[], metavar="TEXT")
    llm.add_argument("--prompts", metavar="FILE", help="one prompt a line")
    llm.add_argument("--completion", action="store_true", help="use /v1/completions, not chat")
    llm.add_argument("--stream", action="store_true", help="stream tokens (SSE)")
    llm.add_argument("--skip-preflight", action="store_true", help="do not check the sidecar")
    run_g = p.add_argument_group("run")
    run_g.add_argument(
        "--in-flight",
        type=int,
        metavar="K",
        help="calls outstanding at once (default inference.max_concurrency; above "
        "max_concurrency + max_queue the excess is refused, by design)",
    )
    run_g.add_argument("--budget-ms", type=float, metavar="MS", help="override the budget")
    add_run_arguments(
        p, out_default="runs/infer"
    )  # --run-id --out --no-network --log-json --ready-file ...
    add_trust_options(p, data_root=False)
    p.set_defaults(run=run)


def _fail(message: str) -> Exception:
    from .._errors import AiconfigError

    return AiconfigError(message)


def _usage(message: str, hint: str = "see aiconfig infer --help") -> Exception:
    """Flags that contradict each other or the config's backend: exit 2."""
    from .._errors import UsageError

    return UsageError(message, hint=hint)


def _read_prompts(args: argparse.Namespace) -> list[str]:
    from .._errors import ConfigFileError

    prompts = list(args.prompt)
    if args.prompts:
        try:
            with open(args.prompts, encoding="utf-8") as fh:
                prompts += [line.rstrip("\n") for line in fh if line.strip()]
        except OSError as exc:
            raise ConfigFileError(
                f"cannot read prompts: {exc.strerror}", file=args.prompts
            ) from None
    if not prompts:
        raise _usage(
            "inference.backend is 'vllm': it needs prompts",
            hint="give --prompt TEXT or --prompts FILE",
        )
    return prompts


def _settings(args: argparse.Namespace) -> Any:
    """Run settings; without ``--out``/``AP_OUT_DIR`` each run gets ``runs/infer/<run id>``."""
    import dataclasses
    from pathlib import Path

    from ..harness.settings import resolve_settings

    settings = resolve_settings(args, "infer", default_out=Path("runs") / "infer")
    if settings.sources.get("out") != "default":
        return settings
    out = settings.out_dir / settings.run_id
    run_dir = settings.run_dir if os.environ.get("HYPERVISOR_RUN_DIR") else out.parent
    return dataclasses.replace(settings, out_dir=out, run_dir=run_dir)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import importlib.util
    import json
    import time

    from .._files import atomic_write_json
    from ..harness.context import RunContext

    settings = _settings(args)  # bad run settings are refused before anything else
    if args.in_flight is not None and args.in_flight < 1:
        raise _fail("--in-flight must be >= 1")
    if args.budget_ms is not None and args.budget_ms <= 0:
        raise _fail("--budget-ms must be > 0")
    if args.synthetic is not None and args.synthetic < 1:
        raise _fail("--synthetic must be >= 1")
    load_start = time.time_ns()
    cfg = load_from_args(args.config, args)
    load_end = time.time_ns()
    inf = cfg.inference
    if inf.backend == "vllm":
        items: list[Any] = _read_prompts(args)
        preload: tuple[str, ...] = ()
    else:
        if args.prompt or args.prompts:
            raise _usage(
                "inference.backend is 'torch': it takes frames, not prompts (--prompt/--prompts)",
                hint="give --frames PATH or --synthetic N (or fork the config with "
                "inference.backend=vllm)",
            )
        if bool(args.frames) == bool(args.synthetic):
            raise _usage(
                "the torch backend needs exactly one of --frames PATH or --synthetic N",
                hint="give one of them",
            )
        if importlib.util.find_spec("torch") is None:
            raise _fail(
                "inference.backend is 'torch' but PyTorch is not installed: "
                "pip install torch==2.13.0 (CPU build) or pip install 'aiconfig[torch]'"
            )
        items = []
        # Under the budget's thread settings and counted by its memory headroom check.
        preload = ("numpy", "torch")

    ctx = RunContext(settings, preload=preload)
    with ctx as run:
        from ..inference.runner import run_calls, summarize
        from ..monitoring import setup_for_run

        prov = cfg.provenance
        run.set_config(
            sha256=prov.sha256 or "",
            signers=[s.principal for s in prov.signers],
            path=prov.path,
        )
        telemetry = setup_for_run(cfg, run_id=run.run_id, out_dir=run.out_dir)
        telemetry.record_config_load(cfg, load_start, load_end)
        observers = (telemetry.alerts,) if telemetry.alerts is not None else ()
        kw: dict[str, Any] = {
            "tracer_provider": telemetry.tracer_provider,
            "meter_provider": telemetry.meter_provider,
            "observers": observers,
        }
        calls_path = run.out_dir / "calls.jsonl"

        async def main(calls: Any) -> Any:
            def emit(rec: Any) -> None:
                row = rec.to_dict()
                line = json.dumps(row, default=str)
                calls.write(line + "\n")  # streamed to disk, one line per call
                if run.settings.log_json:
                    run.log.info("infer.call", **json.loads(line))
                else:
                    sys.stdout.write(line + "\n")

            tracer = telemetry.tracer("aiconfig.cli")
            with tracer.start_as_current_span(
                "aiconfig infer", attributes={"aiconfig.inference.backend": inf.backend}
            ):
                if inf.backend == "vllm":
                    interface, call, render = await _vllm(cfg, args, kw)
                    todo = items
                else:
                    interface, call, render, todo = _torch(cfg, args, kw)
                run.mark_ready(backend=inf.backend, model=interface.name, calls=len(todo))
                budget = args.budget_ms or inf.latency_budget_ms
                t0 = time.perf_counter()
                try:
                    records = await run_calls(
                        call,
                        todo,
                        in_flight=args.in_flight or inf.max_concurrency,
                        render=render,
                        on_record=emit,
                    )
                finally:
                    await interface.aclose()
                return summarize(
                    records,
                    backend=inf.backend,
                    model=interface.name,
                    budget_ms=budget,
                    wall_s=time.perf_counter() - t0,
                )

        try:
            with calls_path.open("w", encoding="utf-8", buffering=1) as calls:
                summary = asyncio.run(main(calls))
        finally:
            telemetry.shutdown()
        body = summary.to_dict()
        atomic_write_json(run.out_dir / "summary.json", body)
        run.set_extra(infer=body)
        if run.settings.log_json:
            run.log.info("infer.summary", **body)
        else:
            sys.stdout.write(json.dumps({"summary": body}) + "\n")
        failed = summary.calls - summary.ok
        if failed:
            raise _fail(
                f"{failed} of {summary.calls} calls failed ({summary.overloaded} overloaded, "
                f"{summary.budget_exceeded} over budget, {summary.errors} errors)"
            )
    return 0


async def _vllm(cfg: Any, args: argparse.Namespace, kw: dict[str, Any]) -> Any:
    from ..inference import VLLMClient, ensure_ready

    if not args.skip_preflight:
        await ensure_ready(cfg.inference.vllm)
    client = VLLMClient.from_config(cfg.inference, **kw)
    budget = args.budget_ms

    async def call(prompt: str) -> Any:
        if args.completion:
            return await client.complete(prompt, stream=args.stream, budget_ms=budget)
        return await client.chat(prompt, stream=args.stream, budget_ms=budget)

    def render(gen: Any) -> Any:
        return {
            "text": gen.text,
            "model": gen.model,
            "finish_reason": gen.finish_reason,
            "output_tokens": gen.output_tokens,
        }

    return client, call, render


def _torch(cfg: Any, args: argparse.Namespace, kw: dict[str, Any]) -> Any:
    import numpy as np

    from ..inference import TorchModelInterface, preprocess_frames
    from ..inference._policy import build_policy, load_frames

    inf = cfg.inference
    size = tuple(cfg.model.input_resolution)
    if args.frames:
        frames = load_frames(args.frames)
    else:
        rng = np.random.default_rng(inf.seed)
        frames = rng.integers(0, 256, size=(args.synthetic, size[1], size[0], 3), dtype=np.uint8)
    net = build_policy(cfg.model, inf.seed)
    interface: Any = None

    def preprocess(frame: Any) -> Any:
        return preprocess_frames(frame, size=size, device=interface.device)

    interface = TorchModelInterface.from_config(
        net, inf, name=cfg.model.name, preprocess=preprocess, **kw
    )
    interface.warmup(frames[0], runs=2 if inf.compile else 1)
    actions = cfg.model.action_space

    def render(logits: Any) -> Any:
        row = logits.reshape(-1).tolist()
        best = max(range(len(row)), key=row.__getitem__)
        action = actions[best] if best < len(actions) else best
        return {"action": action, "logits": [round(v, 6) for v in row]}

    async def call(frame: Any) -> Any:
        return await interface.infer(frame, budget_ms=args.budget_ms)

    return interface, call, render, list(frames)
