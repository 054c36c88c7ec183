"""The infer job: run ``inference.backend`` of a loaded config over input, as a harness run.

``aiconfig infer`` parses its flags into an :class:`InferRequest`, loads the config, calls
:func:`run_infer_job` and formats what it returns. The job (docs/inference.md, "aiconfig
infer"): run settings from the harness, a :class:`~aiconfig.harness.context.RunContext`
(output directory, ready file, budgets, manifest), telemetry from the config (through the
``telemetry`` factory the caller passes -- ``aiconfig.monitoring.setup_for_run``; inference
never imports monitoring), then one call per frame or prompt through
:func:`~aiconfig.inference.runner.run_calls`. Each call is streamed to ``OUT/calls.jsonl`` and
to ``emit`` (or as ``infer.call`` log events with ``--log-json``); the summary goes to
``OUT/summary.json`` and the manifest, with what came from ``OTEL_*`` in the manifest's
``telemetry`` and ``provenance`` records.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from aiconfig import AiconfigError, ConfigFileError, UsageError

from .runner import CallRecord, RunSummary, run_calls, summarize

if TYPE_CHECKING:
    from opentelemetry import trace

    from aiconfig import AIConfig
    from aiconfig.harness.context import RunContext
    from aiconfig.harness.settings import RunSettings

__all__ = ["InferRequest", "JobTelemetry", "read_prompts", "run_infer_job"]


@dataclass(frozen=True)
class InferRequest:
    """What to run: frames (torch) or prompts (vllm), and how (``aiconfig infer``'s flags)."""

    frames: str | None = None
    synthetic: int | None = None
    prompts: tuple[str, ...] = ()
    completion: bool = False
    stream: bool = False
    skip_preflight: bool = False
    in_flight: int | None = None
    budget_ms: float | None = None

    def __post_init__(self) -> None:
        # Checked when the flags are parsed, before the config loads.
        if self.in_flight is not None and self.in_flight < 1:
            raise AiconfigError("--in-flight must be >= 1")
        if self.budget_ms is not None and self.budget_ms <= 0:
            raise AiconfigError("--budget-ms must be > 0")
        if self.synthetic is not None and self.synthetic < 1:
            raise AiconfigError("--synthetic must be >= 1")

    def check(self, backend: str) -> None:
        """Refuse a request the config's backend cannot run (a usage error: exit 2)."""
        if backend == "vllm":
            if not self.prompts:
                raise UsageError(
                    "inference.backend is 'vllm': it needs prompts",
                    hint="give --prompt TEXT or --prompts FILE",
                )
            return
        if self.prompts:
            raise UsageError(
                "inference.backend is 'torch': it takes frames, not prompts (--prompt/--prompts)",
                hint="give --frames PATH or --synthetic N (or fork the config with "
                "inference.backend=vllm)",
            )
        if bool(self.frames) == bool(self.synthetic):
            raise UsageError(
                "the torch backend needs exactly one of --frames PATH or --synthetic N",
                hint="give one of them",
            )
        if importlib.util.find_spec("torch") is None:
            raise AiconfigError(
                "inference.backend is 'torch' but PyTorch is not installed: "
                "pip install torch==2.13.0 (CPU build) or pip install 'aiconfig[torch]'"
            )


def read_prompts(prompts: list[str], path: str | None) -> tuple[str, ...]:
    """``--prompt`` values plus the non-empty lines of ``--prompts FILE``."""
    out = list(prompts)
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                out += [line.rstrip("\n") for line in fh if line.strip()]
        except OSError as exc:
            raise ConfigFileError(f"cannot read prompts: {exc.strerror}", file=path) from None
    return tuple(out)


class JobTelemetry(Protocol):
    """What the job needs of ``aiconfig.monitoring.Telemetry``."""

    tracer_provider: Any
    meter_provider: Any
    alerts: Any

    def tracer(self, name: str) -> trace.Tracer: ...
    def record_config_load(self, cfg: AIConfig, start_ns: int, end_ns: int) -> None: ...
    def env_record(self) -> dict[str, Any]: ...
    def shutdown(self) -> None: ...


TelemetryFactory = Callable[..., JobTelemetry]


def run_infer_job(
    cfg: AIConfig,
    settings: RunSettings,
    request: InferRequest,
    *,
    telemetry: TelemetryFactory,
    loaded_ns: tuple[int, int] | None = None,
    emit: Callable[[str], Any] | None = None,
) -> RunSummary:
    """Run the job; returns the summary. Raises :class:`AiconfigError` if any call failed.

    ``telemetry(cfg, run_id=..., out_dir=...)`` builds the run's telemetry; ``loaded_ns`` is
    when the config load started and ended (``time.time_ns()``), recorded as a span;
    ``emit`` receives one JSON line per call and a last ``{"summary": ...}`` line in human
    mode (with ``--log-json`` they are ``infer.call`` / ``infer.summary`` log events).
    """
    from aiconfig.harness.context import RunContext

    request.check(cfg.inference.backend)
    preload = ("numpy", "torch") if cfg.inference.backend == "torch" else ()
    # Under the budget's thread settings and counted by its memory headroom check.
    with RunContext(settings, preload=preload) as run:
        _record_config(run, cfg)
        tel = telemetry(cfg, run_id=run.run_id, out_dir=run.out_dir)
        otel = tel.env_record()
        run.set_extra(
            telemetry={"otel_env": otel},
            provenance={**cfg.provenance.to_dict(), "otel_env": otel["variables"]},
        )
        if loaded_ns is not None:
            tel.record_config_load(cfg, *loaded_ns)
        try:
            with (run.out_dir / "calls.jsonl").open("w", encoding="utf-8", buffering=1) as calls:
                summary = asyncio.run(_run(cfg, request, run, tel, _writer(run, calls, emit)))
        finally:
            tel.shutdown()
        _write_summary(run, summary, emit)
        failed = summary.calls - summary.ok
        if failed:
            raise AiconfigError(
                f"{failed} of {summary.calls} calls failed ({summary.overloaded} overloaded, "
                f"{summary.budget_exceeded} over budget, {summary.errors} errors)"
            )
    return summary


def _record_config(run: RunContext, cfg: AIConfig) -> None:
    prov = cfg.provenance
    run.set_config(
        sha256=prov.sha256 or "",
        signers=[s.principal for s in prov.signers],
        path=prov.path,
        emergency=prov.emergency,
    )


def _writer(
    run: RunContext, calls: Any, emit: Callable[[str], Any] | None
) -> Callable[[CallRecord], None]:
    def write(rec: CallRecord) -> None:
        line = json.dumps(rec.to_dict(), default=str)
        calls.write(line + "\n")  # streamed to disk, one line per call
        if run.settings.log_json:
            run.log.info("infer.call", **json.loads(line))
        elif emit is not None:
            emit(line + "\n")

    return write


def _write_summary(run: RunContext, summary: RunSummary, emit: Callable[[str], Any] | None) -> None:
    from aiconfig._files import atomic_write_json

    body = summary.to_dict()
    atomic_write_json(run.out_dir / "summary.json", body)
    run.set_extra(infer=body)
    if run.settings.log_json:
        run.log.info("infer.summary", **body)
    elif emit is not None:
        emit(json.dumps({"summary": body}) + "\n")


async def _run(
    cfg: AIConfig,
    request: InferRequest,
    run: RunContext,
    tel: JobTelemetry,
    on_record: Callable[[CallRecord], None],
) -> RunSummary:
    """Bring the backend up (ready file), run every call, close the backend."""
    inf = cfg.inference
    kw: dict[str, Any] = {
        "tracer_provider": tel.tracer_provider,
        "meter_provider": tel.meter_provider,
        "observers": (tel.alerts,) if tel.alerts is not None else (),
    }
    with tel.tracer("aiconfig.cli").start_as_current_span(
        "aiconfig infer", attributes={"aiconfig.inference.backend": inf.backend}
    ):
        if inf.backend == "vllm":
            interface, call, render = await _vllm(cfg, request, kw)
            todo: list[Any] = list(request.prompts)
        else:
            interface, call, render, todo = _torch(cfg, request, kw)
        run.mark_ready(backend=inf.backend, model=interface.name, calls=len(todo))
        t0 = time.perf_counter()
        try:
            records = await run_calls(
                call,
                todo,
                in_flight=request.in_flight or inf.max_concurrency * inf.max_batch_size,
                render=render,
                on_record=on_record,
            )
        finally:
            await interface.aclose()
    return summarize(
        records,
        backend=inf.backend,
        model=interface.name,
        budget_ms=request.budget_ms or inf.latency_budget_ms,
        wall_s=time.perf_counter() - t0,
    )


async def _vllm(cfg: AIConfig, request: InferRequest, kw: dict[str, Any]) -> Any:
    from ._vllm import VLLMClient
    from .sidecar import ensure_ready

    if not request.skip_preflight:
        await ensure_ready(cfg.inference.vllm)
    client = VLLMClient.from_config(cfg.inference, **kw)
    budget = request.budget_ms

    async def call(prompt: str) -> Any:
        if request.completion:
            return await client.complete(prompt, stream=request.stream, budget_ms=budget)
        return await client.chat(prompt, stream=request.stream, budget_ms=budget)

    def render(gen: Any) -> Any:
        return {
            "text": gen.text,
            "model": gen.model,
            "finish_reason": gen.finish_reason,
            "output_tokens": gen.output_tokens,
        }

    return client, call, render


def _torch(cfg: AIConfig, request: InferRequest, kw: dict[str, Any]) -> Any:
    import numpy as np

    from ._policy import build_policy, load_frames
    from ._torch import TorchModelInterface, preprocess_frames

    inf = cfg.inference
    w, h = cfg.model.input_resolution
    if request.frames:
        frames = load_frames(Path(request.frames))
    else:
        rng = np.random.default_rng(inf.seed)
        frames = rng.integers(0, 256, size=(request.synthetic or 1, h, w, 3), dtype=np.uint8)
    net = build_policy(cfg.model, inf.seed)
    interface: Any = None

    def preprocess(frame: Any) -> Any:
        return preprocess_frames(frame, size=(w, h), device=interface.device)

    interface = TorchModelInterface.from_config(
        net, inf, name=cfg.model.name, preprocess=preprocess, **kw
    )
    # The first pass is cold (and compiles); the later ones seed the compute estimate that
    # deadline-aware admission needs from the first budgeted call on.
    interface.warmup(frames[0], runs=3 if inf.compile else 2)
    actions = cfg.model.action_space

    def render(logits: Any) -> Any:
        row = logits.reshape(-1).tolist()
        best = max(range(len(row)), key=row.__getitem__)
        action = actions[best] if best < len(actions) else best
        return {"action": action, "logits": [round(v, 6) for v in row]}

    async def call(frame: Any) -> Any:
        return await interface.infer(frame, budget_ms=request.budget_ms)

    return interface, call, render, list(frames)
