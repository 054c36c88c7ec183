"""A JSON-lines file exporter for spans, metrics and log records (one JSON object a line).

Each line carries ``"signal": "span" | "metrics" | "log"`` plus the SDK's own JSON rendering of
the item, so the file is greppable and loads with ``pandas.read_json(..., lines=True)``. Writes
are appended under a lock and flushed per batch, so a killed job keeps every exported batch.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, SpanKind

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
            lines.append(_encode(record) + "\n")
        self.write_lines(lines)

    def write_lines(self, lines: Sequence[str]) -> None:
        """Append lines that are already encoded (each ends with a newline)."""
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


_KIND_NAMES = {kind: str(kind) for kind in SpanKind}

# One encoder for every line: json.dumps with arguments builds a new JSONEncoder per call.
_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode


def _plain(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """A plain dict of span attributes; the SDK's mapping copies itself far faster than
    ``dict()`` walks it key by key."""
    if not attributes:
        return {}
    copy = getattr(attributes, "copy", None)
    if copy is not None:
        out = copy()
        if type(out) is dict:
            return out
    return dict(attributes)


def _events(events: Sequence[Event]) -> list[dict[str, Any]]:
    return [
        {"name": e.name, "timestamp_ns": e.timestamp, "attributes": _plain(e.attributes)}
        for e in events
    ]


def _links(links: Sequence[Link]) -> list[dict[str, Any]]:
    return [
        {"trace_id": _hex(link.context.trace_id, 32), "span_id": _hex(link.context.span_id, 16)}
        for link in links
    ]


def span_to_dict(span: ReadableSpan, *, resource: bool = True) -> dict[str, Any]:
    """The fields of ``ReadableSpan.to_json`` (same names), built directly: that method
    renders indented JSON with ISO timestamps, which costs ~4x more per span; here times are
    integer nanoseconds since the epoch (``start_time_ns``/``end_time_ns``). ``resource=False``
    leaves the (last) ``resource`` field out."""
    ctx = span.context
    parent = span.parent
    status = span.status
    out: dict[str, Any] = {
        "name": span.name,
        "context": {
            "trace_id": _hex(ctx.trace_id, 32) if ctx else None,
            "span_id": _hex(ctx.span_id, 16) if ctx else None,
        },
        "kind": _KIND_NAMES.get(span.kind) or str(span.kind),
        "parent_id": _hex(parent.span_id, 16) if parent else None,
        "start_time_ns": span.start_time,
        "end_time_ns": span.end_time,
        "status": (
            {"status_code": status.status_code.name, "description": status.description}
            if status.description
            else {"status_code": status.status_code.name}
        ),
        "attributes": _plain(span.attributes),
        "events": _events(span.events),
        "links": _links(span.links),
    }
    if resource:
        out["resource"] = {"attributes": dict(span.resource.attributes)}
    return out


class JsonLinesSpanExporter(SpanExporter):
    """Spans as ``{"signal": "span", ...span_to_dict(span)}`` lines.

    The exporter runs on the batch processor's thread, and every microsecond it holds the GIL
    is taken from the traced code; so the resource (the same for every span of a provider, and
    immutable) is encoded once and spliced into each line, which comes out byte for byte as
    encoding the whole dict would.
    """

    def __init__(self, sink: JsonLinesFile) -> None:
        self._sink = sink.acquire()
        self._stopped = False
        self._resource: tuple[object, str] | None = None

    def _resource_json(self, span: ReadableSpan) -> str:
        cached = self._resource
        resource = span.resource
        if cached is None or cached[0] is not resource:
            cached = self._resource = (resource, _encode({"attributes": dict(resource.attributes)}))
        return cached[1]

    def _line(self, span: ReadableSpan) -> str:
        """``_encode({"signal": "span", **span_to_dict(span)})`` plus a newline, assembled
        from its parts: the fixed fields are formatted directly, only the free-form ones go
        through the encoder (a test holds the two byte for byte equal)."""
        ctx = span.context
        parent = span.parent
        status = span.status
        events = span.events
        links = span.links
        ids = (
            f'{{"trace_id":"{_hex(ctx.trace_id, 32)}","span_id":"{_hex(ctx.span_id, 16)}"}}'
            if ctx
            else '{"trace_id":null,"span_id":null}'
        )
        status_json = (
            _encode({"status_code": status.status_code.name, "description": status.description})
            if status.description
            else f'{{"status_code":"{status.status_code.name}"}}'
        )
        return (
            f'{{"signal":"span","name":{_encode(span.name)},"context":{ids},'
            f'"kind":{_encode(_KIND_NAMES.get(span.kind) or str(span.kind))},'
            f'"parent_id":{_encode(_hex(parent.span_id, 16)) if parent else "null"},'
            f'"start_time_ns":{_encode(span.start_time)},"end_time_ns":{_encode(span.end_time)},'
            f'"status":{status_json},"attributes":{_encode(_plain(span.attributes))},'
            f'"events":{_encode(_events(events)) if events else "[]"},'
            f'"links":{_encode(_links(links)) if links else "[]"},'
            f'"resource":{self._resource_json(span)}}}\n'
        )

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            self._sink.write_lines([self._line(s) for s in spans])
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
