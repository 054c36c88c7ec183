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

import contextlib
import json
import threading
from collections.abc import Callable
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
    "read_events_salvage",
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
    """Thread-safe row buffer appended to an Arrow IPC stream file by :meth:`flush`.

    A failed write (a full disk) is reported once to ``on_error`` and ends the journal: what was
    written before stays readable (an IPC stream needs no footer), later rows are counted in
    :attr:`rows_lost`, and neither :meth:`flush` nor :meth:`close` raises again.
    """

    def __init__(
        self, path: Path, *, on_error: Callable[[BaseException], None] | None = None
    ) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._rows: list[tuple[Any, ...]] = []
        self._on_error = on_error
        self._sink: Any = pa.OSFile(str(path), "wb")
        self._writer: Any = pa.ipc.new_stream(self._sink, event_schema())
        self._sink.flush()
        self.rows_written = 0
        self.rows_lost = 0
        self.failed: str | None = None
        self._closed = False

    def add(self, row: tuple[Any, ...]) -> None:
        with self._lock:
            if self.failed is not None:
                self.rows_lost += 1
                return
            self._rows.append(row)

    def add_many(self, rows: list[tuple[Any, ...]]) -> None:
        with self._lock:
            if self.failed is not None:
                self.rows_lost += len(rows)
                return
            self._rows.extend(rows)

    def flush(self) -> int:
        """Append buffered rows as one record batch; returns how many rows were written."""
        with self._lock:
            rows, self._rows = self._rows, []
            if not rows or self._closed or self.failed is not None:
                self.rows_lost += len(rows) if self.failed is not None else 0
                return 0
            try:
                self._writer.write_batch(_batch(rows))
                self._sink.flush()
            except OSError as exc:
                if self._on_error is None:
                    raise
                self.failed = str(exc)
                self.rows_lost += len(rows)
                error: BaseException | None = exc
            else:
                self.rows_written += len(rows)
                return len(rows)
        if error is not None and self._on_error is not None:
            self._on_error(error)
        return 0

    def close(self) -> None:
        """Flush and close. Safe to call twice; after a failed write it only releases the file."""
        if self._closed:
            return
        self.flush()
        with self._lock:
            self._closed = True
            try:
                if self.failed is None:
                    self._writer.close()
            except OSError as exc:
                self.failed = str(exc)
                if self._on_error is None:
                    raise
                self._on_error(exc)
            finally:
                with contextlib.suppress(OSError):
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
    """Write ``table`` (sorted by stream then time) to ``path`` atomically, Snappy, with page
    checksums (CRC32: a flipped byte is found, not read as a wrong value)."""
    with atomic_path(path) as tmp:
        pq.write_table(
            table,
            str(tmp),
            compression="snappy",
            row_group_size=max(1, rows_per_group),
            write_page_checksum=True,
        )


def read_events_salvage(path: Path) -> tuple[Any, str | None]:
    """Every intact row group of ``events.parquet`` up to the first damaged one (frame rows
    must stay contiguous), page checksums verified. Returns ``(table, problem)``: ``problem`` is
    None when the whole file read, ``"unreadable (...)"`` when nothing did (no footer, not
    Parquet, another schema), else which row group is damaged."""
    schema = event_schema()
    try:
        pf = pq.ParquetFile(str(path), page_checksum_verification=True)
    except (pa.ArrowException, OSError, ValueError) as exc:
        return schema.empty_table(), f"unreadable ({str(exc).splitlines()[0][:120]})"
    if not pf.schema_arrow.equals(schema):
        return schema.empty_table(), "unreadable (not the session event schema)"
    groups: list[Any] = []
    for i in range(pf.num_row_groups):
        try:
            group = pf.read_row_group(i)
        except (pa.ArrowException, OSError, ValueError) as exc:
            kept = pa.concat_tables(groups) if groups else schema.empty_table()
            detail = str(exc).splitlines()[0][:120]
            return kept, f"damaged from row group {i} of {pf.num_row_groups} ({detail})"
        groups.append(group)
    return (pa.concat_tables(groups) if groups else schema.empty_table()), None
