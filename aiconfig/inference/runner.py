"""Drive many calls through a model interface and summarise them (used by ``aiconfig infer``).

Calls are submitted with at most ``in_flight`` outstanding. Every call ends as one
:class:`CallRecord` -- ``ok``, ``overloaded``, ``budget_exceeded`` or ``error`` -- so a run
under overload reports exactly what was refused instead of failing as a whole.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from aiconfig import AiconfigError

from ._call import InferenceResult
from ._errors import LatencyBudgetExceeded, Overloaded

__all__ = ["CallRecord", "RunSummary", "percentile", "run_calls", "summarize"]

T = TypeVar("T")


@dataclass(frozen=True)
class CallRecord:
    index: int
    outcome: str
    total_ms: float
    queue_ms: float | None = None
    compute_ms: float | None = None
    output: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class RunSummary:
    backend: str
    model: str
    calls: int
    ok: int
    overloaded: int
    budget_exceeded: int
    errors: int
    budget_ms: float
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil without float surprises
    return ordered[int(min(rank, len(ordered))) - 1]


async def run_calls(
    call: Callable[[T], Awaitable[InferenceResult[Any]]],
    items: Sequence[T],
    *,
    in_flight: int,
    render: Callable[[Any], Any] = lambda out: out,
    on_record: Callable[[CallRecord], None] | None = None,
) -> list[CallRecord]:
    """Run ``call(item)`` for every item, at most ``in_flight`` at once; never raises per call."""
    gate = asyncio.Semaphore(max(1, in_flight))

    async def one(i: int, item: T) -> CallRecord:
        async with gate:
            t0 = time.perf_counter()
            try:
                r = await call(item)
            except Overloaded as exc:
                rec = CallRecord(i, "overloaded", _ms(t0), error=str(exc))
            except LatencyBudgetExceeded as exc:
                rec = CallRecord(
                    i, "budget_exceeded", exc.elapsed_ms, queue_ms=exc.queue_ms, error=str(exc)
                )
            except AiconfigError as exc:
                rec = CallRecord(i, "error", _ms(t0), error=str(exc).splitlines()[0])
            else:
                rec = CallRecord(
                    i, "ok", r.total_ms, r.queue_ms, r.compute_ms, output=render(r.output)
                )
        if on_record is not None:
            on_record(rec)
        return rec

    return list(await asyncio.gather(*(one(i, x) for i, x in enumerate(items))))


def summarize(
    records: Sequence[CallRecord], *, backend: str, model: str, budget_ms: float, wall_s: float
) -> RunSummary:
    ok = [r.total_ms for r in records if r.ok]
    count = {o: sum(r.outcome == o for r in records) for o in ("overloaded", "budget_exceeded")}
    return RunSummary(
        backend=backend,
        model=model,
        calls=len(records),
        ok=len(ok),
        overloaded=count["overloaded"],
        budget_exceeded=count["budget_exceeded"],
        errors=sum(r.outcome == "error" for r in records),
        budget_ms=budget_ms,
        p50_ms=percentile(ok, 50),
        p99_ms=percentile(ok, 99),
        max_ms=max(ok) if ok else None,
        wall_s=wall_s,
    )


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0
