"""OpenTelemetry set-up for aiconfig jobs (the only place that touches the SDK).

Public API::

    from aiconfig.monitoring import setup_telemetry
    with setup_telemetry(cfg.monitoring, run_id=run_id, config_digest=digest,
                         set_global=True) as telemetry:
        model = TorchModelInterface.from_config(net, cfg.inference,
                                                observers=(telemetry.alerts,))
        ...

See ``docs/inference.md`` for the exporters, metric names, sampling and alert dampening.
"""

from __future__ import annotations

from ._alerts import Alert, AlertManager
from ._jsonl import (
    JsonLinesFile,
    JsonLinesLogExporter,
    JsonLinesMetricExporter,
    JsonLinesSpanExporter,
    span_to_dict,
)
from ._setup import Telemetry, setup_for_run, setup_telemetry

__all__ = [
    "Alert",
    "AlertManager",
    "JsonLinesFile",
    "JsonLinesLogExporter",
    "JsonLinesMetricExporter",
    "JsonLinesSpanExporter",
    "Telemetry",
    "setup_for_run",
    "setup_telemetry",
    "span_to_dict",
]
