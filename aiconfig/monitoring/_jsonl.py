"""A JSON-lines file exporter for spans, metrics and log records (one JSON object a line).

Each line carries ``"signal": "span" | "metrics" | "log"`` plus the SDK's own JSON rendering of
the item, so the file is greppable and loads with ``pandas.read_json(..., lines=True)``. Writes
are appended under a lock and flushed per batch, so a killed job keeps every exported batch.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = [
    "JsonLinesFile",
    "JsonLinesLogExporter",
    "JsonLinesMetricExporter",
    "JsonLinesSpanExporter",
    "span_to_dict",
]


class JsonLinesFile:
    """An append-only JSON-lines file shared by the exporters.

    Each exporter holds a reference (``acquire``) and drops it on shutdown (``close``); the file
    closes when the last one is gone, so the providers may shut down in any order.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._fh: IO[str] | None = None
        self._closed = False
        self._users = 0

    def acquire(self) -> JsonLinesFile:
        with self._lock:
            self._users += 1
        return self

    def write(self, signal: str, items: Sequence[str | dict[str, Any]]) -> None:
        """Append one line per item (an SDK JSON string or an already-built dict)."""
        lines = []
        for item in items:
            record: dict[str, Any] = {"signal": signal}
            record.update(json.loads(item) if isinstance(item, str) else item)
            lines.append(json.dumps(record, separators=(",", ":"), default=str) + "\n")
        with self._lock:
            if self._closed:
                return
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = self.path.open("a", encoding="utf-8")
            self._fh.writelines(lines)
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users > 0:
                return
            self._closed = True
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def _hex(value: int, width: int) -> str:
    return f"0x{value:0{width}x}"


def span_to_dict(span: ReadableSpan) -> dict[str, Any]:
    """The fields of ``ReadableSpan.to_json`` (same names), built directly: that method
    renders indented JSON with ISO timestamps, which costs ~4x more per span; here times are
    integer nanoseconds since the epoch (``start_time_ns``/``end_time_ns``)."""
    ctx = span.context
    parent = span.parent
    return {
        "name": span.name,
        "context": {
            "trace_id": _hex(ctx.trace_id, 32) if ctx else None,
            "span_id": _hex(ctx.span_id, 16) if ctx else None,
        },
        "kind": str(span.kind),
        "parent_id": _hex(parent.span_id, 16) if parent else None,
        "start_time_ns": span.start_time,
        "end_time_ns": span.end_time,
        "status": {
            "status_code": span.status.status_code.name,
            **({"description": span.status.description} if span.status.description else {}),
        },
        "attributes": dict(span.attributes or {}),
        "events": [
            {"name": e.name, "timestamp_ns": e.timestamp, "attributes": dict(e.attributes or {})}
            for e in span.events
        ],
        "links": [
            {"trace_id": _hex(link.context.trace_id, 32), "span_id": _hex(link.context.span_id, 16)}
            for link in span.links
        ],
        "resource": {"attributes": dict(span.resource.attributes)},
    }


class JsonLinesSpanExporter(SpanExporter):
    def __init__(self, sink: JsonLinesFile) -> None:
        self._sink = sink.acquire()
        self._stopped = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            self._sink.write("span", [span_to_dict(s) for s in spans])
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._sink.close()


class JsonLinesMetricExporter(MetricExporter):
    def __init__(self, sink: JsonLinesFile) -> None:
        super().__init__()
        self._sink = sink.acquire()
        self._stopped = False

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        try:
            self._sink.write("metrics", [metrics_data.to_json(indent=None)])
        except OSError:
            return MetricExportResult.FAILURE
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        if not self._stopped:
            self._stopped = True
            self._sink.close()


class JsonLinesLogExporter(LogRecordExporter):
    def __init__(self, sink: JsonLinesFile) -> None:
        self._sink = sink.acquire()
        self._stopped = False

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        try:
            self._sink.write("log", [r.to_json(indent=None) for r in batch])
        except OSError:
            return LogRecordExportResult.FAILURE
        return LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._sink.close()
