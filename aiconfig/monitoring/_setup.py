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

On top of the config, the ``OTEL_*`` environment variables behave as the OpenTelemetry SDK
specification says (:mod:`._otel_env`): the config decides what is emitted, the environment
says where it goes. Resource precedence, lowest first: the SDK's ``telemetry.sdk.*``,
``OTEL_RESOURCE_ATTRIBUTES``, the config's ``service_name`` and ``resource_attributes``, then
``service.name`` from the environment (``OTEL_SERVICE_NAME``, else ``service.name`` in
``OTEL_RESOURCE_ATTRIBUTES``: the deployment names the service), then the run's own
``aiconfig.run_id`` and ``aiconfig.config_digest``, which nothing overrides.
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
from aiconfig._network import check_network_allowed

from ._alerts import AlertManager
from ._jsonl import (
    JsonLinesFile,
    JsonLinesLogExporter,
    JsonLinesMetricExporter,
    JsonLinesSpanExporter,
)
from ._otel_env import OTelEnv, log_warnings, read_otel_env

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
    otel_env: OTelEnv = field(default_factory=OTelEnv)
    _closed: bool = False

    def env_record(self) -> dict[str, Any]:
        """What came from ``OTEL_*`` (secrets redacted), for the run manifest and provenance."""
        return self.otel_env.record()

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

    def alert_emergency_overrides(self, cfg: AIConfig) -> None:
        """Alert (through :class:`AlertManager`) on each active emergency override of ``cfg``.

        The config core records overrides in ``cfg.provenance.emergency`` and imports no
        monitoring; the job's telemetry announces them, whatever the alert dampening.
        """
        if self.alerts is not None and cfg.provenance.emergency:
            self.alerts.emergency_override(cfg.provenance.emergency)

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


def _disabled(otel_env: OTelEnv | None = None) -> Telemetry:
    return Telemetry(
        trace.NoOpTracerProvider(),
        metrics.NoOpMeterProvider(),
        _logs.NoOpLoggerProvider(),
        None,
        otel_env=otel_env or OTelEnv(),
    )


def _resource(
    cfg: MonitoringConfig, otel: OTelEnv, run_attrs: Mapping[str, str]
) -> tuple[Resource, dict[str, Any]]:
    """The resource in the documented precedence (see the module docstring)."""
    attrs: dict[str, Any] = {
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.version": _sdk_version(),
    }
    attrs.update(otel.resource_attributes)
    attrs["service.name"] = cfg.service_name
    attrs.update(cfg.resource_attributes)
    if otel.service_name:
        attrs["service.name"] = otel.service_name
    attrs.update(run_attrs)
    # Resource(), not Resource.create(): create() reads os.environ itself (and ignores an
    # ``environ`` given here), and it lets programmatic attributes override OTEL_SERVICE_NAME.
    return Resource(attrs), attrs


def _sdk_version() -> str:
    from importlib.metadata import version

    return version("opentelemetry-sdk")


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
    env = os.environ if environ is None else environ
    otel = read_otel_env(env)
    log_warnings(otel)
    if not cfg.enabled or otel.sdk_disabled:
        return _disabled(otel)
    run_attrs: dict[str, str] = {}
    run = run_id or env.get("AP_RUN_ID")
    if run:
        run_attrs["aiconfig.run_id"] = run
    if config_digest:
        run_attrs["aiconfig.config_digest"] = config_digest
    resource, attrs = _resource(cfg, otel, run_attrs)

    spans: list[tuple[SpanExporter, bool]] = [(e, False) for e in span_exporters]
    metric_exporters: list[MetricExporter] = []
    logs: list[tuple[LogRecordExporter, bool]] = [(e, False) for e in log_exporters]
    jsonl_path: Path | None = None
    if "otlp" in cfg.exporters:
        spans_o, metrics_o, logs_o = _otlp(cfg, env, otel)
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

    tracer_provider = TracerProvider(resource=resource, sampler=_sampler(cfg.sample_ratio, otel))
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
        tracer_provider,
        meter_provider,
        logger_provider,
        alerts,
        dict(attrs),
        jsonl_path,
        otel_env=otel,
    )


def setup_for_run(
    cfg: AIConfig, *, run_id: str | None = None, out_dir: str | Path | None = None
) -> Telemetry:
    """What a job (``aiconfig infer``, a capture run) calls once at start.

    Sets up ``cfg.monitoring`` as the process-wide providers, so every ``opentelemetry-api``
    span and metric of the run (config, capture, inference) goes to the configured exporters,
    under a resource naming the run (``AP_RUN_ID`` when ``run_id`` is None) and the sha256 of
    the config file. Active emergency overrides of the config raise an alert at once. Call
    ``shutdown()`` (or use it as a context manager) at the end to flush.
    """
    telemetry = setup_telemetry(
        cfg.monitoring,
        run_id=run_id,
        config_digest=f"sha256:{cfg.provenance.sha256}" if cfg.provenance.sha256 else None,
        out_dir=out_dir,
        set_global=True,
    )
    telemetry.alert_emergency_overrides(cfg)
    return telemetry


def _sampler(ratio: float, otel: OTelEnv | None = None) -> Sampler:
    spec = otel.sampler if otel is not None else None
    if spec is not None:  # OTEL_TRACES_SAMPLER, as the specification names them
        name = spec.name
        root: Sampler
        if name.endswith("always_on"):
            root = ALWAYS_ON
        elif name.endswith("always_off"):
            root = ALWAYS_OFF
        else:
            root = TraceIdRatioBased(1.0 if spec.ratio is None else spec.ratio)
        return ParentBased(root) if name.startswith("parentbased_") else root
    # The ratio sampler hashes every trace id; at 1.0 and 0.0 the constant samplers decide the
    # same without it (a few microseconds per span on the inference hot path).
    if ratio >= 1.0:
        return ParentBased(ALWAYS_ON)
    if ratio <= 0.0:
        return ParentBased(ALWAYS_OFF)
    return ParentBased(TraceIdRatioBased(ratio))


def _otlp(cfg: MonitoringConfig, env: Mapping[str, str], otel: OTelEnv) -> tuple[Any, Any, Any]:
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
    config_headers = {}
    if cfg.otlp_token is not None:
        config_headers["authorization"] = f"Bearer {cfg.otlp_token.get_secret_value()}"
    made: list[Any] = []
    for signal, exporter in (
        ("traces", OTLPSpanExporter),
        ("metrics", OTLPMetricExporter),
        ("logs", OTLPLogExporter),
    ):
        url = otel.endpoints.get(signal) or f"{base}/v1/{signal}"
        key_path = otel.endpoint_vars.get(signal, "monitoring.otlp_endpoint")
        check_network_allowed(url, purpose="the OTLP collector", key_path=key_path, environ=env)
        # The environment's headers add to the config's token and win for the same name.
        headers = {**config_headers, **otel.headers.get(signal, {})}
        timeout = otel.timeouts_s.get(signal, _OTLP_TIMEOUT_S)
        made.append(exporter(endpoint=url, headers=headers, timeout=timeout))
    return made[0], made[1], made[2]
