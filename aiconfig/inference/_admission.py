"""Bounded concurrency, a bounded earliest-deadline-first queue, and deadline-aware refusal.

``try_enter`` is synchronous on purpose: it either takes a free slot, or joins the queue, or
raises -- all before the caller awaits anything, so a refusal costs no waiting at all:

* :class:`Overloaded` when every slot is busy and ``max_queue`` calls are already waiting;
* :class:`LatencyBudgetExceeded` (phase ``admission``) when the call's budget cannot cover
  the measured compute time (:class:`ComputeEstimate`, a running mean), instead of letting it
  queue only to fail late.

Waiters are ordered by deadline (earliest first; equal deadlines in arrival order, so calls with
the same budget are served first come, first served). A slot freed by ``release`` goes to the
earliest-deadline waiter whose remaining budget still covers the estimate; a waiter that can no
longer make it is woken with ``False`` and fails at once with its budget error, and the slot
goes on to the next one.

Everything here runs on one event loop thread; it is not thread-safe and does not need to be.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

from ._errors import LatencyBudgetExceeded, Overloaded

__all__ = ["ADMIT", "PROBE", "REFUSE", "Admission", "ComputeEstimate"]

#: Weight of the newest sample in the running estimate (an exponentially weighted mean).
_ALPHA = 0.2
#: After this many refusals in a row, one call is let through to re-measure: otherwise an
#: estimate inflated by one cold call (first-touch allocations, a compile) would refuse forever,
#: since refused calls never compute.
PROBE_AFTER = 16
ADMIT, REFUSE, PROBE = 0, 1, 2


class ComputeEstimate:
    """Running estimate of one compute (a call, or a batch) in milliseconds.

    ``None`` until the first measurement; then an exponentially weighted mean of the measured
    compute times. :meth:`decide` decides admission and counts refusals in a row, letting one
    call through after :data:`PROBE_AFTER` of them (a probe); the next measurement replaces the
    estimate, so one cold call cannot keep a model refusing.
    """

    __slots__ = ("_probing", "_streak", "ms", "samples")

    def __init__(self) -> None:
        self.ms: float | None = None
        self.samples = 0
        self._streak = 0
        self._probing = False

    def observe(self, ms: float) -> None:
        est = self.ms
        if est is None or self._probing:
            # The first measurement, or the one after a probe was let through because the
            # estimate looked stale: take it as it is rather than blending it in.
            self.ms = ms
        else:
            self.ms = est + _ALPHA * (ms - est)
        self._probing = False
        self.samples += 1
        self._streak = 0

    def decide(self, budget_ms: float) -> int:
        """:data:`ADMIT`, :data:`REFUSE`, or :data:`PROBE` (a call let through to re-measure,
        which the queue must then not drop as hopeless)."""
        est = self.ms
        if est is None or budget_ms >= est:
            return ADMIT
        self._streak += 1
        if self._streak > PROBE_AFTER:
            self._streak = 0
            self._probing = True
            return PROBE
        return REFUSE


class Admission:
    """Admission control for one model: ``max_concurrency`` running, ``max_queue`` waiting."""

    __slots__ = (
        "_free",
        "_heap",
        "_queued",
        "_seq",
        "deadline_aware",
        "estimate",
        "max_concurrency",
        "max_queue",
        "model",
    )

    def __init__(
        self, model: str, max_concurrency: int, max_queue: int, *, deadline_aware: bool = False
    ) -> None:
        if max_concurrency < 1 or max_queue < 0:
            raise ValueError("max_concurrency must be >= 1 and max_queue >= 0")
        self.model = model
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self.deadline_aware = deadline_aware
        self.estimate = ComputeEstimate()
        self._free = max_concurrency
        # (deadline, arrival number, waiter): the heap orders by deadline, then arrival.
        self._heap: list[tuple[float, int, asyncio.Future[bool], bool]] = []
        self._queued = 0
        self._seq = itertools.count()

    @property
    def active(self) -> int:
        """Calls holding a slot now."""
        return self.max_concurrency - self._free

    @property
    def queued(self) -> int:
        """Calls waiting for a slot now."""
        return self._queued

    def check_budget(self, budget_ms: float) -> bool:
        """Refuse at once (phase ``admission``) a budget that cannot cover the estimate.

        Returns True when the call is a probe (pass it to :meth:`try_enter`).
        """
        if not self.deadline_aware:
            return False
        decision = self.estimate.decide(budget_ms)
        if decision == REFUSE:
            raise LatencyBudgetExceeded(
                self.model,
                budget_ms=budget_ms,
                elapsed_ms=0.0,
                phase="admission",
                estimate_ms=self.estimate.ms,
            )
        return decision == PROBE

    def try_take(self) -> bool:
        """Take a free slot if one is free and nobody waits (the synchronous fast path)."""
        if self._free > 0 and not self._queued:
            self._free -= 1
            return True
        return False

    def try_enter(
        self, deadline: float | None = None, *, probe: bool = False
    ) -> asyncio.Future[bool] | None:
        """Take a slot (returns None), join the queue (returns a future to await) or refuse.

        ``deadline`` (``loop.time()`` units) orders the queue; None means "no deadline" (last).
        The future resolves to True when the slot is handed over, False when the call can no
        longer finish in time (fail it with its budget error). Raises :class:`Overloaded` at
        once when every slot is busy and the queue is full. A ``probe`` (see
        :meth:`check_budget`) is never dropped as hopeless.
        """
        if self._free > 0 and not self._queued:
            self._free -= 1
            return None
        if self._queued >= self.max_queue:
            raise Overloaded(
                self.model, active=self.active, queued=self._queued, max_queue=self.max_queue
            )
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        key = float("inf") if deadline is None else deadline
        heapq.heappush(self._heap, (key, next(self._seq), waiter, probe))
        self._queued += 1
        return waiter

    def release(self) -> None:
        """Give a slot back: to the earliest-deadline live waiter, else to the free pool."""
        heap = self._heap
        est = self.estimate.ms if self.deadline_aware else None
        now: float | None = None
        while heap:
            deadline, _, waiter, probe = heapq.heappop(heap)
            if waiter.done():  # abandoned (cancelled) while queued; already uncounted
                continue
            self._queued -= 1
            if est is not None and not probe:
                if now is None:
                    now = asyncio.get_running_loop().time()
                if now + est / 1000.0 > deadline:
                    waiter.set_result(False)  # cannot make it: fail now, not at the deadline
                    continue
            waiter.set_result(True)
            return
        self._free += 1

    def abandon(self, waiter: asyncio.Future[bool]) -> None:
        """A queued caller gave up (budget or cancellation): leave the queue, or pass the slot on.

        If the slot had already been handed to this waiter, it is released to the next one.
        """
        if waiter.done() and not waiter.cancelled():
            if waiter.result():
                self.release()
            return
        waiter.cancel()
        self._queued -= 1
        if len(self._heap) > 2 * self._queued + 64:  # drop dead entries now and then
            self._heap = [e for e in self._heap if not e[2].done()]
            heapq.heapify(self._heap)
