"""setup_telemetry: exporters (in-memory, JSON lines, real OTLP/HTTP), sampling, resource."""

from __future__ import annotations

import ast
import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr

from aiconfig import MonitoringConfig
from aiconfig.inference import AIModelInterface, OfflineModeError, Slot
from aiconfig.monitoring import setup_telemetry

from .otlp_receiver import OTLPReceiver

REPO = Path(__file__).resolve().parents[2]


class Echo(AIModelInterface[int, int]):
    backend = "test"

    async def _execute(self, inputs: int, deadline: float, slot: Slot) -> int:
        return inputs


def run_calls(telemetry: Any, n: int = 3, name: str = "echo", *, alerts: bool = False) -> None:
    """``n`` calls of an Echo model wired to ``telemetry`` (and its alert manager if asked)."""

    async def main() -> None:
        m = Echo(
            name,
            latency_budget_ms=1_000,
            max_concurrency=1,
            max_queue=0,
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
        )
        if alerts:
            assert telemetry.alerts is not None
            m.add_observer(telemetry.alerts)
        for i in range(n):
            await m.infer(i)

    asyncio.run(main())


def test_in_memory_spans_metrics_and_resource() -> None:
    spans = InMemorySpanExporter()
    reader = InMemoryMetricReader()
    cfg = MonitoringConfig(exporters=(), service_name="svc", resource_attributes={"team": "agents"})
    tel = setup_telemetry(
        cfg,
        run_id="run-42",
        config_digest="sha256:abc",
        span_exporters=[spans],
        metric_readers=[reader],
    )
    run_calls(tel)
    finished = spans.get_finished_spans()
    assert len(finished) == 3
    res = dict(finished[0].resource.attributes)
    assert res["service.name"] == "svc"
    assert res["aiconfig.run_id"] == "run-42"
    assert res["aiconfig.config_digest"] == "sha256:abc"
    assert res["team"] == "agents"
    data = reader.get_metrics_data()
    assert data is not None
    names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert "aiconfig.inference.duration" in names
    tel.shutdown()
    tel.shutdown()  # idempotent


def test_sampling_drops_traces_not_metrics() -> None:
    spans = InMemorySpanExporter()
    reader = InMemoryMetricReader()
    cfg = MonitoringConfig(exporters=(), sample_ratio=0.0)
    with setup_telemetry(cfg, span_exporters=[spans], metric_readers=[reader]) as tel:
        run_calls(tel, n=5)
        assert spans.get_finished_spans() == ()
        data = reader.get_metrics_data()
        assert data is not None
        (point,) = [
            p
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == "aiconfig.inference.duration"
            for p in m.data.data_points
        ]
        assert point.count == 5  # type: ignore[union-attr]


def test_disabled_is_noop() -> None:
    tel = setup_telemetry(MonitoringConfig(enabled=False))
    assert tel.alerts is None
    run_calls(tel)
    tel.shutdown()


def test_jsonl_file_gets_spans_metrics_and_logs(tmp_path: Path) -> None:
    cfg = MonitoringConfig(
        exporters=("jsonl",), jsonl_path="telemetry/t.jsonl", latency_thresholds_ms={"*": 0.0001}
    )
    tel = setup_telemetry(cfg, run_id="r1", out_dir=tmp_path)
    assert tel.jsonl_path == tmp_path / "telemetry" / "t.jsonl"

    run_calls(tel, 1, alerts=True)
    tel.shutdown()
    lines = [json.loads(x) for x in (tmp_path / "telemetry" / "t.jsonl").read_text().splitlines()]
    signals = {x["signal"] for x in lines}
    assert signals == {"span", "metrics", "log"}
    span = next(x for x in lines if x["signal"] == "span")
    assert span["name"] == "inference echo"
    assert span["resource"]["attributes"]["aiconfig.run_id"] == "r1"
    log = next(x for x in lines if x["signal"] == "log")
    assert "latency breach" in log["body"]


def test_otlp_export_reaches_a_real_receiver(otlp: OTLPReceiver) -> None:
    cfg = MonitoringConfig(
        exporters=("otlp",),
        otlp_endpoint=otlp.endpoint,
        otlp_token=SecretStr("tok"),
        service_name="otlp-test",
        latency_thresholds_ms={"echo": 0.0001},
    )
    tel = setup_telemetry(cfg, run_id="run-otlp", config_digest="d1")

    run_calls(tel, 4, alerts=True)
    tel.shutdown()  # flushes every batch processor and the metric reader
    spans = otlp.spans()
    assert len(spans) == 4
    resource, span = spans[0]
    res = {kv.key: kv.value.string_value for kv in resource.attributes}
    assert res["service.name"] == "otlp-test"
    assert res["aiconfig.run_id"] == "run-otlp"
    assert res["aiconfig.config_digest"] == "d1"
    assert span.name == "inference echo"
    assert any(e.name == "aiconfig.alert" for _, s in spans for e in s.events)
    assert {"aiconfig.inference.duration", "aiconfig.alerts"} <= otlp.metric_names()
    assert any("latency breach" in b for b in otlp.log_bodies())
    assert all(h.get("authorization") == "Bearer tok" for h in otlp.headers)


def test_offline_mode_refuses_remote_collector() -> None:
    cfg = MonitoringConfig(exporters=("otlp",), otlp_endpoint="http://collector.example:4318")
    with pytest.raises(OfflineModeError, match="OTLP collector"):
        setup_telemetry(cfg, environ={"AP_NO_NETWORK": "1"})


def test_only_monitoring_imports_the_sdk() -> None:
    """Layering: library code outside aiconfig/monitoring uses opentelemetry-api only."""
    offenders = []
    for path in (REPO / "aiconfig").rglob("*.py"):
        if "monitoring" in path.relative_to(REPO / "aiconfig").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path}:{node.lineno} {n}"  # type: ignore[attr-defined]
                for n in names
                if n.startswith(("opentelemetry.sdk", "opentelemetry.exporter"))
            ]
    assert offenders == []


def test_console_exporter_writes_to_stderr_only(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = MonitoringConfig(exporters=("console",), latency_thresholds_ms={"*": 0.0001})
    tel = setup_telemetry(cfg, run_id="c1")

    run_calls(tel, 1, alerts=True)
    tel.shutdown()
    captured = capsys.readouterr()
    assert captured.out == ""  # stdout stays for results
    assert '"name": "inference echo"' in captured.err
    assert "aiconfig.inference.duration" in captured.err
    assert "latency breach" in captured.err
