"""Errors raised by :mod:`aiconfig.inference`.

All of them are :class:`~aiconfig.InferenceServerError` (the I/O branch of the tree), so
the CLI turns any of them into one line on stderr and exit status 1::

    InferenceServerError
    ├── Overloaded               refused at admission: every slot busy and the queue full
    ├── LatencyBudgetExceeded    the call ran past its latency budget (queue, compute or retry),
    │                            or was refused at admission: its budget cannot cover the
    │                            measured compute time
    ├── SidecarNotReady          the vLLM preflight failed; carries the whole diagnosis
    ├── ModelError               the model itself raised while computing (cause chained)
    └── SidecarRequestError      a request to the sidecar failed (HTTP error, bad answer)

``OfflineModeError`` (``AP_NO_NETWORK=1`` and the URL is not a loopback address) is the one
network-policy error of every job, :class:`~aiconfig.NetworkDeniedError`, under its
inference name.
"""

from __future__ import annotations

from typing import Literal

from aiconfig import InferenceServerError, NetworkDeniedError, Problem

__all__ = [
    "LatencyBudgetExceeded",
    "ModelError",
    "OfflineModeError",
    "Overloaded",
    "SidecarNotReady",
    "SidecarRequestError",
]

Phase = Literal["admission", "queue", "compute", "retry"]


class Overloaded(InferenceServerError):
    """Refused at once: ``max_concurrency`` calls are running and ``max_queue`` are waiting.

    Raised before the call awaits anything, so a caller learns about overload immediately
    instead of waiting out its budget (backpressure, not silent degradation).
    """

    def __init__(self, model: str, *, active: int, queued: int, max_queue: int) -> None:
        self.model = model
        self.active = active
        self.queued = queued
        super().__init__(
            Problem(
                f"model '{model}' is overloaded: {active} calls running and {queued}/{max_queue} "
                "queued; call refused",
                hint="retry later, lower the request rate, or raise inference.max_concurrency / "
                "inference.max_queue",
            )
        )


class LatencyBudgetExceeded(InferenceServerError):
    """The call did not (or could not) finish within its latency budget.

    ``phase`` says where the time went: ``admission`` (refused at once: the budget left cannot
    cover ``estimate_ms``, the running estimate of the compute time), ``queue`` (waited for a
    slot, or was dropped from the queue once its remaining budget fell below the estimate),
    ``compute`` (the model or the server was too slow) or ``retry`` (the sidecar stayed busy
    through the retries).
    """

    def __init__(
        self,
        model: str,
        *,
        budget_ms: float,
        elapsed_ms: float,
        phase: Phase,
        queue_ms: float = 0.0,
        estimate_ms: float | None = None,
    ) -> None:
        self.model = model
        self.budget_ms = budget_ms
        self.elapsed_ms = elapsed_ms
        self.phase = phase
        self.queue_ms = queue_ms
        self.estimate_ms = estimate_ms
        if phase == "admission":
            message = (
                f"model '{model}' refused a call at admission: its latency budget of "
                f"{budget_ms:g} ms cannot cover the estimated compute time of "
                f"{estimate_ms or 0.0:.2f} ms (running estimate)"
            )
        else:
            message = (
                f"model '{model}' exceeded its latency budget of {budget_ms:g} ms in the {phase} "
                f"phase ({elapsed_ms:.1f} ms elapsed, {queue_ms:.1f} ms of it queued"
                + ("" if estimate_ms is None else f"; estimated compute {estimate_ms:.2f} ms")
                + ")"
            )
        super().__init__(
            Problem(
                message,
                path="inference.latency_budget_ms",
                hint="raise the budget, lower the load, or use a faster model/device",
            )
        )


class SidecarNotReady(InferenceServerError):
    """The vLLM sidecar preflight failed; ``diagnosis`` holds every check that was tried."""

    def __init__(self, problems: list[Problem], diagnosis: object) -> None:
        self.diagnosis = diagnosis
        super().__init__(problems)


class ModelError(InferenceServerError):
    """The model raised while computing (bad input shape, out of memory...); ``__cause__`` has
    the original exception."""

    def __init__(self, model: str, exc: BaseException) -> None:
        self.model = model
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        super().__init__(
            Problem(
                f"model '{model}' failed: {type(exc).__name__}: {first}",
                hint="check the input shape/dtype against the model (model.input_resolution)",
            )
        )


OfflineModeError = NetworkDeniedError
"""Offline mode forbids the connection (only loopback addresses are allowed)."""


class SidecarRequestError(InferenceServerError):
    """A request to the sidecar failed with an HTTP error or an answer that is not OpenAI-shaped."""

    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None) -> None:
        self.status = status
        super().__init__(Problem(message, hint=hint))
