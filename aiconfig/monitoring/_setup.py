"""OpenTelemetry set-up from ``MonitoringConfig``: providers, exporters, sampling, resource.

This package is the only place in aiconfig that imports the OpenTelemetry SDK and exporters;
library code (config, capture, inference) emits through ``opentelemetry-api`` and reaches
whatever :func:`setup_telemetry` configured here.

Exporters (``monitoring.exporters``):

* ``console`` -- spans, metrics and log records as JSON on **stderr** (stdout stays for results);
* ``otlp`` -- OTLP/HTTP protobuf to ``otlp_endpoint`` + ``/v1/traces``, ``/v1/metrics``,
  ``/v1/logs``, with ``Authorization: Bearer <otlp_token>`` when a token is set; refused in
  offline mode unless the endpoint is loopback;
* ``jsonl`` -- one JSON object a line in ``jsonl_path`` (relative to ``out_dir`` when given).

Traces are sampled with ``ParentBased(TraceIdRatioBased(sample_ratio))``: a sampled-out root
drops its whole trace, and metrics are never sampled. The resource carries ``service.name``,
``aiconfig.run_id``, ``aiconfig.config_digest`` and every ``resource_attributes`` entry.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    ConsoleLogRecordExporter,
    LogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)

from aiconfig import AIConfig, MonitoringConfig
from aiconfig.inference.offline import check_network_allowed

from ._alerts import AlertManager
from ._jsonl import (
    JsonLinesFile,
    JsonLinesLogExporter,
    JsonLinesMetricExporter,
    JsonLinesSpanExporter,
)

__all__ = ["Telemetry", "setup_for_run", "setup_telemetry"]

_OTLP_TIMEOUT_S = 5.0


@dataclass
class Telemetry:
    """Configured providers plus the alert manager; ``shutdown`` flushes and is idempotent."""

    tracer_provider: trace.TracerProvider
    meter_provider: metrics.MeterProvider
    logger_provider: _logs.LoggerProvider
    alerts: AlertManager | None
    resource_attributes: Mapping[str, Any] = field(default_factory=dict)
    jsonl_path: Path | None = None
    _closed: bool = False

    def tracer(self, name: str) -> trace.Tracer:
        return self.tracer_provider.get_tracer(name)

    def meter(self, name: str) -> metrics.Meter:
        return self.meter_provider.get_meter(name)

    def record_config_load(self, cfg: AIConfig, start_ns: int, end_ns: int) -> None:
        """Record the config load/verify step as a span, after the fact.

        Telemetry is configured *from* the config, so the load cannot be traced live; the job
        times it (``time.time_ns()`` before and after ``aiconfig.load``) and calls this once
        the providers exist. The span carries the file, its sha256 and who signed it.
        """
        prov = cfg.provenance
        span = self.tracer("aiconfig.config").start_span(
            "aiconfig.config.load",
            start_time=start_ns,
            attributes={
                "aiconfig.config.path": prov.path,
                "aiconfig.config.sha256": prov.sha256,
                "aiconfig.config.name": cfg.meta.name,
                "aiconfig.config.version": cfg.meta.version,
                "aiconfig.config.signed": prov.signed,
                "aiconfig.config.signers": [s.principal for s in prov.signers],
            },
        )
        span.end(end_time=end_ns)

    def force_flush(self) -> None:
        for p in (self.tracer_provider, self.meter_provider, self.logger_provider):
            flush = getattr(p, "force_flush", None)
            if flush is not None:
                flush()

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.alerts is not None:
            self.alerts.close()
        for p in (self.tracer_provider, self.meter_provider, self.logger_provider):
            stop = getattr(p, "shutdown", None)
            if stop is not None:
                stop()

    def __enter__(self) -> Telemetry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def _disabled() -> Telemetry:
    return Telemetry(
        trace.NoOpTracerProvider(), metrics.NoOpMeterProvider(), _logs.NoOpLoggerProvider(), None
    )


def setup_telemetry(
    cfg: MonitoringConfig,
    *,
    run_id: str | None = None,
    config_digest: str | None = None,
    out_dir: str | Path | None = None,
    set_global: bool = False,
    span_exporters: Sequence[SpanExporter] = (),
    metric_readers: Sequence[MetricReader] = (),
    log_exporters: Sequence[LogRecordExporter] = (),
    metric_export_interval_ms: float = 10_000,
    environ: Mapping[str, str] | None = None,
) -> Telemetry:
    """Build tracer, meter and logger providers from ``cfg`` (plus any extra exporters).

    ``span_exporters``/``log_exporters`` are attached synchronously and ``metric_readers`` as
    given: tests pass the SDK's in-memory ones. With ``set_global`` the providers become the
    process-wide ones that ``opentelemetry-api`` callers reach (OpenTelemetry allows that once
    per process). ``monitoring.enabled: false`` returns no-op providers.
    """
    if not cfg.enabled:
        return _disabled()
    env = os.environ if environ is None else environ
    attrs: dict[str, Any] = {"service.name": cfg.service_name}
    run = run_id or env.get("AP_RUN_ID")
    if run:
        attrs["aiconfig.run_id"] = run
    if config_digest:
        attrs["aiconfig.config_digest"] = config_digest
    attrs.update(cfg.resource_attributes)
    resource = Resource.create(attrs)

    spans: list[tuple[SpanExporter, bool]] = [(e, False) for e in span_exporters]
    metric_exporters: list[MetricExporter] = []
    logs: list[tuple[LogRecordExporter, bool]] = [(e, False) for e in log_exporters]
    jsonl_path: Path | None = None
    if "otlp" in cfg.exporters:
        spans_o, metrics_o, logs_o = _otlp(cfg, env)
        spans.append((spans_o, True))
        metric_exporters.append(metrics_o)
        logs.append((logs_o, True))
    if "console" in cfg.exporters:
        spans.append((ConsoleSpanExporter(out=sys.stderr), False))
        metric_exporters.append(ConsoleMetricExporter(out=sys.stderr))
        logs.append((ConsoleLogRecordExporter(out=sys.stderr), False))
    if "jsonl" in cfg.exporters:
        jsonl_path = Path(cfg.jsonl_path)
        if out_dir is not None and not jsonl_path.is_absolute():
            jsonl_path = Path(out_dir) / jsonl_path
        sink = JsonLinesFile(jsonl_path)
        spans.append((JsonLinesSpanExporter(sink), True))
        metric_exporters.append(JsonLinesMetricExporter(sink))
        logs.append((JsonLinesLogExporter(sink), True))

    tracer_provider = TracerProvider(resource=resource, sampler=_sampler(cfg.sample_ratio))
    for exporter, batched in spans:
        tracer_provider.add_span_processor(
            BatchSpanProcessor(exporter) if batched else SimpleSpanProcessor(exporter)
        )
    readers: list[MetricReader] = list(metric_readers)
    readers += [
        PeriodicExportingMetricReader(e, export_interval_millis=metric_export_interval_ms)
        for e in metric_exporters
    ]
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    logger_provider = LoggerProvider(resource=resource)
    for log_exporter, batched in logs:
        logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(log_exporter)
            if batched
            else SimpleLogRecordProcessor(log_exporter)
        )
    alerts = AlertManager(
        cfg.latency_thresholds_ms,
        cfg.alert,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
        environ=environ,
    )
    if set_global:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
        _logs.set_logger_provider(logger_provider)
    return Telemetry(
        tracer_provider, meter_provider, logger_provider, alerts, dict(attrs), jsonl_path
    )


def setup_for_run(
    cfg: AIConfig, *, run_id: str | None = None, out_dir: str | Path | None = None
) -> Telemetry:
    """What a job (``aiconfig infer``, a capture run) calls once at start.

    Sets up ``cfg.monitoring`` as the process-wide providers, so every ``opentelemetry-api``
    span and metric of the run (config, capture, inference) goes to the configured exporters,
    under a resource naming the run (``AP_RUN_ID`` when ``run_id`` is None) and the sha256 of
    the config file. Call ``shutdown()`` (or use it as a context manager) at the end to flush.
    """
    return setup_telemetry(
        cfg.monitoring,
        run_id=run_id,
        config_digest=f"sha256:{cfg.provenance.sha256}" if cfg.provenance.sha256 else None,
        out_dir=out_dir,
        set_global=True,
    )


def _sampler(ratio: float) -> Sampler:
    # The ratio sampler hashes every trace id; at 1.0 and 0.0 the constant samplers decide the
    # same without it (a few microseconds per span on the inference hot path).
    if ratio >= 1.0:
        return ParentBased(ALWAYS_ON)
    if ratio <= 0.0:
        return ParentBased(ALWAYS_OFF)
    return ParentBased(TraceIdRatioBased(ratio))


def _otlp(cfg: MonitoringConfig, env: Mapping[str, str]) -> tuple[Any, Any, Any]:
    # Imported here: the OTLP exporter pulls in protobuf and requests (~100 ms).
    from opentelemetry.exporter.otlp.proto.http._log_exporter import (
        OTLPLogExporter,
    )
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter,
    )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter,
    )

    base = cfg.otlp_endpoint.rstrip("/")
    check_network_allowed(
        base, purpose="the OTLP collector", key_path="monitoring.otlp_endpoint", environ=env
    )
    headers = {}
    if cfg.otlp_token is not None:
        headers["authorization"] = f"Bearer {cfg.otlp_token.get_secret_value()}"
    kw: dict[str, Any] = {"headers": headers, "timeout": _OTLP_TIMEOUT_S}
    return (
        OTLPSpanExporter(endpoint=f"{base}/v1/traces", **kw),
        OTLPMetricExporter(endpoint=f"{base}/v1/metrics", **kw),
        OTLPLogExporter(endpoint=f"{base}/v1/logs", **kw),
    )
