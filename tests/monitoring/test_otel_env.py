"""``OTEL_*`` environment variables, checked against a real OTLP/HTTP receiver (protobuf)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from aiconfig import MonitoringConfig, VLLMConfig
from aiconfig.cli import main
from aiconfig.inference import OfflineModeError, TorchModelInterface, VLLMClient
from aiconfig.monitoring import setup_telemetry
from tests.inference.fake_vllm import FakeVLLM

from .otlp_receiver import OTLPReceiver

MODEL = "Qwen/Qwen2.5-0.5B-Instruct"


@pytest.fixture
def clean_otel_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for name in [k for k in os.environ if k.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def second_otlp() -> Iterator[OTLPReceiver]:
    receiver = OTLPReceiver()
    try:
        yield receiver
    finally:
        receiver.stop()


def torch_calls(tel: Any, n: int = 3) -> None:
    async def main() -> None:
        net = torch.nn.Sequential(torch.nn.Linear(4, 2))
        m = TorchModelInterface(
            net,
            name="policy",
            device="cpu",
            offload=False,
            latency_budget_ms=5_000,
            tracer_provider=tel.tracer_provider,
            meter_provider=tel.meter_provider,
        )
        for _ in range(n):
            await m.infer(torch.ones(1, 4))

    asyncio.run(main())


def attrs_of(kvs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in kvs:
        v = kv.value
        out[kv.key] = getattr(v, v.WhichOneof("value"))
    return out


def test_only_otel_variables_send_telemetry_to_the_receiver(
    otlp: OTLPReceiver, clean_otel_env: pytest.MonkeyPatch
) -> None:
    env = clean_otel_env
    env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.endpoint)
    env.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20env-token,x-tenant=agents")
    env.setenv("OTEL_SERVICE_NAME", "policy-svc")
    env.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=ci,service.name=x,team=env")
    # The config says what is emitted (otlp) and nothing about where: its default endpoint
    # (127.0.0.1:4318) has no collector, so only the environment can route it.
    cfg = MonitoringConfig(exporters=("otlp",), resource_attributes={"team": "agents"})
    tel = setup_telemetry(cfg, run_id="env-run")
    torch_calls(tel)
    record = tel.env_record()
    tel.shutdown()

    spans = otlp.spans()
    assert len(spans) == 3
    resource, span = spans[0]
    res = attrs_of(resource.attributes)
    assert res["service.name"] == "policy-svc"  # OTEL_SERVICE_NAME wins
    assert res["deployment.environment"] == "ci"
    assert res["team"] == "agents"  # the config's own attributes win over the environment's
    assert res["aiconfig.run_id"] == "env-run"
    assert span.name == "inference policy"  # {gen_ai.operation.name} {gen_ai.request.model}
    got = attrs_of(span.attributes)
    assert got["gen_ai.operation.name"] == "inference"
    assert got["gen_ai.provider.name"] == "pytorch"
    assert got["gen_ai.request.model"] == "policy"
    assert got["aiconfig.inference.outcome"] == "ok"
    assert "gen_ai.client.operation.duration" in otlp.metric_names()
    assert otlp.headers and all(h["authorization"] == "Bearer env-token" for h in otlp.headers)
    assert all(h["x-tenant"] == "agents" for h in otlp.headers)
    # Recorded for the manifest, secrets redacted.
    assert record["variables"]["OTEL_SERVICE_NAME"] == "policy-svc"
    assert record["variables"]["OTEL_EXPORTER_OTLP_HEADERS"] == (
        "authorization=<redacted>,x-tenant=<redacted>"
    )
    assert record["effective"]["endpoints"]["traces"] == f"{otlp.endpoint}/v1/traces"
    assert "env-token" not in json.dumps(record)


def test_a_signal_endpoint_wins_over_the_base_endpoint(
    otlp: OTLPReceiver, second_otlp: OTLPReceiver, clean_otel_env: pytest.MonkeyPatch
) -> None:
    env = {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{otlp.endpoint}/v1/traces",  # used as is
        "OTEL_EXPORTER_OTLP_ENDPOINT": second_otlp.endpoint + "/",  # /v1/<signal> appended
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-signal=traces",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-signal=generic",
    }
    tel = setup_telemetry(MonitoringConfig(exporters=("otlp",)), environ=env)
    torch_calls(tel, 2)
    tel.shutdown()
    assert len(otlp.spans()) == 2 and otlp.metric_names() == set()
    assert second_otlp.spans() == [] and "gen_ai.client.operation.duration" in (
        second_otlp.metric_names()
    )
    assert {h["x-signal"] for h in otlp.headers} == {"traces"}
    assert {h["x-signal"] for h in second_otlp.headers} == {"generic"}


def test_sdk_disabled_turns_every_signal_off(
    otlp: OTLPReceiver, clean_otel_env: pytest.MonkeyPatch
) -> None:
    env = {"OTEL_SDK_DISABLED": "TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint}
    tel = setup_telemetry(MonitoringConfig(exporters=("otlp",)), environ=env)
    torch_calls(tel, 2)
    tel.shutdown()
    assert otlp.spans() == [] and otlp.metric_names() == set()
    assert tel.alerts is None
    assert tel.env_record()["effective"]["sdk_disabled"] is True


@pytest.mark.parametrize(
    ("env", "spans", "warning"),
    [
        ({"OTEL_TRACES_SAMPLER": "always_off"}, 0, None),
        (
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
            0,
            None,
        ),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, 4, "[0, 1]"),
        ({"OTEL_TRACES_SAMPLER": "xray"}, 0, "not supported here"),  # config's ratio 0 applies
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, 0, "unknown"),
        ({"OTEL_TRACES_SAMPLER_ARG": "0.5"}, 0, "only applies"),
        ({"OTEL_SDK_DISABLED": "yes"}, 0, "read as false"),
        ({"OTEL_TRACES_SAMPLER": "always_on"}, 4, None),  # wins over sample_ratio: 0
    ],
)
def test_sampler_from_the_environment(env: dict[str, str], spans: int, warning: str | None) -> None:
    exporter = InMemorySpanExporter()
    reader = InMemoryMetricReader()
    cfg = MonitoringConfig(exporters=(), sample_ratio=0.0)
    logged: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: logged.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("aiconfig.monitoring")
    logger.addHandler(handler)
    try:
        tel = setup_telemetry(cfg, environ=env, span_exporters=[exporter], metric_readers=[reader])
    finally:
        logger.removeHandler(handler)
    torch_calls(tel, 4)
    assert len(exporter.get_finished_spans()) == spans
    data = reader.get_metrics_data()
    assert data is not None and data.resource_metrics  # metrics are never sampled
    warnings = tel.env_record()["warnings"]
    if warning is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and warning in warnings[0]
        assert logged == warnings
    tel.shutdown()


def test_unusable_endpoint_and_protocol_are_ignored_with_a_warning(
    otlp: OTLPReceiver, clean_otel_env: pytest.MonkeyPatch
) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    cfg = MonitoringConfig(exporters=("otlp",), otlp_endpoint=otlp.endpoint)
    tel = setup_telemetry(cfg, environ=env)
    torch_calls(tel, 1)
    tel.shutdown()
    assert len(otlp.spans()) == 1  # the config's endpoint applies
    text = " ".join(tel.env_record()["warnings"])
    assert "OTEL_EXPORTER_OTLP_ENDPOINT='collector:4318' ignored" in text
    assert "OTEL_EXPORTER_OTLP_PROTOCOL='grpc' ignored" in text


def test_offline_mode_names_the_variable_that_points_away() -> None:
    env = {"AP_NO_NETWORK": "1", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector.example:4318"}
    with pytest.raises(OfflineModeError, match="OTEL_EXPORTER_OTLP_ENDPOINT"):
        setup_telemetry(MonitoringConfig(exporters=("otlp",)), environ=env)


def test_vllm_calls_follow_the_genai_conventions_at_the_receiver(otlp: OTLPReceiver) -> None:
    server = FakeVLLM().start()
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint}
    tel = setup_telemetry(MonitoringConfig(exporters=("otlp",)), environ=env)

    async def main() -> None:
        client = VLLMClient(
            VLLMConfig(base_url=server.base_url, model=MODEL),
            tracer_provider=tel.tracer_provider,
            meter_provider=tel.meter_provider,
        )
        try:
            await client.chat("hello there")
            await client.complete("once upon", stream=True)
        finally:
            await client.aclose()

    try:
        asyncio.run(main())
    finally:
        server.stop()
        tel.shutdown()
    by_name = {span.name: span for _, span in otlp.spans()}
    assert set(by_name) == {f"chat {MODEL}", f"text_completion {MODEL}"}
    chat = by_name[f"chat {MODEL}"]
    assert chat.kind == chat.SPAN_KIND_CLIENT
    got = attrs_of(chat.attributes)
    assert got["gen_ai.operation.name"] == "chat"
    assert got["gen_ai.provider.name"] == "vllm"
    assert got["gen_ai.request.model"] == MODEL
    assert got["gen_ai.response.model"] == MODEL
    assert got["gen_ai.usage.input_tokens"] > 0 and got["gen_ai.usage.output_tokens"] > 0
    assert got["server.address"] == "127.0.0.1"
    ops = set()
    for req in otlp.requests["/v1/metrics"]:
        for rm in req.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == "gen_ai.client.operation.duration":
                        assert m.unit == "s"
                        for p in m.histogram.data_points:
                            ops.add(attrs_of(p.attributes)["gen_ai.operation.name"])
    assert ops == {"chat", "text_completion"}


def test_the_infer_run_records_the_otel_environment(
    tmp_path: Path, otlp: OTLPReceiver, clean_otel_env: pytest.MonkeyPatch
) -> None:
    env = clean_otel_env
    env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.endpoint)
    env.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20s3cret")
    env.setenv("OTEL_SERVICE_NAME", "infer-svc")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "meta:\n  name: otel-env\n  version: 1\nmodel:\n  input_resolution: [64, 36]\n"
        "inference:\n  device: cpu\n  max_batch_size: 2\n  latency_budget_ms: 5000\n"
        "monitoring:\n  exporters: [otlp]\n",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    rc = main(["infer", "--config", str(cfg), "--allow-unsigned", "--synthetic", "3",
               "--out", str(out), "--run-id", "otel-env-1"])  # fmt: skip
    assert rc == 0
    manifest = json.loads((out / "manifest.json").read_text())
    variables = manifest["telemetry"]["otel_env"]["variables"]
    assert variables["OTEL_SERVICE_NAME"] == "infer-svc"
    assert variables["OTEL_EXPORTER_OTLP_HEADERS"] == "authorization=<redacted>"
    assert manifest["provenance"]["otel_env"] == variables
    assert manifest["provenance"]["sha256"] == manifest["config"]["sha256"]
    assert "s3cret" not in (out / "manifest.json").read_text()
    names = {span.name for _, span in otlp.spans()}
    assert {"aiconfig infer", "aiconfig.config.load", "inference lol-bc-policy"} <= names
    sizes = {
        attrs_of(s.attributes).get("aiconfig.inference.batch_size")
        for _, s in otlp.spans()
        if s.name.startswith("inference ")
    }
    assert sizes <= {1, 2} and sizes  # batched per the config's max_batch_size
