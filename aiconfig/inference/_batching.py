"""Dynamic batching: gather concurrent calls into one forward pass, earliest deadline first.

The model of Triton's dynamic batcher and Ray Serve's ``@serve.batch``: calls wait in one
queue; whenever one of ``max_concurrency`` executors is free, the scheduler takes up to
``max_batch_size`` of them (earliest deadline first) and runs them as one batch. When fewer
are waiting it may hold the batch open for ``batch_window_ms`` after the oldest waiting call
arrived -- but never past the point where the most urgent waiting call could no longer finish
(its deadline minus the estimated batch compute time; half its budget before any estimate). A
window of 0 dispatches whatever has arrived by the next event-loop turn (calls submitted
together are batched together).

Admission is the same as without batching (see :mod:`._admission`):

* :class:`Overloaded` at once when every executor is busy and ``max_queue`` calls already wait
  (an idle executor adds room for ``max_batch_size`` gathering calls);
* :class:`LatencyBudgetExceeded` (phase ``admission``) at once when the budget cannot cover the
  estimated batch compute time; a queued call whose remaining budget has fallen below it is
  failed when its batch would start, instead of running late.

The executor (the backend's ``launch``) gets a list of :class:`BatchEntry` and must call
:meth:`BatchScheduler.complete` exactly once per batch, on the loop thread, with one outcome
(a value or an exception) per entry. Everything here runs on one event loop thread.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from ._admission import PROBE, REFUSE, ComputeEstimate
from ._errors import LatencyBudgetExceeded, Overloaded

__all__ = ["BatchEntry", "BatchScheduler", "TooLate"]

_PENDING, _RUNNING, _DONE = 0, 1, 2


class TooLate(Exception):  # internal signal, translated by the interface
    """Set on an entry whose remaining budget cannot cover the estimate when its turn came."""

    def __init__(self, estimate_ms: float) -> None:
        super().__init__(estimate_ms)
        self.estimate_ms = estimate_ms


class BatchEntry:
    """One call waiting in (or running through) the batch queue."""

    __slots__ = (
        "arrival",
        "batch_size",
        "deadline",
        "future",
        "inputs",
        "probe",
        "state",
        "t_start",
    )

    def __init__(
        self, inputs: Any, deadline: float, arrival: float, future: asyncio.Future[Any]
    ) -> None:
        self.inputs = inputs
        self.deadline = deadline
        self.arrival = arrival
        self.future = future
        self.state = _PENDING
        self.t_start = 0  # perf_counter_ns when its batch started computing
        self.batch_size = 0
        self.probe = False  # let through to re-measure: never dropped as hopeless


class BatchScheduler:
    """Queue, window and executors of one batched model (see the module docstring)."""

    def __init__(
        self,
        model: str,
        *,
        max_batch_size: int,
        max_concurrency: int,
        max_queue: int,
        batch_window_ms: float,
        launch: Callable[[list[BatchEntry]], None],
        on_depth: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch_size < 1 or max_concurrency < 1 or max_queue < 0 or batch_window_ms < 0:
            raise ValueError(
                "max_batch_size and max_concurrency must be >= 1, max_queue and "
                "batch_window_ms >= 0"
            )
        self.model = model
        self.max_batch_size = max_batch_size
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self.window_s = batch_window_ms / 1000.0
        self.estimate = ComputeEstimate()
        self.batches = 0
        self._launch = launch
        self._on_depth = on_depth
        self._running = 0
        self._live = 0
        self._heap: list[tuple[float, int, BatchEntry]] = []
        self._arrivals: deque[BatchEntry] = deque()  # arrival order (lazily pruned)
        self._seq = itertools.count()
        self._scheduled = False
        self._timer: asyncio.TimerHandle | None = None

    @property
    def active(self) -> int:
        """Batches computing now."""
        return self._running

    @property
    def queued(self) -> int:
        """Calls waiting for a batch now."""
        return self._live

    # -- the caller's side -------------------------------------------------------------------

    def submit(self, inputs: Any, budget_ms: float) -> BatchEntry:
        """Queue one call (or refuse it at once); await ``entry.future`` for its outcome."""
        decision = self.estimate.decide(budget_ms)
        if decision == REFUSE:
            raise LatencyBudgetExceeded(
                self.model,
                budget_ms=budget_ms,
                elapsed_ms=0.0,
                phase="admission",
                estimate_ms=self.estimate.ms,
            )
        idle = self.max_concurrency - self._running
        if self._live >= self.max_queue + idle * self.max_batch_size:
            raise Overloaded(
                self.model, active=self._running, queued=self._live, max_queue=self.max_queue
            )
        loop = asyncio.get_running_loop()
        now = loop.time()
        entry = BatchEntry(inputs, now + budget_ms / 1000.0, now, loop.create_future())
        entry.probe = decision == PROBE
        heapq.heappush(self._heap, (entry.deadline, next(self._seq), entry))
        self._arrivals.append(entry)
        self._live += 1
        if self._on_depth is not None:
            self._on_depth(1)
        if idle > 0 and not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._dispatch)
        return entry

    def abandon(self, entry: BatchEntry) -> None:
        """The caller gave up (deadline, cancellation): leave the queue if still waiting."""
        if entry.state == _PENDING:
            entry.state = _DONE
            self._live -= 1
            if self._on_depth is not None:
                self._on_depth(-1)
        if not entry.future.done():
            entry.future.cancel()

    # -- the executor's side -----------------------------------------------------------------

    def complete(
        self, entries: Sequence[BatchEntry], outcomes: Sequence[Any], compute_ms: float
    ) -> None:
        """Hand each entry its outcome (an exception instance fails that call); free the slot."""
        self._running -= 1
        self.estimate.observe(compute_ms)
        for entry, outcome in zip(entries, outcomes, strict=True):
            entry.state = _DONE
            fut = entry.future
            if fut.done():  # the caller gave up at its deadline; the outcome is dropped
                continue
            if isinstance(outcome, BaseException):
                fut.set_exception(outcome)
            else:
                fut.set_result(outcome)
        self._dispatch()

    def _dispatch(self) -> None:
        self._scheduled = False
        loop = asyncio.get_running_loop()
        while self._running < self.max_concurrency and self._live:
            now = loop.time()
            if self._live < self.max_batch_size and self.window_s > 0:
                due = self._window_end()
                if now < due:
                    if self._timer is None or self._timer.when() > due:
                        if self._timer is not None:
                            self._timer.cancel()
                        self._timer = loop.call_at(due, self._on_timer)
                    return
            batch = self._take(now)
            if batch:
                self._running += 1
                self.batches += 1
                start = time.perf_counter_ns()
                for entry in batch:
                    entry.t_start = start
                    entry.batch_size = len(batch)
                self._launch(batch)

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch()

    def _window_end(self) -> float:
        """End of the gathering window: the oldest arrival + window, bounded by urgency."""
        arrivals = self._arrivals
        while arrivals and arrivals[0].state != _PENDING:
            arrivals.popleft()
        oldest = arrivals[0].arrival if arrivals else 0.0
        while self._heap and self._heap[0][2].state != _PENDING:
            heapq.heappop(self._heap)
        if not self._heap:
            return oldest + self.window_s
        urgent = self._heap[0][2]
        est = self.estimate.ms
        # Leave the most urgent call the estimated compute time; with no estimate yet, at least
        # half of its budget.
        margin = (urgent.deadline - urgent.arrival) / 2 if est is None else est / 1000.0
        return min(oldest + self.window_s, urgent.deadline - margin)

    def _take(self, now: float) -> list[BatchEntry]:
        """Up to ``max_batch_size`` live entries, earliest deadline first; drop hopeless ones."""
        batch: list[BatchEntry] = []
        est_ms = self.estimate.ms
        est_s = (est_ms or 0.0) / 1000.0
        dropped = 0
        while self._heap and len(batch) < self.max_batch_size:
            _, _, entry = heapq.heappop(self._heap)
            if entry.state != _PENDING:
                continue
            self._live -= 1
            dropped += 1
            if est_ms is not None and not entry.probe and now + est_s > entry.deadline:
                entry.state = _DONE
                if not entry.future.done():
                    entry.future.set_exception(TooLate(est_ms))
                continue
            entry.state = _RUNNING
            batch.append(entry)
        if len(self._arrivals) > 4 * self.max_queue + 64:
            self._arrivals = deque(e for e in self._arrivals if e.state == _PENDING)
        if self._on_depth is not None and dropped:
            self._on_depth(-dropped)
        return batch
