"""The unified event stream: the seed's exact Parquet schema, a crash-safe journal, the merge.

While recording, rows are buffered in memory and appended to an Arrow IPC *stream* file
(``events.journal.arrows``) about twice a second. An IPC stream needs no footer: after a SIGKILL
every complete batch still reads back, so at most the last flush interval is lost. (A Parquet
file is unreadable until its footer is written at close, which is why it is not the journal.)
At finalize the journal becomes ``events.parquet`` (Snappy, one row group per second of
recording) and the journal is deleted.

Column conventions (beyond the seed's comments):

* frame rows: ``event_type="frame"``, ``stream="screen"`` (or ``"webcam"``), ``t_ns`` the
  presentation time, ``t_capture_ns`` the grab time of the picture shown, ``frame_ref`` the
  frame's own index;
* input rows: ``stream="input"``, ``t_ns`` the monotonic time the event was seen,
  ``t_capture_ns`` null, ``frame_ref`` the frame on screen at ``t_ns``; ``metadata`` holds the
  key name and the absolute screen coordinates as JSON.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from aiconfig._files import atomic_path
from aiconfig.sessions import EVENT_COLUMNS, event_schema

__all__ = [
    "COLUMNS",
    "EventJournal",
    "InputEvent",
    "event_schema",
    "journal_to_parquet",
    "read_journal",
]

# The seed's schema is stated once, by the session format the recorder writes through.
COLUMNS = EVENT_COLUMNS
_NAMES = tuple(name for name, _ in COLUMNS)


@dataclass(frozen=True, slots=True)
class InputEvent:
    """Synchronized input event with its frame reference (the seed's ``InputEvent``)."""

    t_ns: int
    event_type: str
    key_code: int | None = None
    mouse_x: float | None = None
    mouse_y: float | None = None
    mouse_button: str | None = None
    delta: float | None = None
    frame_ref: int | None = None
    window_id: str | None = None
    session_id: str | None = None
    metadata: dict[str, Any] | None = None

    def row(self) -> tuple[Any, ...]:
        meta = None if self.metadata is None else json.dumps(self.metadata, sort_keys=True)
        return (
            self.t_ns,
            None,
            False,
            self.event_type,
            "input",
            self.key_code,
            self.mouse_x,
            self.mouse_y,
            self.mouse_button,
            self.delta,
            self.frame_ref,
            self.window_id,
            self.session_id,
            meta,
        )


def frame_row(
    index: int,
    t_ns: int,
    t_capture_ns: int | None,
    is_duplicate: bool,
    *,
    stream: str,
    window_id: str | None,
    session_id: str,
    duplicate_of: str | None = None,
) -> tuple[Any, ...]:
    """A frame row; ``duplicate_of`` is ``"padded"`` or ``"dropped"`` for repeated pictures."""
    return (
        t_ns,
        t_capture_ns,
        is_duplicate,
        "frame",
        stream,
        None,
        None,
        None,
        None,
        None,
        index,
        window_id,
        session_id,
        None if duplicate_of is None else json.dumps({"duplicate": duplicate_of}),
    )


def _batch(rows: list[tuple[Any, ...]]) -> Any:
    schema = event_schema()
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in _NAMES]
    arrays = [pa.array(list(col), type=schema.field(i).type) for i, col in enumerate(columns)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


class EventJournal:
    """Thread-safe row buffer appended to an Arrow IPC stream file by :meth:`flush`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._rows: list[tuple[Any, ...]] = []
        self._sink: Any = pa.OSFile(str(path), "wb")
        self._writer: Any = pa.ipc.new_stream(self._sink, event_schema())
        self._sink.flush()
        self.rows_written = 0
        self._closed = False

    def add(self, row: tuple[Any, ...]) -> None:
        with self._lock:
            self._rows.append(row)

    def add_many(self, rows: list[tuple[Any, ...]]) -> None:
        with self._lock:
            self._rows.extend(rows)

    def flush(self) -> int:
        """Append buffered rows as one record batch; returns how many rows were written."""
        with self._lock:
            rows, self._rows = self._rows, []
            if not rows or self._closed:
                return 0
            self._writer.write_batch(_batch(rows))
            self._sink.flush()
            self.rows_written += len(rows)
            return len(rows)

    def close(self) -> None:
        """Flush and close. Safe to call twice."""
        if self._closed:
            return
        self.flush()
        with self._lock:
            self._closed = True
            self._writer.close()
            self._sink.close()


def read_journal(path: Path) -> tuple[Any, bool]:
    """Read every complete batch of a journal. Returns ``(table, truncated)``."""
    batches = []
    truncated = False
    try:
        reader = pa.ipc.open_stream(pa.OSFile(str(path), "rb"))
    except (pa.ArrowException, OSError):
        return event_schema().empty_table(), True
    schema = event_schema()
    if not reader.schema.equals(schema):
        return schema.empty_table(), True  # not a journal this recorder wrote
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except (pa.ArrowException, OSError):
            truncated = True
            break
        if not batch.schema.equals(schema):
            truncated = True  # a corrupt batch header: keep the batches before it
            break
        batches.append(batch)
    return pa.Table.from_batches(batches, schema=schema), truncated


def journal_to_parquet(table: Any, path: Path, *, rows_per_group: int) -> None:
    """Write ``table`` (sorted by stream then time) to ``path`` atomically, Snappy."""
    with atomic_path(path) as tmp:
        pq.write_table(
            table,
            str(tmp),
            compression="snappy",
            row_group_size=max(1, rows_per_group),
        )
