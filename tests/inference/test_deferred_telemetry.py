"""A call's telemetry is recorded after its caller has the result, and is never lost.

Real SDK providers (in-memory span exporter and metric reader), a real Torch model on the CPU.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import torch

from aiconfig.inference import Overloaded, TorchModelInterface
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


def test_a_failing_observer_is_logged_and_the_other_records_go_on(
    otel: OTel, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[float] = []

    def broken(model: str, total_ms: float, ok: bool, span: Any) -> None:
        calls.append(total_ms)
        if len(calls) == 1:
            raise RuntimeError("observer bug")

    m = _model(otel, observers=(broken,))

    async def run() -> None:
        await m.infer(torch.ones(1, 4))  # the caller gets its result: the observer runs later
        await m.infer(torch.ones(1, 4))
        await asyncio.sleep(0)

    with caplog.at_level(logging.ERROR, logger="aiconfig.inference._interface"):
        asyncio.run(run())
    assert len(calls) == 2
    assert len(otel.spans.get_finished_spans()) == 2  # the span ends even when its observer fails
    assert any("observer bug" in (r.exc_text or "") for r in caplog.records)
    assert "recording the telemetry of a call to 'policy' failed" in caplog.text


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
