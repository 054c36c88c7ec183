"""Latency alerting: per-model thresholds, dampening under a storm, the four outputs."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from aiconfig import AlertConfig
from aiconfig.monitoring import AlertManager


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Sinks:
    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
        self.logger_provider = LoggerProvider()
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.logs))
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))

    def counter(self) -> dict[tuple[str, str], float]:
        data = self.reader.get_metrics_data()
        out: dict[tuple[str, str], float] = {}
        assert data is not None
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == "aiconfig.alerts":
                        for p in m.data.data_points:
                            a = p.attributes or {}
                            out[(str(a["aiconfig.model"]), str(a["state"]))] = p.value  # type: ignore[union-attr]
        return out


@pytest.fixture
def sinks() -> Sinks:
    return Sinks()


def manager(sinks: Sinks, clock: Clock, **alert: Any) -> AlertManager:
    return AlertManager(
        {"policy": 10.0, "*": 100.0},
        AlertConfig(**alert),
        meter_provider=sinks.meter_provider,
        logger_provider=sinks.logger_provider,
        clock=clock,
    )


def test_thresholds_per_model_and_default(sinks: Sinks) -> None:
    am = manager(sinks, Clock())
    assert am.observe("policy", 9.0) is None
    assert am.observe("policy", 11.0) is not None
    assert am.observe("other", 50.0) is None  # default "*" threshold is 100
    assert am.observe("other", 150.0) is not None
    none = AlertManager({"policy": 10.0}, AlertConfig(), meter_provider=sinks.meter_provider)
    assert none.observe("unlisted", 1e9) is None
    off = AlertManager({"*": 1.0}, AlertConfig(enabled=False))
    assert off.observe("x", 1e9) is None


def test_storm_is_dampened_and_counted(sinks: Sinks) -> None:
    clock = Clock()
    am = manager(sinks, clock, window_s=60.0, max_alerts=3)
    for _ in range(10_000):  # a storm within one window
        am.observe("policy", 500.0)
        clock.t += 0.001
    assert len(am.emitted) == 3
    assert am.suppressed_total == 9_997
    assert sinks.counter() == {("policy", "emitted"): 3, ("policy", "suppressed"): 9_997}
    assert len(sinks.logs.get_finished_logs()) == 3
    # Next window: alerts flow again, and the first says how many were suppressed before it.
    clock.t += 60.0
    alert = am.observe("policy", 500.0)
    assert alert is not None and alert.suppressed_before == 9_997
    assert "9997 earlier breaches were suppressed" in alert.message()
    # Dampening is per model: another model is not silenced by this storm.
    assert am.observe("other", 1_000.0) is not None


def test_storm_over_many_windows_is_bounded(sinks: Sinks) -> None:
    clock = Clock()
    am = manager(sinks, clock, window_s=1.0, max_alerts=2)
    for _ in range(5_000):  # 5 s of breaches, one per ms
        am.observe("policy", 50.0)
        clock.t += 0.001
    assert len(am.emitted) <= 2 * 5 + 2


def test_alert_outputs_log_span_event_counter(
    sinks: Sinks, caplog: pytest.LogCaptureFixture
) -> None:
    am = manager(sinks, Clock())
    tracer = sinks.tracer_provider.get_tracer("t")
    # The CLI turns off propagation of "aiconfig" loggers, so listen on the logger itself.
    alert_log = logging.getLogger("aiconfig.alerts")
    alert_log.addHandler(caplog.handler)
    try:
        with tracer.start_as_current_span("call"):
            am("policy", 42.0, True)  # the LatencyObserver signature, no span: the current one
    finally:
        alert_log.removeHandler(caplog.handler)
    (span,) = sinks.spans.get_finished_spans()
    (event,) = span.events
    assert event.name == "aiconfig.alert"
    assert event.attributes is not None and event.attributes["aiconfig.alert.threshold_ms"] == 10.0
    (log,) = sinks.logs.get_finished_logs()
    assert log.log_record.event_name == "aiconfig.alert"
    assert "model 'policy' took 42.0 ms" in str(log.log_record.body)
    assert "latency breach" in caplog.text
    assert sinks.counter() == {("policy", "emitted"): 1}


class Hook:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                n = int(self.headers.get("content-length", "0"))
                outer.bodies.append(json.loads(self.rfile.read(n)))
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    try:
        yield h
    finally:
        h.stop()


def test_webhook_receives_dampened_alerts(sinks: Sinks, hook: Hook) -> None:
    am = manager(sinks, Clock(), webhook_url=hook.url, max_alerts=2)
    for _ in range(50):
        am.observe("policy", 99.0)
    am.close()
    am.close()
    assert len(hook.bodies) == 2
    assert hook.bodies[0]["type"] == "aiconfig.latency_breach"
    assert hook.bodies[0]["model"] == "policy" and hook.bodies[0]["latency_ms"] == 99.0
    assert am.webhook_results == ["sent", "sent"]


def test_webhook_honours_offline_mode(sinks: Sinks) -> None:
    am = AlertManager(
        {"*": 1.0},
        AlertConfig(webhook_url="http://hooks.example.com/x"),
        meter_provider=sinks.meter_provider,
        environ={"AP_NO_NETWORK": "1"},
    )
    assert am.observe("m", 5.0) is not None  # the alert itself still happens
    am.close()
    assert am.webhook_results == ["refused_offline"]


def test_webhook_failure_is_counted_not_raised(sinks: Sinks) -> None:
    dead = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{dead.server_address[1]}/x"
    dead.server_close()  # nothing listens there now
    am = AlertManager({"*": 1.0}, AlertConfig(webhook_url=url), meter_provider=sinks.meter_provider)
    am.observe("m", 5.0)
    am.close()
    assert am.webhook_results == ["failed"]
