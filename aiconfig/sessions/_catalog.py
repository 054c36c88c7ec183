"""A catalog over every session below a root: discovery, one row per session, the index file.

``ROOT/sessions.parquet`` (:data:`INDEX_FILE`) holds one row per session (:data:`ROW_FIELDS`) and
a fingerprint of the files each row was read from (size and mtime of ``metadata.json``,
``manifest.json``, ``events.parquet``, the recorder's event journal and ``frames.mp4``).
Refreshing it reads only sessions whose fingerprint changed or that are new, so listing or
querying 10,000 sessions does not reopen 10,000 metadata files. A row never needs the video
decoded: it comes from the two JSON files and the Parquet footer. A directory that cannot be
read, a half-written session, a corrupt file or a session of a format this aiconfig refuses is
still a row, with ``status`` ``failed`` (or ``recording``) and its ``problem``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._errors import ConfigFileError, SessionError
from ._format import (
    EVENTS_FILE,
    EVENTS_JOURNAL,
    FRAMES_FILE,
    MANIFEST_FILE,
    METADATA_FILE,
    SESSION_DIR_PATTERN,
    STATUS_COMPLETE,
    STATUS_RECORDING,
    STATUS_RECOVERED,
)
from ._provenance import session_provenance
from ._session import Session, metadata_problems, open_session
from ._write import write_parquet_atomic

__all__ = ["INDEX_FILE", "ROW_FIELDS", "Catalog", "SessionRow", "discover"]

INDEX_FILE = "sessions.parquet"
INDEX_VERSION = "1"
# frames.mp4 too: the row says whether it is there, and a re-recorded or repaired video must
# be read again (its size and mtime only: the video is never hashed for this).
_FINGERPRINTED = (METADATA_FILE, MANIFEST_FILE, EVENTS_FILE, EVENTS_JOURNAL, FRAMES_FILE)

ROW_FIELDS: tuple[tuple[str, str], ...] = (
    ("session_id", "string"),
    ("path", "string"),
    ("status", "string"),
    ("problem", "string"),
    ("format_version", "string"),
    ("start_t_ns", "int64"),
    ("start_time", "timestamp"),
    ("duration_s", "float64"),
    ("fps", "float64"),
    ("actual_fps", "float64"),
    ("capture_fps", "float64"),
    ("frame_count", "int64"),
    ("padded_frames", "int64"),
    ("dropped_frames", "int64"),
    ("width", "int32"),
    ("height", "int32"),
    ("streams", "string"),
    ("screen_status", "string"),
    ("input_status", "string"),
    ("audio_status", "string"),
    ("webcam_status", "string"),
    ("stream_errors", "string"),
    ("event_rows", "int64"),
    ("input_events", "int64"),
    ("event_counts", "map"),
    ("focus_lost_s", "float64"),
    ("config_name", "string"),
    ("config_path", "string"),
    ("config_digest", "string"),
    ("signers", "list"),
    ("lineage", "list"),
    ("run_id", "string"),
    ("fingerprint", "string"),
)
"""Columns of the ``sessions`` table and of ``sessions.parquet`` (``path`` relative to ROOT)."""


def row_schema() -> Any:
    import pyarrow as pa

    kinds = {
        "string": pa.string(),
        "int64": pa.int64(),
        "int32": pa.int32(),
        "float64": pa.float64(),
        "timestamp": pa.timestamp("ns", tz="UTC"),
        "map": pa.map_(pa.string(), pa.int64()),
        "list": pa.list_(pa.string()),
    }
    return pa.schema(
        [pa.field(n, kinds[k]) for n, k in ROW_FIELDS], metadata={"aiconfig.index": INDEX_VERSION}
    )


SessionRow = dict[str, Any]
"""One catalog row: :data:`ROW_FIELDS` as a dict."""


def _fingerprint(path: Path | str) -> str:
    # os.stat on strings: pathlib's overhead is most of the cost of refreshing 10,000 rows.
    parts = []
    for name in _FINGERPRINTED:
        try:
            st = os.stat(f"{path}/{name}")
            parts.append(f"{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append("-")
    return "|".join(parts)


def _is_session(path: str, name: str) -> bool:
    return bool(SESSION_DIR_PATTERN.match(name)) or os.path.isfile(f"{path}/{METADATA_FILE}")


def _discover(root: str) -> Iterator[tuple[str, str | None]]:
    try:
        with os.scandir(root) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        yield root, f"cannot read the directory ({exc.strerror}); check its permissions"
        return
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            is_session = _is_session(entry.path, entry.name)
        except OSError:
            is_session = True
        if is_session:
            yield entry.path, None
        else:
            yield from _discover(entry.path)


def discover(root: Path) -> Iterator[tuple[Path, str | None]]:
    """``(session_dir, problem)`` for every session below ``root`` (or ``root`` itself when it
    is one), sorted; a directory that cannot be listed is yielded with its problem."""
    for path, problem in _walk(str(root)):
        yield Path(path), problem


def _walk(root: str) -> Iterator[tuple[str, str | None]]:
    if os.path.isfile(f"{root}/{METADATA_FILE}"):
        yield root, None
    else:
        yield from _discover(root)


def _counts(session: Session) -> tuple[int | None, dict[str, int]]:
    """``(event rows, rows per event type)`` from metadata, else from the Parquet file."""
    counts = session.metadata.get("event_counts")
    pf = session.parquet_file()  # reads the footer: a truncated file fails here
    rows = int(pf.metadata.num_rows)
    if isinstance(counts, dict) and all(isinstance(v, int) for v in counts.values()):
        return rows, {str(k): int(v) for k, v in counts.items()}
    import pyarrow.compute as pc

    out: dict[str, int] = {}
    for batch in session.iter_events(columns=["event_type"]):
        for item in pc.value_counts(batch.column(0)).to_pylist():
            key = str(item["values"])
            out[key] = out.get(key, 0) + int(item["counts"])
    return rows, out


def _focus_lost_s(meta: dict[str, Any], frames: int, fps: float) -> float:
    segs = meta.get("trajectories")
    if not isinstance(segs, list) or not segs or fps <= 0:
        return 0.0
    covered = 0
    for seg in segs:
        if not isinstance(seg, dict):
            continue
        first, last = seg.get("start_frame"), seg.get("end_frame")
        if isinstance(first, int) and isinstance(last, int):
            covered += last - first + 1
    return round(max(0, frames - covered) / fps, 3)


def _empty_row(path: Path, root: Path) -> SessionRow:
    row: SessionRow = dict.fromkeys(n for n, _ in ROW_FIELDS)
    rel = path.relative_to(root).as_posix() if path != root else "."
    row.update(session_id=path.name, path=rel, status="failed", fingerprint=_fingerprint(path))
    return row


def read_row(path: Path, root: Path) -> SessionRow:
    """The catalog row of one session directory; never raises for bad data."""
    row = _empty_row(path, root)
    try:
        session = open_session(path)
    except SessionError as exc:
        row["problem"] = exc.problems[0].render()
        return row
    except OSError as exc:
        row["problem"] = f"{path}: cannot read the session ({exc.strerror})"
        return row
    meta = session.metadata
    row.update(_provenance_fields(session))
    problems = metadata_problems(meta)
    status = session.status
    if session.manifest_problem:
        problems.insert(0, session.manifest_problem)
        status = "failed"
    elif status == STATUS_RECORDING:
        problems.insert(
            0,
            "not finalized (recorder killed or still running); "
            f"run 'python -m capture recover {path}'",
        )
    elif session.manifest is None:
        problems.insert(0, f"{MANIFEST_FILE} is missing")
        status = "failed"
    if not session.video_path.is_file():
        problems.append(f"{FRAMES_FILE} is missing")
    start = session.start_t_ns
    fps = session.fps
    streams = session.streams
    streams_meta = meta.get("streams")
    errors = {
        name: info.get("error") or info.get("errors")
        for name, info in (streams_meta.items() if isinstance(streams_meta, dict) else ())
        if isinstance(info, dict) and (info.get("error") or info.get("errors"))
    }
    row.update(
        start_t_ns=start,
        start_time=datetime.fromtimestamp(start / 1e9, UTC) if start is not None else None,
        duration_s=session.duration_s,
        fps=fps,
        actual_fps=_num(meta.get("actual_fps")),
        capture_fps=_num(meta.get("capture_fps")),
        padded_frames=_int(meta.get("padded_frames")),
        dropped_frames=_int(meta.get("dropped_frames")),
        width=session.resolution[0] or None,
        height=session.resolution[1] or None,
        streams=" ".join(f"{k}={v}" for k, v in sorted(streams.items())) or None,
        screen_status=streams.get("screen"),
        input_status=streams.get("input"),
        audio_status=streams.get("audio"),
        webcam_status=streams.get("webcam"),
        stream_errors=json.dumps(errors, sort_keys=True) if errors else None,
    )
    if status in (STATUS_COMPLETE, STATUS_RECOVERED) and not problems:
        try:
            rows, counts = _counts(session)
        except SessionError as exc:
            problems.append(exc.problems[0].render())
        else:
            row["event_rows"] = rows
            row["event_counts"] = counts
            row["input_events"] = sum(
                v for k, v in counts.items() if k != "frame"
            )  # every non-frame row is an input event
            frames = meta.get("frame_count")
            row["frame_count"] = frames if isinstance(frames, int) else session.frame_count
            row["focus_lost_s"] = _focus_lost_s(meta, row["frame_count"], fps)
    if problems:
        row["problem"] = "; ".join(problems)
        if status != STATUS_RECORDING:
            status = "failed"
    row["status"] = status
    return row


def _provenance_fields(session: Session) -> dict[str, Any]:
    """The session's id and format, its run and the config that drove it (name, path, digest,
    signers, lineage): :func:`session_provenance`, as the catalog's columns."""
    origin = session_provenance(session)
    return {
        "session_id": origin.session_id,
        "format_version": origin.format_version,
        "run_id": origin.run_id,
        "config_name": origin.config_name,
        "config_path": origin.config_path,
        "config_digest": origin.config_digest,
        "signers": None if origin.signers is None else [s.principal for s in origin.signers],
        "lineage": None if origin.lineage is None else list(origin.lineage),
    }


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class RefreshResult:
    rows: list[SessionRow]
    read: int
    reused: int
    removed: int


class Catalog:
    """Every session below ``root``. Reads the index when there is one; never writes unless
    :meth:`index` is called (``query`` and ``list`` open the data read-only)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ConfigFileError(
                "no such directory", file=str(self.root), hint="give the folder holding sessions"
            )
        self.index_path = self.root / INDEX_FILE
        self._last: RefreshResult | None = None

    def _load_index(self) -> dict[str, SessionRow]:
        import pyarrow.parquet as pq

        if not self.index_path.is_file():
            return {}
        try:
            table = pq.read_table(str(self.index_path))
        except Exception:  # noqa: BLE001 - a damaged index is rebuilt, never trusted
            return {}
        meta = table.schema.metadata or {}
        if meta.get(b"aiconfig.index") != INDEX_VERSION.encode():
            return {}
        if table.schema.names != [n for n, _ in ROW_FIELDS]:
            return {}
        rows = table.to_pylist()
        for row in rows:
            if row["event_counts"] is not None:
                row["event_counts"] = dict(row["event_counts"])
        return {row["path"]: row for row in rows}

    def refresh(self, *, progress: bool = False) -> RefreshResult:
        """Rows for every session now: unchanged ones from the index, the others read
        (``progress``: a bar on a terminal's stderr while reading)."""
        from ._progress import progress as bar

        old = self._load_index()
        rows = []
        read = reused = 0
        seen = set()
        top = str(self.root)
        cut = len(top) + 1
        found: Any = _walk(top)
        if progress:
            found = bar(list(found), desc="reading sessions", unit="session")
        for path, problem in found:
            rel = path[cut:] if path != top else "."
            seen.add(rel)
            if problem is not None:
                row = _empty_row(Path(path), self.root)
                row["problem"] = f"{path}: {problem}"
                rows.append(row)
                continue
            prev = old.get(rel)
            if prev is not None and prev["fingerprint"] == _fingerprint(path):
                rows.append(prev)
                reused += 1
                continue
            rows.append(read_row(Path(path), self.root))
            read += 1
        self._last = RefreshResult(rows, read, reused, len(set(old) - seen))
        return self._last

    def rows(self, *, progress: bool = False) -> list[SessionRow]:
        return self.refresh(progress=progress).rows

    def table(self, rows: list[SessionRow] | None = None) -> Any:
        """The rows as a ``pyarrow.Table`` (schema :func:`row_schema`)."""
        import pyarrow as pa

        schema = row_schema()
        data = self.rows() if rows is None else rows
        cols = {n: [r.get(n) for r in data] for n, _ in ROW_FIELDS}
        cols["event_counts"] = [
            list(c.items()) if isinstance(c, dict) else None for c in cols["event_counts"]
        ]
        return pa.table(cols, schema=schema)

    def index(self, *, progress: bool = False) -> RefreshResult:
        """Write ``ROOT/sessions.parquet`` atomically (reading only new or changed sessions)."""
        if (self.root / METADATA_FILE).is_file():
            raise ConfigFileError(
                "is a session, not a folder of sessions: its files are not to be added to",
                file=str(self.root),
                hint=f"index the folder that holds it ({self.root.parent})",
            )
        result = self.refresh(progress=progress)
        write_parquet_atomic(
            self.table(result.rows),
            self.index_path,
            hint="make ROOT writable, or use 'list'/'query', which need no index",
        )
        return result

    def query(self, sql: str) -> Any:
        """Run one read-only SQL statement (DuckDB) over the views ``sessions``, ``events``,
        ``frames`` and ``inputs``; returns a ``pyarrow.Table``."""
        from ._query import run_query

        return run_query(self, sql)

    def stats(self) -> dict[str, Any]:
        """Totals and distributions over every session (see :func:`._stats.catalog_stats`)."""
        from ._stats import catalog_stats

        return catalog_stats(self.rows())
