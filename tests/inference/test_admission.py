"""Admission, budgets and overload semantics with a gated async model (no torch needed)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aiconfig.inference import (
    AIModelInterface,
    InferenceResult,
    LatencyBudgetExceeded,
    Overloaded,
    Slot,
)

from .otel_helpers import OTel


class Gated(AIModelInterface[int, int]):
    """Each call waits for ``gate``; returns its input."""

    backend = "test"

    def __init__(self, **kw: Any) -> None:
        super().__init__("gated", **kw)
        self.gate = asyncio.Event()
        self.order: list[int] = []

    async def _execute(self, inputs: int, deadline: float, slot: Slot) -> int:
        await self.gate.wait()
        self.order.append(inputs)
        return inputs


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_overload_at_twice_capacity_refuses_excess_without_waiting(otel: OTel) -> None:
    async def main() -> None:
        m = Gated(latency_budget_ms=5_000, max_concurrency=2, max_queue=3, **otel.kwargs())
        capacity = 2 + 3
        tasks = [asyncio.create_task(m.infer(i)) for i in range(2 * capacity)]
        await asyncio.sleep(0)  # one loop turn: every task has run up to its first await
        # The gate is still shut, yet every excess call has already finished: refused, and
        # refused before it awaited anything.
        refused = [t for t in tasks if t.done()]
        assert len(refused) == capacity
        for t in refused:
            assert isinstance(t.exception(), Overloaded)
        assert (m.admission.active, m.admission.queued) == (2, 3)
        m.gate.set()
        accepted = [t for t in tasks if t not in refused]
        results: list[InferenceResult[int]] = [await t for t in accepted]
        assert all(r.total_ms <= r.budget_ms for r in results)
        assert sorted(r.output for r in results) == list(range(capacity))
        assert (m.admission.active, m.admission.queued) == (0, 0)

    run(main())
    rejections = otel.points("aiconfig.inference.rejections")
    assert sum(p.value for p in rejections) == 5  # type: ignore[attr-defined]


def test_queue_is_fifo() -> None:
    async def main() -> list[int]:
        m = Gated(latency_budget_ms=5_000, max_concurrency=1, max_queue=10)
        tasks = [asyncio.create_task(m.infer(i)) for i in range(6)]
        await asyncio.sleep(0)
        m.gate.set()
        await asyncio.gather(*tasks)
        return m.order

    assert run(main()) == list(range(6))


def test_budget_exceeded_while_queued_frees_the_queue_place() -> None:
    async def main() -> None:
        m = Gated(latency_budget_ms=5_000, max_concurrency=1, max_queue=1)
        first = asyncio.create_task(m.infer(1))
        await asyncio.sleep(0)
        with pytest.raises(LatencyBudgetExceeded) as info:
            await m.infer(2, budget_ms=20)
        assert info.value.phase == "queue"
        assert info.value.queue_ms >= 20
        assert m.admission.queued == 0
        m.gate.set()
        assert (await first).output == 1
        assert (m.admission.active, m.admission.queued) == (0, 0)

    run(main())


def test_budget_exceeded_while_computing(otel: OTel) -> None:
    async def main() -> None:
        m = Gated(latency_budget_ms=20, max_concurrency=1, max_queue=0, **otel.kwargs())
        with pytest.raises(LatencyBudgetExceeded) as info:
            await m.infer(1)
        assert info.value.phase == "compute"
        assert m.admission.active == 0  # async work is cancelled, so the slot is free

    run(main())
    (span,) = otel.spans.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["aiconfig.inference.outcome"] == "budget_exceeded"
    assert span.attributes["error.type"] == "LatencyBudgetExceeded"


def test_cancelled_waiter_leaves_queue() -> None:
    async def main() -> None:
        m = Gated(latency_budget_ms=5_000, max_concurrency=1, max_queue=2)
        a = asyncio.create_task(m.infer(1))
        b = asyncio.create_task(m.infer(2))
        c = asyncio.create_task(m.infer(3))
        await asyncio.sleep(0)
        b.cancel()
        await asyncio.sleep(0)
        assert m.admission.queued == 1
        m.gate.set()
        assert [(await a).output, (await c).output] == [1, 3]
        assert m.order == [1, 3]

    run(main())


def test_spans_and_metrics_for_ok_calls(otel: OTel) -> None:
    seen: list[tuple[str, float, bool, bool]] = []

    async def main() -> None:
        m = Gated(latency_budget_ms=1_000, max_concurrency=1, max_queue=1, **otel.kwargs())
        m.add_observer(lambda name, ms, ok, span: seen.append((name, ms, ok, span.is_recording())))
        m.gate.set()
        r = await m.infer(7)
        assert r.queue_ms >= 0 and r.compute_ms >= 0
        assert r.total_ms == pytest.approx(r.queue_ms + r.compute_ms, abs=1e-6)

    run(main())
    (span,) = otel.spans.get_finished_spans()
    assert span.name == "inference gated"
    assert span.attributes is not None
    assert span.attributes["aiconfig.model"] == "gated"
    assert span.attributes["aiconfig.inference.outcome"] == "ok"
    for key in ("queue_ms", "compute_ms", "budget_ms"):
        assert f"aiconfig.inference.{key}" in span.attributes
    (point,) = otel.points("aiconfig.inference.duration")
    assert point.count == 1  # type: ignore[attr-defined]
    assert point.attributes["aiconfig.inference.outcome"] == "ok"  # type: ignore[attr-defined]
    assert otel.points("aiconfig.inference.queue.duration") == []  # this call did not queue
    assert seen and seen[0][0] == "gated" and seen[0][2] is True
    assert seen[0][3] is True  # the call's own span, still open


def test_queue_depth_metric_returns_to_zero(otel: OTel) -> None:
    async def main() -> None:
        m = Gated(latency_budget_ms=1_000, max_concurrency=1, max_queue=4, **otel.kwargs())
        tasks = [asyncio.create_task(m.infer(i)) for i in range(5)]
        await asyncio.sleep(0)
        (depth,) = otel.points("aiconfig.inference.queue.depth")
        assert depth.value == 4  # type: ignore[attr-defined]
        m.gate.set()
        await asyncio.gather(*tasks)

    run(main())
    (depth,) = otel.points("aiconfig.inference.queue.depth")
    assert depth.value == 0  # type: ignore[attr-defined]


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="max_concurrency"):
        Gated(latency_budget_ms=1, max_concurrency=0, max_queue=0)
    with pytest.raises(ValueError, match="latency_budget_ms"):
        Gated(latency_budget_ms=0, max_concurrency=1, max_queue=0)


class Sleepy(AIModelInterface[int, int]):
    """Computes for ``compute_s`` (asyncio.sleep); deadline-aware like the Torch backend."""

    backend = "test"
    _deadline_aware = True

    def __init__(self, compute_s: float, **kw: Any) -> None:
        super().__init__("sleepy", **kw)
        self.compute_s = compute_s
        self.order: list[int] = []

    async def _execute(self, inputs: int, deadline: float, slot: Slot) -> int:
        await asyncio.sleep(self.compute_s)
        self.order.append(inputs)
        return inputs


def test_queue_is_earliest_deadline_first() -> None:
    async def main() -> list[int]:
        m = Gated(latency_budget_ms=9_000, max_concurrency=1, max_queue=10)
        first = asyncio.create_task(m.infer(0))
        await asyncio.sleep(0)
        budgets = {1: 5_000, 2: 1_000, 3: 3_000, 4: 2_000, 5: 1_000}
        tasks = [asyncio.create_task(m.infer(i, budget_ms=b)) for i, b in budgets.items()]
        await asyncio.sleep(0)
        m.gate.set()
        await asyncio.gather(first, *tasks)
        return m.order

    # earliest deadline first; equal deadlines (2 and 5 differ by arrival) in arrival order
    assert run(main()) == [0, 2, 5, 4, 3, 1]


def test_a_budget_below_the_measured_compute_time_is_refused_at_once() -> None:
    async def main() -> None:
        m = Sleepy(0.05, latency_budget_ms=1_000, max_concurrency=1, max_queue=4)
        assert m.estimate_ms is None
        await m.infer(1)  # measured: about 50 ms
        assert m.estimate_ms is not None and m.estimate_ms >= 50
        task = asyncio.create_task(m.infer(2, budget_ms=20))
        await asyncio.sleep(0)  # one loop turn: refused without waiting for anything
        assert task.done()
        err = task.exception()
        assert isinstance(err, LatencyBudgetExceeded)
        assert err.phase == "admission" and err.estimate_ms == m.estimate_ms
        assert "cannot cover the estimated compute time" in str(err)
        assert m.order == [1]  # it never computed
        assert (await m.infer(3, budget_ms=500)).output == 3  # a budget that fits is served

    run(main())


def test_a_queued_call_that_can_no_longer_make_it_fails_when_its_turn_comes() -> None:
    async def main() -> None:
        m = Sleepy(0.06, latency_budget_ms=1_000, max_concurrency=1, max_queue=4)
        await m.infer(0)  # estimate: about 60 ms
        running = asyncio.create_task(m.infer(1))
        await asyncio.sleep(0)
        t0 = asyncio.get_running_loop().time()
        with pytest.raises(LatencyBudgetExceeded) as info:
            # 100 ms is enough at arrival (> 60), but after ~60 ms queued only ~40 are left
            await m.infer(2, budget_ms=100)
        waited = asyncio.get_running_loop().time() - t0
        assert info.value.phase == "queue" and info.value.estimate_ms is not None
        assert waited < 0.1  # failed when the slot came free, not at its deadline
        assert (await running).output == 1
        assert m.order == [0, 1]
        assert (m.admission.active, m.admission.queued) == (0, 0)

    run(main())


def test_refusals_let_a_probe_through_so_the_estimate_can_recover() -> None:
    from aiconfig.inference._admission import PROBE_AFTER

    async def main() -> None:
        m = Sleepy(0.0, latency_budget_ms=1_000, max_concurrency=1, max_queue=4)
        m.admission.estimate.observe(500.0)  # as if one cold call had taken 500 ms
        outcomes = []
        for i in range(PROBE_AFTER + 1):
            try:
                await m.infer(i, budget_ms=50)
                outcomes.append("ok")
            except LatencyBudgetExceeded as exc:
                outcomes.append(exc.phase)
        assert outcomes == ["admission"] * PROBE_AFTER + ["ok"]
        assert m.estimate_ms is not None and m.estimate_ms < 500.0

    run(main())


def test_backends_that_are_not_deadline_aware_never_refuse_on_the_estimate() -> None:
    async def main() -> None:
        m = Gated(latency_budget_ms=1_000, max_concurrency=1, max_queue=1)
        m.admission.estimate.observe(500.0)
        m.gate.set()
        assert (await m.infer(1, budget_ms=50)).output == 1

    run(main())
