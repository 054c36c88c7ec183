"""PyTorch backend: device placement, optional ``torch.compile``, inference mode, determinism.

PyTorch is an optional extra: ``pip install torch==2.13.0`` (the CPU build) or
``pip install 'aiconfig[torch]'``. This module is imported only when a Torch model is used.

Deterministic preprocessing, what it means here:

* :func:`configure_determinism` seeds Python's ``random``, NumPy (if installed) and Torch with
  ``inference.seed``, turns on ``torch.use_deterministic_algorithms(True, warn_only=True)``,
  pins cuDNN to deterministic kernels with autotuning off, and sets
  ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` when it is unset (needed for deterministic cuBLAS; it must
  be set before CUDA starts). These switches are process-wide, as PyTorch defines them.
* :func:`preprocess_frames` is a pure function: uint8 ``(N, H, W, C)`` frames become float32
  ``(N, C, H, W)`` in ``[0, 1]``, resized (when asked) with ``area`` interpolation, which has a
  deterministic CPU and CUDA kernel. No random augmentation ever happens at inference.
* The default preprocessing only converts to a tensor of the model's dtype on the model's device.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch

from aiconfig import InferenceConfig, InferenceServerError

from ._batching import BatchEntry
from ._call import LatencyObserver, Slot
from ._errors import ModelError
from ._interface import AIModelInterface

# torch.inference_mode() is a Python context manager around this C++ guard; entering the guard
# directly costs 0.6 us instead of 1.5 us per call (measured), on the wrapper's hot path.
_inference_mode: Callable[[], Any] = (
    (lambda: torch._C._InferenceMode(True))
    if hasattr(torch._C, "_InferenceMode")
    else torch.inference_mode
)

__all__ = [
    "TorchModelInterface",
    "configure_determinism",
    "preprocess_frames",
    "resolve_device",
]


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an explicit device that is absent is an error."""
    cuda = torch.cuda.is_available()
    mps = torch.backends.mps.is_available()
    if device == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (device == "cuda" and not cuda) or (device == "mps" and not mps):
        raise InferenceServerError(
            f"inference.device is '{device}' but no {device.upper()} device is available",
            path="inference.device",
            hint="use 'auto' or 'cpu', or run on a machine with that accelerator",
        )
    return torch.device(device)


def configure_determinism(seed: int, *, deterministic: bool = True) -> None:
    """Seed every RNG and pick deterministic kernels (process-wide; see the module docstring)."""
    random.seed(seed)
    try:
        import numpy as np  # numpy is optional here

        np.random.seed(seed)  # the legacy global RNG, which older code still uses
    except ImportError:  # pragma: no cover - numpy is installed wherever torch is
        pass
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def preprocess_frames(
    frames: Any,
    *,
    size: tuple[int, int] | None = None,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """uint8 ``(N, H, W, C)`` (or one ``(H, W, C)``) frames -> ``(N, C, H, W)`` floats in [0, 1].

    ``size`` is ``(width, height)`` as in the config's ``input_resolution``.
    """
    t = torch.as_tensor(frames)
    if t.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8, got {t.dtype}")
    if t.ndim == 3:
        t = t.unsqueeze(0)
    if t.ndim != 4:
        raise ValueError(f"frames must be (N, H, W, C), got shape {tuple(t.shape)}")
    t = t.to(device=device).permute(0, 3, 1, 2).to(dtype).div_(255.0)
    if size is not None and (t.shape[-1], t.shape[-2]) != size:
        t = torch.nn.functional.interpolate(t, size=(size[1], size[0]), mode="area")
    return t.contiguous()


class TorchModelInterface(AIModelInterface[Any, Any]):
    """Run a ``torch.nn.Module`` under a latency budget with bounded concurrency.

    ``offload=True`` (the default) runs each call on a worker thread (``max_concurrency`` of
    them; PyTorch releases the GIL while it computes), so the event loop stays free and a call
    is abandoned exactly at its deadline; its slot is released only when the thread really
    finishes. ``offload=False`` computes on the event loop thread: least overhead, but a call
    that overruns is only reported after it ends.

    ``max_batch_size`` > 1 turns on dynamic batching (:mod:`._batching`): concurrent calls are
    gathered (up to ``max_batch_size``, or for ``batch_window_ms`` bounded by the most urgent
    call's budget), concatenated along dim 0 after each call's own preprocessing, run as one
    forward pass of exactly ``max_batch_size`` rows (zero-padded), and split back; each call
    keeps its own span, budget and result. Padding to one fixed shape is what makes a sample's
    output identical whether it ran alone or with others, in any order: the kernels do not
    change with the batch size (they can, by a few ulps, on oneDNN and cuBLAS), and
    ``torch.compile`` sees one static shape. Each call's input must carry a leading batch
    dimension (``(n, ...)``, usually ``n = 1``) and the model's outputs must too.
    """

    backend = "torch"
    _deadline_aware = True
    _genai_provider = "pytorch"

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        name: str = "model",
        latency_budget_ms: float = 50.0,
        max_concurrency: int = 1,
        max_queue: int = 0,
        device: str = "auto",
        compile: bool = False,
        compile_backend: str = "inductor",
        seed: int = 0,
        deterministic: bool = True,
        dtype: torch.dtype | None = None,
        preprocess: Callable[[Any], Any] | None = None,
        postprocess: Callable[[Any], Any] | None = None,
        offload: bool = True,
        max_batch_size: int = 1,
        batch_window_ms: float = 0.0,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        observers: tuple[LatencyObserver, ...] = (),
        defer_telemetry: bool = True,
    ) -> None:
        super().__init__(
            name,
            latency_budget_ms=latency_budget_ms,
            max_concurrency=max_concurrency,
            max_queue=max_queue,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            observers=observers,
            defer_telemetry=defer_telemetry,
        )
        configure_determinism(seed, deterministic=deterministic)
        _apply_cpu_limit()
        self.device = resolve_device(device)
        self.dtype = dtype or next(
            (p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32
        )
        model = model.to(self.device)
        # A torch.export program refuses eval(): its mode was fixed when it was exported.
        with contextlib.suppress(NotImplementedError):
            model.eval()
        if isinstance(model, torch.jit.ScriptModule):  # it refuses requires_grad_()
            for param in model.parameters():
                param.requires_grad_(False)
        else:
            model.requires_grad_(False)
        self.model = model
        self.compiled_model: Callable[..., Any] | None = (
            torch.compile(model, backend=compile_backend) if compile else None
        )
        self._forward: Callable[..., Any] = self.compiled_model or model
        self._preprocess = preprocess or self._to_tensor
        # On the CPU the output is already where it must be, and computed in inference mode
        # it has no autograd history: nothing to detach or copy.
        self._postprocess = postprocess or (_same if self.device.type == "cpu" else _to_cpu)
        self.offload = offload
        self._inline = not offload
        self._pool: ThreadPoolExecutor | None = (
            ThreadPoolExecutor(max_concurrency, thread_name_prefix=f"aiconfig-{name}")
            if offload
            else None
        )
        self.max_batch_size = max_batch_size
        if max_batch_size > 1:
            self._enable_batching(max_batch_size, batch_window_ms)
        elif max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")

    @classmethod
    def from_config(
        cls, model: torch.nn.Module, cfg: InferenceConfig, *, name: str = "model", **kwargs: Any
    ) -> TorchModelInterface:
        """Build from ``inference:`` (budget, concurrency, queue, device, compile, seed,
        ``max_batch_size`` and ``batch_window_ms``)."""
        return cls(
            model,
            name=name,
            latency_budget_ms=cfg.latency_budget_ms,
            max_concurrency=cfg.max_concurrency,
            max_queue=cfg.max_queue,
            device=cfg.device,
            compile=cfg.compile,
            seed=cfg.seed,
            max_batch_size=cfg.max_batch_size,
            batch_window_ms=cfg.batch_window_ms,
            **kwargs,
        )

    def _to_tensor(self, inputs: Any) -> torch.Tensor:
        if (
            isinstance(inputs, torch.Tensor)
            and inputs.device == self.device
            and inputs.dtype == self.dtype
        ):
            return inputs
        t = torch.as_tensor(inputs, device=self.device)
        return t.to(self.dtype) if t.is_floating_point() else t

    def run_sync(self, inputs: Any) -> Any:
        """One forward pass with no budget, admission or telemetry (warm-up, baselines)."""
        try:
            with _inference_mode():
                return self._postprocess(self._forward(self._preprocess(inputs)))
        except Exception as exc:  # translated once, here: the model's errors become ModelError
            raise ModelError(self.name, exc) from exc

    def warmup(self, inputs: Any, runs: int = 2) -> None:
        """Run a few passes outside any budget: ``torch.compile`` compiles on the first call.

        Passes after the first seed the compute estimate that deadline-aware admission uses.
        """
        for i in range(runs):
            t0 = time.perf_counter_ns()
            if self.batcher is None:
                self.run_sync(inputs)
            else:
                (outcome,) = self.run_batch([inputs])  # the padded shape batches will use
                if isinstance(outcome, BaseException):
                    raise outcome
            if i:  # the first pass is cold (allocations, a compile); later ones seed the estimate
                ms = (time.perf_counter_ns() - t0) / 1e6
                (self.batcher.estimate if self.batcher else self.admission.estimate).observe(ms)

    def _execute_inline(self, inputs: Any) -> Any:
        return self.run_sync(inputs)

    async def _execute(self, inputs: Any, deadline: float, slot: Slot) -> Any:
        if self._pool is None:
            return self.run_sync(inputs)
        loop = asyncio.get_running_loop()
        result: asyncio.Future[Any] = loop.create_future()
        slot.deferred = True
        cfut: Future[Any] = self._pool.submit(self.run_sync, inputs)
        # One hop back to the loop per call: release the slot (only now that the thread is
        # really done) and hand over the outcome, unless the caller gave up at its deadline,
        # in which case ``result`` is already cancelled and the outcome is dropped.
        cfut.add_done_callback(lambda f: _settle_threadsafe(loop, f, result, slot))
        return await result

    # -- dynamic batching --------------------------------------------------------------------

    def _launch_batch(self, entries: list[BatchEntry]) -> None:
        batcher = self.batcher
        assert batcher is not None  # noqa: S101 - only called when batching
        inputs = [e.inputs for e in entries]
        if self._pool is None:
            t0 = time.perf_counter_ns()
            outcomes = self.run_batch(inputs)
            batcher.complete(entries, outcomes, (time.perf_counter_ns() - t0) / 1e6)
            return
        loop = asyncio.get_running_loop()

        def work() -> tuple[list[Any], float]:
            t0 = time.perf_counter_ns()
            outcomes = self.run_batch(inputs)
            return outcomes, (time.perf_counter_ns() - t0) / 1e6

        def done(f: Future[tuple[list[Any], float]]) -> None:
            exc = f.exception()
            if exc is not None:  # pragma: no cover - run_batch returns its errors
                errs = [self._model_error(RuntimeError(str(exc))) for _ in entries]
                outcome: tuple[list[Any], float] = (errs, 0.0)
            else:
                outcome = f.result()
            if not loop.is_closed():
                loop.call_soon_threadsafe(batcher.complete, entries, *outcome)

        self._pool.submit(work).add_done_callback(done)

    def run_batch(self, inputs: list[Any]) -> list[Any]:
        """Preprocess each input, run them as padded forward passes, split the outputs back.

        Returns one outcome per input: its output, or the :class:`ModelError` that fails it (a
        bad input fails only its own call; a failing forward pass fails every call in it).
        """
        outcomes: list[Any] = [None] * len(inputs)
        groups: dict[tuple[Any, ...], list[tuple[int, torch.Tensor]]] = {}
        try:
            with torch.inference_mode():
                for i, raw in enumerate(inputs):
                    try:
                        t = self._preprocess(raw)
                        if not isinstance(t, torch.Tensor) or t.ndim < 1 or t.shape[0] < 1:
                            raise TypeError(
                                "batching needs each call's input to be a tensor with a leading "
                                "batch dimension (n, ...); set inference.max_batch_size: 1 "
                                "for other inputs"
                            )
                    except Exception as exc:  # noqa: BLE001 - the model's error fails this input only
                        outcomes[i] = self._model_error(exc)
                        continue
                    key = (tuple(t.shape[1:]), t.dtype, t.device)
                    groups.setdefault(key, []).append((i, t))
                for members in groups.values():
                    self._forward_group(members, outcomes)
        except Exception as exc:  # noqa: BLE001  # pragma: no cover - never lose a batch silently
            return [o if o is not None else self._model_error(exc) for o in outcomes]
        return outcomes

    def _model_error(self, exc: Exception) -> ModelError:
        """One error per call (each is raised in its own task), the model's error as cause."""
        err = ModelError(self.name, exc)
        err.__cause__ = exc
        return err

    def _forward_group(self, members: list[tuple[int, torch.Tensor]], outcomes: list[Any]) -> None:
        """Rows of same-shaped inputs in passes of exactly ``max_batch_size`` rows (padded)."""
        first = members[0][1]
        n = sum(t.shape[0] for _, t in members)
        size = self.max_batch_size
        padded = -(-n // size) * size
        if padded == n and len(members) == 1:
            rows = first
        else:
            # One buffer of the padded shape, each input copied into it once (cat-then-pad
            # would copy every row twice), the padding zeroed in place.
            rows = first.new_empty((padded, *first.shape[1:]))
            if len(members) == 1:
                rows[:n].copy_(first)
            else:
                torch.cat([t for _, t in members], out=rows[:n])
            rows[n:].zero_()
        try:
            parts = [self._forward(rows[i : i + size]) for i in range(0, padded, size)]
            out = _cat_outputs(parts, size)
        except Exception as exc:  # noqa: BLE001 - the model's error fails every call of this pass
            for i, _ in members:
                outcomes[i] = self._model_error(exc)
            return
        start = 0
        for i, t in members:
            k = t.shape[0]
            try:
                outcomes[i] = self._postprocess(_rows(out, start, start + k))
            except Exception as exc:  # noqa: BLE001 - a failing postprocess fails its call only
                outcomes[i] = self._model_error(exc)
            start += k

    async def aclose(self) -> None:
        await super().aclose()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.get_running_loop().run_in_executor(None, pool.shutdown)


def _apply_cpu_limit() -> None:
    """Size PyTorch's intra-op thread pool from ``AP_CPU_LIMIT`` (harness contract)."""
    limit = os.environ.get("AP_CPU_LIMIT", "").strip()
    if not limit:
        return
    try:
        threads = max(1, int(float(limit)))
    except ValueError:
        raise InferenceServerError(
            f"AP_CPU_LIMIT must be a number of CPUs, got {limit!r}",
            hint="set AP_CPU_LIMIT=2 (or unset it)",
        ) from None
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _settle_threadsafe(
    loop: asyncio.AbstractEventLoop,
    done: Future[Any],
    result: asyncio.Future[Any],
    slot: Slot,
) -> None:
    if loop.is_closed():  # pragma: no cover - the loop ended before the thread did
        return
    loop.call_soon_threadsafe(_settle, done, result, slot)


def _settle(done: Future[Any], result: asyncio.Future[Any], slot: Slot) -> None:
    slot.release()
    if result.done():  # cancelled: the call was abandoned at its deadline
        return
    exc = done.exception()
    if exc is not None:
        result.set_exception(exc)
    else:
        result.set_result(done.result())


def _cat_outputs(parts: list[Any], size: int) -> Any:
    """Join the outputs of several passes along dim 0 (tensors, or tuples/lists/dicts of them)."""
    first = parts[0]
    if isinstance(first, torch.Tensor):
        if first.ndim < 1 or first.shape[0] != size:
            raise ValueError(
                f"a batched output must have the batch dimension first ({size} rows), got shape "
                f"{tuple(first.shape)}: set inference.max_batch_size: 1 for this model"
            )
        return first if len(parts) == 1 else torch.cat(parts)
    if isinstance(first, tuple | list):
        return type(first)(_cat_outputs([p[j] for p in parts], size) for j in range(len(first)))
    if isinstance(first, dict):
        return {k: _cat_outputs([p[k] for p in parts], size) for k in first}
    raise TypeError(f"cannot split a batched output of type {type(first).__name__}")


def _rows(out: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of a batched output (same nesting as :func:`_cat_outputs`)."""
    if isinstance(out, torch.Tensor):
        return out[start:stop]
    if isinstance(out, tuple | list):
        return type(out)(_rows(o, start, stop) for o in out)
    return {k: _rows(v, start, stop) for k, v in out.items()}


def _same(output: Any) -> Any:
    return output


def _to_cpu(output: Any) -> Any:
    if isinstance(output, torch.Tensor):
        return output.detach().cpu()
    if isinstance(output, tuple | list):
        return type(output)(_to_cpu(o) for o in output)
    if isinstance(output, dict):
        return {k: _to_cpu(v) for k, v in output.items()}
    return output
