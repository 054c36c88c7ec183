"""One streaming pass over ``events.parquet``: what the validator and the statistics need.

The file is read in record batches of a few columns (never whole), so a long session costs a
few arrays of one value per frame, not the table.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ._format import EVENT_COLUMNS

__all__ = ["EventScan", "scan_events", "schema_problem"]

_COLS = ["t_ns", "t_capture_ns", "is_duplicate", "event_type", "stream", "frame_ref", "session_id"]


def schema_problem(schema: Any) -> str | None:
    """``None`` when ``schema`` is exactly the seed's; else one line naming each difference."""
    from ._format import event_schema

    want = event_schema()
    if schema.equals(want, check_metadata=False):
        return None
    have = {f.name: str(f.type) for f in schema}
    diffs = [
        f"{name}: {have.get(name, 'missing')} != {want.field(name).type!s}"
        for name, _ in EVENT_COLUMNS
        if have.get(name) != str(want.field(name).type)
    ]
    diffs += [f"{name}: unexpected column" for name in have if name not in dict(EVENT_COLUMNS)]
    return "events.parquet schema differs from the contract: " + "; ".join(diffs or ["order"])


@dataclass
class EventScan:
    rows: int = 0
    frame_t: Any = None  # int64[n] presentation times of screen frame rows
    frame_cap: Any = None  # int64[n] grab times
    frame_dup: Any = None  # bool[n]
    frame_refs_in_order: bool = True
    webcam_frames: int = 0
    input_t: Any = None
    input_ref: Any = None  # float64 (NaN for null)
    event_counts: Counter[str] = field(default_factory=Counter)
    input_counts: Counter[str] = field(default_factory=Counter)
    non_monotonic: dict[str, int] = field(default_factory=dict)
    foreign_session_rows: int = 0


def scan_events(batches: Any, session_id: str | None) -> EventScan:
    """Consume ``batches`` (of at least the columns in ``_COLS``) into an :class:`EventScan`."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    scan = EventScan()
    f_t: list[Any] = []
    f_cap: list[Any] = []
    f_dup: list[Any] = []
    f_ref: list[Any] = []
    in_t: list[Any] = []
    in_ref: list[Any] = []
    last_t: dict[str, int] = {}

    def mask(expr: Any) -> Any:
        return pc.fill_null(expr, False).to_numpy(zero_copy_only=False)

    for batch in batches:
        scan.rows += batch.num_rows
        d = {c: batch.column(c) for c in _COLS}
        kind, stream = d["event_type"], d["stream"]
        is_frame = pc.equal(kind, "frame")
        screen = mask(pc.and_(is_frame, pc.equal(stream, "screen")))
        scan.webcam_frames += int(mask(pc.and_(is_frame, pc.equal(stream, "webcam"))).sum())
        inp = mask(pc.equal(stream, "input"))
        t = d["t_ns"].to_numpy(zero_copy_only=False)
        refs = pc.fill_null(pc.cast(d["frame_ref"], pa.float64()), float("nan")).to_numpy(
            zero_copy_only=False
        )
        f_t.append(t[screen])
        f_cap.append(d["t_capture_ns"].to_numpy(zero_copy_only=False)[screen])
        f_dup.append(pc.fill_null(d["is_duplicate"], False).to_numpy(zero_copy_only=False)[screen])
        f_ref.append(refs[screen])
        in_t.append(t[inp])
        in_ref.append(refs[inp])
        for item in pc.value_counts(kind).to_pylist():
            scan.event_counts[str(item["values"])] += int(item["counts"])
        for item in pc.value_counts(kind.filter(pa.array(inp))).to_pylist():
            scan.input_counts[str(item["values"])] += int(item["counts"])
        for item in pc.unique(stream).to_pylist():
            if item is None:
                continue
            ts = t[mask(pc.equal(stream, item))]
            if not len(ts):
                continue
            bad = int((np.diff(ts) < 0).sum())
            if item in last_t and ts[0] < last_t[item]:
                bad += 1
            last_t[item] = int(ts[-1])
            if bad:
                scan.non_monotonic[item] = scan.non_monotonic.get(item, 0) + bad
        if session_id is not None:
            same = pc.fill_null(pc.equal(d["session_id"], session_id), False)
            scan.foreign_session_rows += len(same) - int(pc.sum(same).as_py() or 0)

    def cat(parts: list[Any], dtype: str) -> Any:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    scan.frame_t = cat(f_t, "int64")
    scan.frame_cap = cat(f_cap, "int64")
    scan.frame_dup = cat(f_dup, "bool")
    refs_all = cat(f_ref, "float64")
    scan.frame_refs_in_order = bool(np.array_equal(refs_all, np.arange(len(refs_all))))
    scan.input_t = cat(in_t, "int64")
    scan.input_ref = cat(in_ref, "float64")
    return scan
