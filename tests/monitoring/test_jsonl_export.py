"""The JSON-lines span exporter: each line is exactly the encoding of ``span_to_dict``.

The exporter assembles its lines from parts (a cached resource, fixed fields formatted
directly) because it runs beside the traced code; these tests hold that line byte for byte equal
to encoding the whole record, for spans with and without parents, events, links, an error
status, odd names and attribute values, and two providers (two resources) on one file.
"""

from __future__ import annotations

import json
from pathlib import Path

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, set_span_in_context

from aiconfig.monitoring import JsonLinesFile, JsonLinesSpanExporter, span_to_dict


def _spans(service: str) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": service, "n": 1}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    root = tracer.start_span('root "quoted" \u00e9\n', kind=SpanKind.SERVER, attributes={"a": 1})
    child = tracer.start_span(
        "child",
        set_span_in_context(root),
        SpanKind.CLIENT,
        {"f": 0.125, "b": True, "s": "x\ty", "seq": [1, 2], "strs": ("p", "q")},
        links=[Link(root.get_span_context(), {"why": "retry"})],
        start_time=1_000,
    )
    child.add_event("retry", {"attempt": 2}, timestamp=1_500)
    child.set_status(Status(StatusCode.ERROR, 'boom: "bad"'))
    child.end(end_time=2_000)
    plain = tracer.start_span("plain")
    plain.set_status(Status(StatusCode.OK))
    plain.end()
    root.end()
    return list(memory.get_finished_spans())


def _whole(span: ReadableSpan) -> str:
    record = {"signal": "span", **span_to_dict(span)}
    return json.dumps(record, separators=(",", ":"), default=str)


def test_lines_equal_encoding_the_whole_record(tmp_path: Path) -> None:
    spans = _spans("svc-a") + _spans("svc-b")
    path = tmp_path / "t.jsonl"
    exporter = JsonLinesSpanExporter(JsonLinesFile(path))
    exporter.export(spans[:4])
    exporter.export(spans[4:])  # a second resource after the cached one
    exporter.shutdown()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines == [_whole(s) for s in spans]
    decoded = [json.loads(line) for line in lines]
    assert [d["resource"]["attributes"]["service.name"] for d in decoded] == ["svc-a"] * 3 + [
        "svc-b"
    ] * 3
    child = next(d for d in decoded if d["name"] == "child")
    assert child["status"] == {"status_code": "ERROR", "description": 'boom: "bad"'}
    assert child["events"] == [
        {"name": "retry", "timestamp_ns": 1_500, "attributes": {"attempt": 2}}
    ]
    assert child["attributes"]["strs"] == ["p", "q"]
    assert child["parent_id"] is not None
    assert child["links"][0]["span_id"] == child["parent_id"]
