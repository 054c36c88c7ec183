"""What one inference call is: its result, its running timings, and the slot it holds.

:mod:`._interface` runs a call through admission, compute and telemetry; these are the values
it passes around. :class:`InferenceResult` is public (what ``infer`` returns); ``_Call`` is the
per-call record the hot path fills in (``__slots__``, plain attributes: a call allocates
nothing else of its own); :class:`Slot` is the concurrency slot a backend may keep past the
awaiting coroutine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from opentelemetry import trace

from ._admission import Admission

__all__ = [
    "LATENCY_BUCKETS_S",
    "InferenceResult",
    "LatencyObserver",
    "Slot",
]

OutT = TypeVar("OutT")

#: Called after every call with ``(model, total_ms, ok, span)``, ``span`` being the call's own
#: span (still open: an observer may add events to it); monitoring's alerting plugs in here.
LatencyObserver = Callable[[str, float, bool, trace.Span], None]

_NS_PER_MS = 1_000_000.0
_NS_PER_S = 1_000_000_000.0

# Histogram buckets in seconds, from 0.1 ms (a tiny CPU model) to 80 s (a long generation).
LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08,
    0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class InferenceResult(Generic[OutT]):
    """What one call returned and where its time went (milliseconds)."""

    output: OutT
    model: str
    queue_ms: float
    compute_ms: float
    total_ms: float
    budget_ms: float


class _Call:
    """Timings and outcome of one call, filled in as it goes (``perf_counter_ns`` values)."""

    __slots__ = (
        "attrs",
        "batch_size",
        "budget",
        "got_slot",
        "outcome",
        "queued",
        "t0",
        "t0_wall",
        "t_end",
        "t_slot",
    )

    def __init__(self, budget: float, attrs: Mapping[str, Any]) -> None:
        self.budget = budget
        self.attrs = attrs
        self.t0 = time.perf_counter_ns()
        self.t0_wall = time.time_ns()
        self.t_slot = 0
        self.t_end = 0
        self.got_slot = False
        self.queued = False
        self.outcome = "error"
        self.batch_size = 0


class Slot:
    """The concurrency slot a call holds; released exactly once.

    A backend whose work outlives the awaiting coroutine (a thread that cannot be interrupted)
    sets ``deferred`` and releases the slot itself when the work really ends, so the concurrency
    bound stays true even for calls that were abandoned at their deadline. Releasing feeds the
    time the slot was held to the admission's compute estimate.
    """

    __slots__ = ("_admission", "_held", "deferred", "started_ns")

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self._held = True
        self.started_ns = time.perf_counter_ns()
        self.deferred = False

    def release(self) -> None:
        if self._held:
            self._held = False
            admission = self._admission
            if admission.deadline_aware:
                admission.estimate.observe((time.perf_counter_ns() - self.started_ns) / _NS_PER_MS)
            admission.release()
