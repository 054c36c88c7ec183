"""A call's telemetry is recorded after its caller has the result, and is never lost.

Real SDK providers (in-memory span exporter and metric reader), a real Torch model on the CPU.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import torch
from opentelemetry import trace

from aiconfig.inference import ModelError, Overloaded, TorchModelInterface
from aiconfig.inference._interface import _MAX_DEFERRED

from .otel_helpers import OTel


def _model(otel: OTel, **kw: Any) -> TorchModelInterface:
    torch.manual_seed(0)
    return TorchModelInterface(
        torch.nn.Linear(4, 2),
        name="policy",
        device="cpu",
        offload=False,
        max_queue=4,
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
        **kw,
    )


def _count(otel: OTel) -> int:
    return sum(p.count for p in otel.points("gen_ai.client.operation.duration"))  # type: ignore[attr-defined]


def test_span_and_metric_are_recorded_on_the_loops_next_turn(otel: OTel) -> None:
    m = _model(otel)
    x = torch.ones(1, 4)
    seen: list[tuple[int, int]] = []

    async def run() -> None:
        await m.infer(x)
        seen.append((len(otel.spans.get_finished_spans()), _count(otel)))  # before the turn
        await asyncio.sleep(0)
        seen.append((len(otel.spans.get_finished_spans()), _count(otel)))

    asyncio.run(run())
    assert seen == [(0, 0), (1, 1)]
    (span,) = otel.spans.get_finished_spans()
    assert span.name == "inference policy"
    assert span.attributes is not None and span.attributes["aiconfig.inference.outcome"] == "ok"


def test_defer_telemetry_false_records_before_infer_returns(otel: OTel) -> None:
    m = _model(otel, defer_telemetry=False)

    async def run() -> int:
        await m.infer(torch.ones(1, 4))
        return len(otel.spans.get_finished_spans())

    assert asyncio.run(run()) == 1
    assert _count(otel) == 1


def test_a_caller_that_never_yields_records_one_call_per_call(otel: OTel) -> None:
    m = _model(otel)
    x = torch.ones(1, 4)
    waiting: list[int] = []

    async def run() -> None:
        for _ in range(3 * _MAX_DEFERRED):
            await m.infer(x)  # inline and uncontended: never suspends
            waiting.append(len(m._deferred))

    asyncio.run(run())
    assert max(waiting) == _MAX_DEFERRED  # bounded: no burst, no growth
    assert waiting[-1] == _MAX_DEFERRED
    # asyncio.run turned the loop once more before it returned: nothing is left behind
    assert len(otel.spans.get_finished_spans()) == 3 * _MAX_DEFERRED
    assert _count(otel) == 3 * _MAX_DEFERRED


def test_the_deferred_span_keeps_the_parent_current_at_the_call(otel: OTel) -> None:
    m = _model(otel)
    tracer = otel.tracer_provider.get_tracer("test")

    async def run() -> None:
        with tracer.start_as_current_span("episode"):
            await m.infer(torch.ones(1, 4))
        await asyncio.sleep(0)  # recorded here, outside the parent's context

    asyncio.run(run())
    spans = {s.name: s for s in otel.spans.get_finished_spans()}
    child, parent = spans["inference policy"], spans["episode"]
    assert child.parent is not None and child.parent.span_id == parent.context.span_id
    assert child.context.trace_id == parent.context.trace_id


def test_refusals_are_recorded_too_and_keep_their_error(otel: OTel) -> None:
    m = _model(otel, max_concurrency=1)
    m.admission.max_queue = 0

    async def run() -> None:
        assert m.admission.try_take()  # the one slot is busy
        with pytest.raises(Overloaded):
            await m.infer(torch.ones(1, 4))
        m.admission.release()

    asyncio.run(run())
    (span,) = otel.spans.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["error.type"] == "Overloaded"
    assert span.status.status_code.name == "ERROR"


@pytest.mark.parametrize("defer", [True, False])
def test_a_failing_observer_is_logged_and_never_fails_a_call(
    otel: OTel, caplog: pytest.LogCaptureFixture, defer: bool
) -> None:
    calls: list[float] = []

    def broken(model: str, total_ms: float, ok: bool, span: Any) -> None:
        calls.append(total_ms)
        if len(calls) == 1:
            raise RuntimeError("observer bug")

    m = _model(otel, observers=(broken,), defer_telemetry=defer)

    async def run() -> list[Any]:
        out = [await m.infer(torch.ones(1, 4)), await m.infer(torch.ones(1, 4))]
        await asyncio.sleep(0)
        return out

    with caplog.at_level(logging.ERROR, logger="aiconfig.inference._interface"):
        results = asyncio.run(run())
    assert [r.output.shape for r in results] == [(1, 2), (1, 2)]  # both calls got their result
    assert len(calls) == 2
    assert len(otel.spans.get_finished_spans()) == 2  # the span ends even when its observer fails
    assert any("observer bug" in (r.exc_text or "") for r in caplog.records)
    assert "an observer of 'policy' failed" in caplog.text


def test_observers_see_the_parent_of_their_own_call(otel: OTel) -> None:
    """Two calls under two parents, recorded on one later turn: each observer runs in the
    context its call ended in (an alert's log record carries that call's trace)."""
    seen: list[tuple[str, int]] = []

    def observer(model: str, total_ms: float, ok: bool, span: Any) -> None:
        seen.append((span.name, trace.get_current_span().get_span_context().span_id))

    m = _model(otel, observers=(observer,))
    tracer = otel.tracer_provider.get_tracer("test")
    parents: dict[str, int] = {}

    async def episode(name: str) -> None:
        with tracer.start_as_current_span(name) as parent:
            parents[name] = parent.get_span_context().span_id
            await m.infer(torch.ones(1, 4))

    async def run() -> None:
        await asyncio.gather(episode("a"), episode("b"))
        await asyncio.sleep(0)

    asyncio.run(run())
    assert sorted(s for _, s in seen) == sorted(parents.values())


def test_a_waiting_record_does_not_keep_the_error_alive(otel: OTel) -> None:
    """The record keeps the error's type and first line, not the exception: its traceback
    would keep the failed call's frames and inputs alive until the loop turns."""
    import gc
    import weakref

    m = _model(otel)
    refs: list[weakref.ref[BaseException]] = []

    async def run() -> None:
        try:
            await m.infer(torch.ones(1, 3))  # the wrong width: the model raises
        except ModelError as exc:
            refs.append(weakref.ref(exc))
        gc.collect()
        assert len(m._deferred) == 1 and refs[0]() is None  # waiting, and the error is gone
        await asyncio.sleep(0)

    asyncio.run(run())
    (span,) = otel.spans.get_finished_spans()
    assert span.attributes is not None and span.attributes["error.type"] == "ModelError"


@pytest.mark.parametrize("defer", [True, False])
def test_a_cancelled_call_is_recorded_and_stays_cancelled(otel: OTel, defer: bool) -> None:
    """A cancellation has no message; the span's status says what it was."""
    m = _model(otel, max_concurrency=1, defer_telemetry=defer)

    async def run() -> None:
        assert m.admission.try_take()  # the one slot is busy: the call queues
        task = asyncio.create_task(m.infer(torch.ones(1, 4)))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        m.admission.release()
        await asyncio.sleep(0)

    asyncio.run(run())
    (span,) = otel.spans.get_finished_spans()
    assert span.status.status_code.name == "ERROR"
    assert span.status.description == "CancelledError"
    assert span.attributes is not None and span.attributes["error.type"] == "CancelledError"


def test_flush_and_aclose_record_what_waits(otel: OTel) -> None:
    m = _model(otel)
    counts: list[int] = []

    async def run() -> None:
        await m.infer(torch.ones(1, 4))
        m.flush_telemetry()
        counts.append(len(otel.spans.get_finished_spans()))
        await m.infer(torch.ones(1, 4))
        await m.aclose()
        counts.append(len(otel.spans.get_finished_spans()))

    asyncio.run(run())
    assert counts == [1, 2]


def test_one_interface_across_two_event_loops_loses_nothing(otel: OTel) -> None:
    m = _model(otel)

    async def calls(n: int) -> None:
        for _ in range(n):
            await m.infer(torch.ones(1, 4))

    loop = asyncio.new_event_loop()
    loop.run_until_complete(calls(3))
    loop.close()
    asyncio.run(calls(2))
    assert len(otel.spans.get_finished_spans()) == 5
