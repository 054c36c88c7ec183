"""Bounded concurrency plus a bounded FIFO queue (the Triton / Ray Serve admission model).

``try_enter`` is synchronous on purpose: it either takes a free slot, or joins the queue, or
raises :class:`Overloaded` -- all before the caller awaits anything, so a refusal costs no
waiting at all. A slot freed by ``release`` is handed straight to the oldest waiter, so a call
that arrives later can never overtake one that is queued.

Everything here runs on one event loop thread; it is not thread-safe and does not need to be.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from ._errors import Overloaded

__all__ = ["Admission"]


class Admission:
    """Admission control for one model: ``max_concurrency`` running, ``max_queue`` waiting."""

    __slots__ = ("_free", "_waiters", "max_concurrency", "max_queue", "model")

    def __init__(self, model: str, max_concurrency: int, max_queue: int) -> None:
        if max_concurrency < 1 or max_queue < 0:
            raise ValueError("max_concurrency must be >= 1 and max_queue >= 0")
        self.model = model
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self._free = max_concurrency
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def active(self) -> int:
        """Calls holding a slot now."""
        return self.max_concurrency - self._free

    @property
    def queued(self) -> int:
        """Calls waiting for a slot now."""
        return len(self._waiters)

    def try_enter(self) -> asyncio.Future[None] | None:
        """Take a slot (returns None), join the queue (returns a future to await) or refuse.

        Raises :class:`Overloaded` at once when every slot is busy and the queue is full.
        """
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return None
        if len(self._waiters) >= self.max_queue:
            raise Overloaded(
                self.model, active=self.active, queued=len(self._waiters), max_queue=self.max_queue
            )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return waiter

    def release(self) -> None:
        """Give a slot back: to the oldest live waiter, else to the free pool."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

    def abandon(self, waiter: asyncio.Future[None]) -> None:
        """A queued caller gave up (budget or cancellation): leave the queue, or pass the slot on.

        If the slot had already been handed to this waiter, it is released to the next one.
        """
        if waiter.done() and not waiter.cancelled():
            self.release()
            return
        waiter.cancel()
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)
