"""Reading one session: :func:`open_session` and :class:`Session`.

Opening reads ``metadata.json`` and ``manifest.json`` only (small JSON files); events are read
on demand, as a whole Arrow table or streamed in record batches, and videos are only named.
This is the API the pipeline, the catalog and a training dataset read sessions through::

    s = open_session(path)                   # SessionError if it cannot be read
    s.fps, s.frame_count, s.resolution, s.keyframe_interval, s.window
    s.video_path, s.webcam_path, s.audio_path
    for batch in s.iter_events(columns=["t_ns", "event_type", "frame_ref"]): ...
    s.inputs()                               # pyarrow.Table of the input rows
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from .._errors import BudgetError, ConfigFileError, SessionError
from ._format import (
    AUDIO_FILE,
    EVENTS_FILE,
    EVENTS_JOURNAL,
    FRAMES_FILE,
    METADATA_FIELDS,
    METADATA_FILE,
    STATUS_RECORDING,
    WEBCAM_FILE,
    check_format_version,
)
from ._manifest import ManifestInfo, read_manifest

__all__ = [
    "SESSION_ID",
    "Session",
    "WindowGeometry",
    "metadata_problems",
    "open_session",
    "read_json_member",
    "read_metadata",
    "refuse_symlinked_members",
    "symlinked_members",
]


# What a recorder writes (session_YYYYMMDD_HHMMSS, maybe with a suffix); never a path.
SESSION_ID = re.compile(r"session_[A-Za-z0-9_-]+")


def symlinked_members(session: Path) -> list[str]:
    """Names of the entries of ``session`` that are symbolic links (none in a real session).

    A session's files are written by the recorder itself; a link planted there (to a victim
    file, or to ``/dev/zero``) would be read, truncated or rewritten through by ``recover`` and
    ``finalize``, so any link makes the whole session refused.
    """
    try:
        with os.scandir(session) as entries:
            return sorted(e.name for e in entries if e.is_symlink())
    except OSError:
        return []


def refuse_symlinked_members(session: Path) -> None:
    """Raise :class:`SessionError` naming the links when ``session`` holds any (see above)."""
    links = symlinked_members(session)
    if links:
        raise SessionError(
            f"session members are symbolic links: {', '.join(links)}; refusing to read or "
            "write through them",
            file=str(session),
            hint="a recorder never writes links: remove them (someone planted them) and retry",
        )


def read_json_member(path: Path) -> Any:
    """A session's JSON file read with a size cap and a nesting limit (ConfigFileError)."""
    from .._bounded import load_json_capped

    return load_json_capped(path, 16 << 20, what=path.name)


def read_metadata(session: Path) -> dict[str, Any]:
    """``metadata.json`` as a dict; :class:`SessionError` naming the file when unreadable."""
    path = session / METADATA_FILE
    try:
        meta = read_json_member(path)
    except FileNotFoundError:
        raise SessionError(
            f"{METADATA_FILE} is missing", file=str(session), hint="not a recorded session"
        ) from None
    except ConfigFileError as exc:
        raise SessionError(
            f"unreadable ({exc.problems[0].message})",
            file=str(path),
            hint="the file is damaged; restore it",
        ) from None
    if not isinstance(meta, dict):
        raise SessionError("not a JSON object", file=str(path))
    check_format_version(meta.get("format_version"), file=str(path))
    return meta


def metadata_problems(meta: dict[str, Any]) -> list[str]:
    """Every way ``meta`` breaks the seed's metadata fields (empty when it fits)."""
    problems = []
    for name, types in METADATA_FIELDS.items():
        value = meta.get(name)
        if name not in meta:
            problems.append(f"{METADATA_FILE}: missing field {name!r}")
        elif value is None and name == "end_t_ns" and meta.get("status") == STATUS_RECORDING:
            continue  # still recording
        elif isinstance(value, bool) or not isinstance(value, types):
            want = " or ".join(t.__name__ for t in types)
            problems.append(f"{METADATA_FILE}: {name} must be {want}, got {type(value).__name__}")
    sid = meta.get("session_id")
    if isinstance(sid, str) and not SESSION_ID.fullmatch(sid):
        problems.append(
            f"{METADATA_FILE}: session_id {sid[:80]!r} is not a session id "
            f"(want {SESSION_ID.pattern})"
        )
    res = meta.get("screen_resolution")
    if isinstance(res, list) and (
        len(res) != 2 or not all(isinstance(v, int) and v > 0 for v in res)
    ):
        problems.append(f"{METADATA_FILE}: screen_resolution is not [width, height]")
    fps = meta.get("fps")
    if isinstance(fps, int | float) and not isinstance(fps, bool) and not fps > 0:
        problems.append(f"{METADATA_FILE}: fps must be positive, got {fps}")
    start, end = meta.get("start_t_ns"), meta.get("end_t_ns")
    if isinstance(start, int) and isinstance(end, int) and end < start:
        problems.append(f"{METADATA_FILE}: end_t_ns is before start_t_ns")
    return problems


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return 0.0


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class WindowGeometry:
    """Where the captured region was: ``rect`` ``(left, top, width, height)`` at the start;
    ``moves`` as recorded (frame index and new rect); ``resized`` when the size changed."""

    title: str | None
    rect: tuple[int, int, int, int] | None
    moves: tuple[Any, ...] = ()
    resized: bool = False


@dataclass(frozen=True)
class Session:
    """One session directory, opened. Cheap: only the two JSON files have been read."""

    path: Path
    metadata: dict[str, Any]
    manifest: ManifestInfo | None
    manifest_problem: str | None = None
    version: tuple[int, int, int] = (1, 0, 0)

    @property
    def id(self) -> str:
        return str(self.metadata.get("session_id") or self.path.name)

    @property
    def format_version(self) -> str:
        return ".".join(map(str, self.version))

    @property
    def status(self) -> str:
        """``complete``, ``recovered``, ``recording`` (not finalized) or ``failed``."""
        if self.manifest is not None:
            return self.manifest.status
        if (self.path / EVENTS_JOURNAL).exists():
            return STATUS_RECORDING
        return str(self.metadata.get("status") or "failed")

    # Readers are total: a field of the wrong type reads as "unknown" (0, None, empty); the
    # validator is what reports it (metadata_problems).

    @property
    def fps(self) -> float:
        return _number(self.metadata.get("fps"))

    @property
    def duration_s(self) -> float:
        return _number(self.metadata.get("duration_s"))

    @property
    def resolution(self) -> tuple[int, int]:
        res = self.metadata.get("screen_resolution")
        if isinstance(res, list) and len(res) == 2 and all(_is_int(v) for v in res):
            return int(res[0]), int(res[1])
        return 0, 0

    @property
    def start_t_ns(self) -> int | None:
        value = self.metadata.get("start_t_ns")
        return value if _is_int(value) else None

    @cached_property
    def frame_count(self) -> int:
        """Screen frames (= video frames = frame rows): from metadata, else counted in events."""
        value = self.metadata.get("frame_count")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        import pyarrow.compute as pc

        n = 0
        for batch in self.iter_events(columns=["event_type", "stream"]):
            both = pc.and_(pc.equal(batch.column(0), "frame"), pc.equal(batch.column(1), "screen"))
            n += int(pc.sum(pc.cast(pc.fill_null(both, False), "int64")).as_py() or 0)
        return n

    @property
    def keyframe_interval(self) -> int | None:
        """Frames between keyframes (``video.gop_frames``); ``None`` when not recorded."""
        gop = _mapping(self.metadata.get("video")).get("gop_frames")
        return gop if isinstance(gop, int) and not isinstance(gop, bool) else None

    @property
    def window(self) -> WindowGeometry:
        w = _mapping(self.metadata.get("window"))
        rect = w.get("initial_rect")
        title = w.get("title", self.metadata.get("window_id"))
        moves = w.get("moves")
        return WindowGeometry(
            title=title if isinstance(title, str) else None,
            rect=tuple(rect)
            if isinstance(rect, list) and len(rect) == 4 and all(_is_int(v) for v in rect)
            else None,
            moves=tuple(moves) if isinstance(moves, list) else (),
            resized=w.get("resized") is True,
        )

    @property
    def streams(self) -> dict[str, str]:
        """Each stream's final status (``complete``, ``failed``, ``off``, ...)."""
        out = {}
        for name, info in _mapping(self.metadata.get("streams")).items():
            out[name] = str(info.get("status")) if isinstance(info, dict) else str(info)
        return out

    @property
    def provenance(self) -> dict[str, Any]:
        """The config that drove the recording (name, digest, signers, lineage), if any."""
        prov = self.metadata.get("provenance")
        if not isinstance(prov, dict) and self.manifest is not None:
            prov = self.manifest.doc.get("provenance")
        return prov if isinstance(prov, dict) else {}

    @property
    def run_id(self) -> str | None:
        rid = self.metadata.get("run_id")
        if rid is None and self.manifest is not None:
            rid = self.manifest.doc.get("run_id")
        return str(rid) if rid is not None else None

    def _optional(self, name: str) -> Path | None:
        p = self.path / name
        return p if p.is_file() else None

    @property
    def video_path(self) -> Path:
        return self.path / FRAMES_FILE

    @property
    def webcam_path(self) -> Path | None:
        return self._optional(WEBCAM_FILE)

    @property
    def audio_path(self) -> Path | None:
        return self._optional(AUDIO_FILE)

    @property
    def events_path(self) -> Path:
        return self.path / EVENTS_FILE

    def parquet_file(self) -> Any:
        """``events.parquet`` opened (footer read) as a ``pyarrow.parquet.ParquetFile``; page
        checksums (written by the recorder) are verified as pages are read."""
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(str(self.events_path), page_checksum_verification=True)
        except FileNotFoundError:
            raise SessionError(
                f"{EVENTS_FILE} is missing", file=str(self.path), hint=self._recover_hint()
            ) from None
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several unrelated types here
            detail = " ".join(str(exc).split())  # pyarrow's messages span lines
            raise SessionError(
                f"unreadable ({detail})", file=str(self.events_path), hint=self._recover_hint()
            ) from None

    def _recover_hint(self) -> str:
        if self.status == STATUS_RECORDING:
            return f"run 'python -m capture recover {self.path}'"
        return (
            f"the file is damaged; restore it from a copy, or run 'python -m capture recover "
            f"{self.path}' to keep the readable part"
        )

    def iter_events(
        self, *, columns: Sequence[str] | None = None, batch_size: int = 65536
    ) -> Iterator[Any]:
        """``events.parquet`` as ``pyarrow.RecordBatch`` es (never the whole file in memory)."""
        import pyarrow as pa

        from ._scan import schema_problem

        pf = self.parquet_file()
        problem = schema_problem(pf.schema_arrow)
        if problem is not None:
            # Batches of another schema would not make one table (or one training sample).
            raise SessionError(problem, file=str(self.events_path), hint=self._recover_hint())
        try:
            yield from pf.iter_batches(
                batch_size=batch_size,
                columns=list(columns) if columns is not None else None,
                use_threads=False,
            )
        except (pa.ArrowException, OSError) as exc:
            # Out of memory under a run's budget is the budget's problem, not the file's.
            if isinstance(exc, pa.ArrowMemoryError) or "Failed to launch worker thread" in str(exc):
                raise BudgetError(
                    f"reading {self.events_path} ran out of the memory budget: {exc}",
                    path="AP_MEM_LIMIT_MB",
                    hint="raise AP_MEM_LIMIT_MB",
                ) from None
            raise SessionError(
                f"corrupt ({' '.join(str(exc).split())})",
                file=str(self.events_path),
                hint=self._recover_hint(),
            ) from None

    def events(self, *, columns: Sequence[str] | None = None) -> Any:
        """The whole event stream as a ``pyarrow.Table`` (schema :func:`event_schema`)."""
        import pyarrow as pa

        from ._format import event_schema

        schema = event_schema()
        if columns is not None:
            schema = pa.schema([schema.field(c) for c in columns])
        return pa.Table.from_batches(list(self.iter_events(columns=columns)), schema=schema)

    def _filtered(self, stream: str | None, event_type: str | None, events: Any) -> Any:
        import pyarrow.compute as pc

        table = self.events() if events is None else events
        mask = None
        if stream is not None:
            mask = pc.equal(table["stream"], stream)
        if event_type is not None:
            kind = pc.equal(table["event_type"], event_type)
            mask = kind if mask is None else pc.and_(mask, kind)
        return table if mask is None else table.filter(pc.fill_null(mask, False))

    # ``events``: this session's :meth:`events` table when the caller has read it already
    # (the report, the dataset), so that events.parquet is read once, not once per use.

    def frames(self, stream: str = "screen", *, events: Any = None) -> Any:
        """Frame rows of ``stream`` (``frame_ref`` = frame index = video PTS)."""
        return self._filtered(stream, "frame", events)

    def inputs(self, *, events: Any = None) -> Any:
        """Input rows (keys, mouse, scroll), each with the ``frame_ref`` it belongs to."""
        return self._filtered("input", None, events)


def open_session(path: str | Path) -> Session:
    """Open a session directory; :class:`SessionError` (one line, naming the file) if it cannot
    be read: no or corrupt ``metadata.json``, or a ``format_version`` this reader refuses."""
    session = Path(path)
    if not session.is_dir():
        raise SessionError("not a session directory", file=str(session))
    meta = read_metadata(session)
    version = check_format_version(meta.get("format_version"), file=str(session / METADATA_FILE))
    manifest = read_manifest(session)
    problem = manifest if isinstance(manifest, str) else None
    return Session(
        session,
        meta,
        manifest if isinstance(manifest, ManifestInfo) else None,
        problem,
        version,
    )
