"""The async model interface every backend shares: budget, admission, timing, telemetry.

One call goes::

    try_enter (refuse at once if full) -> wait in queue -> execute -> result
    |<------------ queue_ms ------------>|<- compute_ms ->|
    |<------------------- total_ms <= budget_ms ------------------->|

Each call runs under one deadline (``budget_ms`` from ``inference.latency_budget_ms``, or the
per-call override). Past it the call raises :class:`LatencyBudgetExceeded` naming the phase.
Telemetry goes through ``opentelemetry-api`` only: without a configured SDK every instrument is a
no-op, so the library costs nothing extra when monitoring is off.

A call's telemetry (its span, metrics and observers) is recorded after the caller has its result:
on the event loop's next turn, which in an agent's loop is the wait for the next observation, in
the context the call ended in. A caller that never yields to the loop pays it as before, one
record a call (the oldest one once ``_MAX_DEFERRED`` are waiting; those are recorded together on
the next turn). Spans opened up front (the vLLM client's) end with their call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from opentelemetry import context, metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from ._admission import Admission
from ._batching import BatchEntry, BatchScheduler, TooLate
from ._call import (
    _NS_PER_MS,
    _NS_PER_S,
    LATENCY_BUCKETS_S,
    InferenceResult,
    LatencyObserver,
    Slot,
    _Call,
)
from ._errors import LatencyBudgetExceeded, Overloaded, Phase

__all__ = [
    "AIModelInterface",
    "InferenceResult",
    "LatencyObserver",
    "Slot",
]

_log = logging.getLogger(__name__)

#: Calls whose telemetry may wait for the loop's next turn; past it each call records the oldest.
_MAX_DEFERRED = 64

InT = TypeVar("InT")
OutT = TypeVar("OutT")


class AIModelInterface(ABC, Generic[InT, OutT]):
    """Async inference with an explicit latency budget and bounded concurrency + queue.

    Subclasses implement :meth:`_execute`. Use :meth:`infer`; it is safe to call from many tasks
    of one event loop at once.
    """

    backend: str = "abstract"
    #: True when the backend computes synchronously (:meth:`_execute_inline`, no awaiting).
    _inline: bool = False
    #: True when the call's span must be the current span while it runs (children, events).
    _span_in_context: bool = False
    _span_kind: SpanKind = SpanKind.INTERNAL
    #: True when admission refuses calls whose budget cannot cover the running compute estimate.
    _deadline_aware: bool = False
    #: GenAI semantic conventions for in-process model calls: ``gen_ai.provider.name`` (None:
    #: the backend records its own, as the vLLM client does per HTTP request) and the
    #: operation. A policy's forward pass is neither ``chat`` nor ``generate_content``, so it
    #: uses the custom operation name ``inference`` the conventions allow, which keeps the span
    #: name ``{gen_ai.operation.name} {gen_ai.request.model}`` = ``inference {model}``.
    _genai_provider: str | None = None
    _genai_operation: str = "inference"

    def __init__(
        self,
        name: str,
        *,
        latency_budget_ms: float,
        max_concurrency: int,
        max_queue: int,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        observers: tuple[LatencyObserver, ...] = (),
        defer_telemetry: bool = True,
    ) -> None:
        if latency_budget_ms <= 0:
            raise ValueError("latency_budget_ms must be > 0")
        self.name = name
        self.latency_budget_ms = float(latency_budget_ms)
        self.admission = Admission(
            name, max_concurrency, max_queue, deadline_aware=self._deadline_aware
        )
        self._batcher: BatchScheduler | None = None
        self._observers: list[LatencyObserver] = list(observers)
        #: Record each call's span, metrics and observers after its caller has the result
        #: (see the module docstring); False records them before ``infer`` returns.
        self.defer_telemetry = defer_telemetry
        self._deferred: deque[tuple[_Call, _Failure | None, context.Context]] = deque()
        self._flush_on: asyncio.AbstractEventLoop | None = None
        self._tracer = trace.get_tracer("aiconfig.inference", tracer_provider=tracer_provider)
        meter = metrics.get_meter("aiconfig.inference", meter_provider=meter_provider)
        self._m_duration = meter.create_histogram(
            "aiconfig.inference.duration",
            unit="s",
            description="Time of one inference call, queue included, by outcome",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_S,
        )
        # Per-call metric cost is the wrapper's main overhead (~8 us a record), so the hot path
        # records one histogram; queue waits are recorded only for calls that did queue, and
        # every span and result still carries queue_ms and compute_ms.
        self._m_queue = meter.create_histogram(
            "aiconfig.inference.queue.duration",
            unit="s",
            description="Time waited for a concurrency slot, by calls that had to queue",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_S,
        )
        self._m_depth = meter.create_up_down_counter(
            "aiconfig.inference.queue.depth",
            unit="{call}",
            description="Calls waiting for a concurrency slot",
        )
        self._m_rejections = meter.create_counter(
            "aiconfig.inference.rejections",
            unit="{call}",
            description="Calls refused (overloaded) or failed past their latency budget",
        )
        # Metric attributes stay minimal: the SDK hashes them on every record.
        self._attrs_min = {"aiconfig.model": name}
        self._attrs: dict[str, Any] = {"aiconfig.model": name}
        outcomes = ("ok", "overloaded", "budget_exceeded", "error")
        self._attrs_by_outcome = {
            o: {"aiconfig.model": name, "aiconfig.inference.outcome": o} for o in outcomes
        }
        self._span_name = f"inference {name}"
        if self._genai_provider is not None:
            # GenAI semantic conventions: the span is "{operation} {model}" with gen_ai.*
            # attributes, and the call's duration is recorded once, as the conventions' own
            # gen_ai.client.operation.duration (with the aiconfig outcome too): one histogram
            # record per call is most of the SDK's per-call cost, so it is not recorded twice.
            genai = {
                "gen_ai.operation.name": self._genai_operation,
                "gen_ai.provider.name": self._genai_provider,
                "gen_ai.request.model": name,
            }
            # gen_ai.request.model names the model: aiconfig.model would repeat it (and every
            # attribute costs the SDK about half a microsecond per call).
            self._attrs = dict(genai)
            self._span_name = f"{self._genai_operation} {name}"
            self._m_duration = meter.create_histogram(
                "gen_ai.client.operation.duration",
                unit="s",
                description="GenAI operation duration",
                explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_S,
            )
            errors = {"overloaded": "Overloaded", "budget_exceeded": "LatencyBudgetExceeded"}
            # error.type (absent when ok) carries the outcome: no aiconfig attribute needed.
            self._attrs_by_outcome = {
                o: genai if o == "ok" else {**genai, "error.type": errors.get(o, "ModelError")}
                for o in outcomes
            }

    # -- extension points --------------------------------------------------------------------

    @abstractmethod
    async def _execute(self, inputs: InT, deadline: float, slot: Slot) -> OutT:
        """Compute the output. ``deadline`` is in ``loop.time()`` units."""

    def _span_attributes(self, inputs: InT) -> Mapping[str, Any]:
        """Extra attributes for the call's span (the vLLM client adds GenAI semconv ones)."""
        return self._attrs

    def _execute_inline(self, inputs: InT) -> OutT:
        """Synchronous compute, used instead of :meth:`_execute` when ``_inline`` is true."""
        raise NotImplementedError

    def _launch_batch(self, entries: list[BatchEntry]) -> None:
        """Start one batch; call ``self.batcher.complete`` when it ends (batching backends)."""
        raise NotImplementedError

    def _enable_batching(self, max_batch_size: int, batch_window_ms: float) -> None:
        """Route calls through a :class:`BatchScheduler` (``max_batch_size`` > 1)."""
        self._batcher = BatchScheduler(
            self.name,
            max_batch_size=max_batch_size,
            max_concurrency=self.admission.max_concurrency,
            max_queue=self.admission.max_queue,
            batch_window_ms=batch_window_ms,
            launch=self._launch_batch,
            on_depth=lambda delta: self._m_depth.add(delta, self._attrs_min),
        )

    @property
    def batcher(self) -> BatchScheduler | None:
        """The batch scheduler when batching is on, else None."""
        return self._batcher

    # -- public API --------------------------------------------------------------------------

    def add_observer(self, observer: LatencyObserver) -> None:
        """Call ``observer(model, total_ms, ok, span)`` after every call (e.g. alerting)."""
        self._observers.append(observer)

    @property
    def estimate_ms(self) -> float | None:
        """Running estimate of one compute (a batch when batching), None until measured."""
        batcher = self._batcher
        return (batcher.estimate if batcher is not None else self.admission.estimate).ms

    async def infer(self, inputs: InT, *, budget_ms: float | None = None) -> InferenceResult[OutT]:
        """Run one call within ``budget_ms`` (default: the configured latency budget).

        Raises :class:`Overloaded` at once when the queue is full, and
        :class:`LatencyBudgetExceeded` when the call runs past its budget (or, phase
        ``admission``, at once when its budget cannot cover the estimated compute time).
        """
        budget = self.latency_budget_ms if budget_ms is None else float(budget_ms)
        call = _Call(budget, self._span_attributes(inputs))
        span: trace.Span | None = None
        token = None
        if self._span_in_context:
            # The vLLM client's span is current while it runs: retries add events to it and
            # instrumented HTTP libraries nest their spans under it.
            span = self._tracer.start_span(
                self._span_name,
                kind=self._span_kind,
                attributes=call.attrs,
                record_exception=False,
                set_status_on_exception=False,
            )
            token = context.attach(trace.set_span_in_context(span))
        # Otherwise the span is created when the call ends, backdated to its start, with all
        # its attributes at once: about half the SDK cost of a span opened up front.
        try:
            if self._batcher is not None:
                output = await self._run_batched(inputs, call)
            else:
                admission = self.admission
                probe = admission.check_budget(budget)
                if self._inline and admission.try_take():
                    output = self._run_inline(inputs, call)  # no coroutine: the hot path
                else:
                    output = await self._run_in_slot(inputs, call, probe)
            call.outcome = "ok"
        except TimeoutError:
            err = self._budget_error(call)
            self._end(span, call, err)
            raise err from None
        except Overloaded as exc:
            call.outcome = "overloaded"
            call.t_end = time.perf_counter_ns()
            self._end(span, call, exc)
            raise
        except LatencyBudgetExceeded as exc:
            call.outcome = "budget_exceeded"
            call.t_end = time.perf_counter_ns()
            self._end(span, call, exc)
            raise
        except BaseException as exc:
            call.t_end = time.perf_counter_ns()
            self._end(span, call, exc)
            raise
        else:
            self._end(span, call, None)
        finally:
            if token is not None:
                context.detach(token)
        t0 = call.t0
        return InferenceResult(
            output,
            self.name,
            (call.t_slot - t0) / _NS_PER_MS,
            (call.t_end - call.t_slot) / _NS_PER_MS,
            (call.t_end - t0) / _NS_PER_MS,
            budget,
        )

    # -- the two ways a call runs ------------------------------------------------------------

    def _run_inline(self, inputs: InT, call: _Call) -> OutT:
        """Synchronous backend and a free slot (taken): nothing to await, so no timer either;
        the budget is checked once the (uninterruptible) computation returns."""
        admission = self.admission
        call.t_slot = t_slot = time.perf_counter_ns()
        call.got_slot = True
        try:
            output = self._execute_inline(inputs)
        finally:
            admission.release()
        call.t_end = t_end = time.perf_counter_ns()
        if admission.deadline_aware:
            admission.estimate.observe((t_end - t_slot) / _NS_PER_MS)
        if (t_end - call.t0) / _NS_PER_MS > call.budget:
            raise TimeoutError  # an inline computation overran: report it now
        return output

    async def _run_in_slot(self, inputs: InT, call: _Call, probe: bool) -> OutT:
        """Wait for a slot in the EDF queue (or take a free one), then compute."""
        admission = self.admission
        deadline = asyncio.get_running_loop().time() + call.budget / 1000.0
        waiter = admission.try_enter(deadline, probe=probe)
        async with asyncio.timeout_at(deadline):
            if waiter is not None:
                call.queued = True
                self._m_depth.add(1, self._attrs_min)
                try:
                    handed = await waiter
                except BaseException:
                    admission.abandon(waiter)
                    raise
                finally:
                    self._m_depth.add(-1, self._attrs_min)
                if not handed:  # the queue dropped it: its remaining budget was too short
                    raise self._budget_error(call, "queue", admission.estimate.ms)
            slot = Slot(admission)
            call.t_slot = slot.started_ns
            call.got_slot = True
            try:
                output = await self._execute(inputs, deadline, slot)
            finally:
                if not slot.deferred:
                    slot.release()
        call.t_end = time.perf_counter_ns()
        return output

    async def _run_batched(self, inputs: InT, call: _Call) -> OutT:
        """Join the batch queue and wait for this call's share of its batch's output."""
        batcher = self._batcher
        assert batcher is not None  # noqa: S101 - only called when batching
        entry = batcher.submit(inputs, call.budget)
        call.queued = True
        try:
            async with asyncio.timeout_at(entry.deadline):
                output: OutT = await entry.future
        except TooLate as late:
            raise self._budget_error(call, "queue", late.estimate_ms) from None
        except BaseException:
            batcher.abandon(entry)
            if entry.t_start:
                call.t_slot, call.got_slot = entry.t_start, True
            raise
        finally:
            call.batch_size = entry.batch_size
        call.t_slot, call.got_slot = entry.t_start, True
        call.t_end = time.perf_counter_ns()
        return output

    def _budget_error(
        self, call: _Call, phase: Phase | None = None, estimate_ms: float | None = None
    ) -> LatencyBudgetExceeded:
        """The budget error of a call that ran out of time now (in ``phase``, else where it is)."""
        call.outcome = "budget_exceeded"
        call.t_end = now = time.perf_counter_ns()
        if phase is None:
            phase = "compute" if call.got_slot else "queue"
        if phase == "queue":
            call.t_slot = now
        if estimate_ms is None:
            estimate_ms = self.estimate_ms
        return LatencyBudgetExceeded(
            self.name,
            budget_ms=call.budget,
            elapsed_ms=(now - call.t0) / _NS_PER_MS,
            phase=phase,
            queue_ms=(call.t_slot - call.t0) / _NS_PER_MS,
            estimate_ms=estimate_ms,
        )

    def _end(self, span: trace.Span | None, call: _Call, error: BaseException | None) -> None:
        """Record the call's telemetry now (a span opened up front, or deferral off) or queue it
        for the loop's next turn, with the context it ended in (the span's parent)."""
        ctx = context.get_current()
        # What telemetry needs of an error is its type and first line: keeping the exception
        # would keep its traceback's frames (and the call's inputs) alive while it waits.
        failed = None if error is None else _Failure(error)
        if span is not None or not self.defer_telemetry:
            self._finish(span, call, failed, ctx)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not under asyncio (another runner): nothing to defer to
            self._finish(None, call, failed, ctx)
            return
        deferred = self._deferred
        deferred.append((call, failed, ctx))
        if self._flush_on is not loop:  # no flush is scheduled on this loop yet
            self._flush_on = loop
            loop.call_soon(self._flush_scheduled)
        elif len(deferred) > _MAX_DEFERRED:  # the caller is not yielding: record one now
            self._record(*deferred.popleft())

    def _flush_scheduled(self) -> None:
        self._flush_on = None
        self.flush_telemetry()

    def flush_telemetry(self) -> None:
        """Record now the telemetry of calls that returned but whose spans, metrics and
        observers wait for the event loop's next turn (``aclose`` does this too)."""
        deferred = self._deferred
        while deferred:
            self._record(*deferred.popleft())

    def _record(self, call: _Call, failed: _Failure | None, ctx: context.Context) -> None:
        """One deferred record, in the context its call ended in (observers see that call's
        parent span, as they would have inside the call); its caller has returned, so an SDK
        failure is logged, not raised."""
        token = context.attach(ctx)
        try:
            self._finish(None, call, failed, ctx)
        except Exception:  # noqa: BLE001 - one record's failure must not stop the others
            _log.exception("recording the telemetry of a call to %r failed", self.name)
        finally:
            context.detach(token)

    def _finish(
        self,
        span: trace.Span | None,
        call: _Call,
        failed: _Failure | None,
        ctx: context.Context,
    ) -> None:
        """Metrics, the span (created now, backdated, unless it was opened up front), observers.

        ``ctx`` is the context the call ended in, looked up once: the SDK would otherwise read
        the context variable again for the histogram's exemplar filter, the span's parent and
        the sampler.
        """
        t0 = call.t0
        t_end = call.t_end
        outcome = call.outcome
        total_s = (t_end - t0) / _NS_PER_S
        by_outcome = self._attrs_by_outcome[outcome]
        self._m_duration.record(total_s, by_outcome, ctx)
        if outcome == "overloaded":
            self._m_rejections.add(1, by_outcome, ctx)
        else:
            if call.queued:
                self._m_queue.record((call.t_slot - t0) / _NS_PER_S, self._attrs_min, ctx)
            if outcome == "budget_exceeded":
                self._m_rejections.add(1, by_outcome, ctx)
        t_slot = call.t_slot or t_end
        attrs: dict[str, Any] = {
            "aiconfig.inference.outcome": outcome,
            "aiconfig.inference.budget_ms": call.budget,
            "aiconfig.inference.queue_ms": (t_slot - t0) / _NS_PER_MS,
            "aiconfig.inference.compute_ms": (t_end - t_slot) / _NS_PER_MS,
        }
        if call.batch_size:
            attrs["aiconfig.inference.batch_size"] = call.batch_size
        if failed is not None:
            attrs["error.type"] = failed.type
        if span is None:
            # Every attribute in one SDK call: the span is created now, backdated.
            span = self._tracer.start_span(
                self._span_name,
                ctx,
                self._span_kind,
                {**call.attrs, **attrs},
                start_time=call.t0_wall,
                record_exception=False,
                set_status_on_exception=False,
            )
        elif span.is_recording():
            span.set_attributes(attrs)
        try:
            if failed is not None and span.is_recording():
                span.set_status(Status(StatusCode.ERROR, failed.message))
            if self._observers:
                ok = failed is None
                total_ms = total_s * 1000.0
                for observer in self._observers:
                    try:
                        observer(self.name, total_ms, ok, span)
                    except Exception:  # noqa: BLE001 - an observer's bug never fails the call
                        _log.exception("an observer of %r failed", self.name)
        finally:
            span.end(call.t0_wall + (t_end - t0))

    async def aclose(self) -> None:
        """Record deferred telemetry and release resources (thread pools, HTTP connections).
        Safe to call twice."""
        self.flush_telemetry()


class _Failure:
    """What a call's telemetry records of its error: the type's name and the first line."""

    __slots__ = ("message", "type")

    def __init__(self, error: BaseException) -> None:
        self.type = type(error).__name__
        lines = str(error).splitlines()
        self.message = (lines[0] if lines else self.type)[:200]
