"""Turning a session directory into its final files: used at the end of a run and by recover.

Everything is derived from what is on disk: the event journal (or an existing
``events.parquet``), the video's readable frames, and the static ``metadata.json`` written when
recording started. A finished session is committed by writing ``manifest.json`` last, with
``status`` ``complete`` (or ``recovered``), via an atomic rename; until then it says
``recording``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from aiconfig._files import atomic_write_json
from aiconfig.sessions import build_manifest, refuse_symlinked_members

from ._constants import (
    EVENTS_FILE,
    EVENTS_JOURNAL,
    FRAMES_FILE,
    MANIFEST_FILE,
    METADATA_FILE,
    STATUS_COMPLETE,
    STATUS_RECOVERED,
    WEBCAM_FILE,
)
from ._events import event_schema, journal_to_parquet, read_events_salvage, read_journal
from ._validate import VideoInfo, probe_video, validate_session

__all__ = ["finalize_session", "write_manifest"]


_RECOVERY_NOTES = {
    "killed": "events and frames after the last complete video fragment and the last journal "
    "flush (about 1 s) were lost when the recorder died",
    "failed": "a write failed (see failure); what was written before it was kept, up to the "
    "last complete video fragment and journal batch",
    "damaged": "the finished session's files were damaged (see damage); the readable part was "
    "kept, the original files are in .original/",
}


def write_manifest(session: Path, status: str, extra: dict[str, Any] | None = None) -> None:
    """Hash the session's files and commit ``manifest.json`` (the session format's schema)."""
    atomic_write_json(session / MANIFEST_FILE, build_manifest(session, status, extra))


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _video_frames(path: Path, meta: dict[str, Any]) -> int:
    if not path.is_file():
        return 0
    info = meta.get("webcam_info") or {}
    return probe_video(path, int(info.get("fps") or meta["fps"])).frames


def _load_events(session: Path, *, salvage: bool = False) -> tuple[Any, bool]:
    """The events and whether some were lost (a torn journal batch, a damaged row group)."""
    journal = session / EVENTS_JOURNAL
    if journal.is_file():
        return read_journal(journal)
    if (session / EVENTS_FILE).is_file():
        if salvage:
            table, problem = read_events_salvage(session / EVENTS_FILE)
            return table, problem is not None
        return pq.read_table(str(session / EVENTS_FILE)), False
    return event_schema().empty_table(), True


@dataclass(frozen=True, slots=True)
class _Trimmed:
    """The events that survive: frame rows with a readable video frame, inputs on a kept frame."""

    events: Any  # pyarrow.Table, sorted by t_ns
    frames: int  # screen frames kept (= readable frames that have a row)
    frame_rows: int  # screen frame rows before trimming
    lost_inputs: int


def _trim_to_video(table: Any, readable: dict[str, int]) -> _Trimmed:
    """Drop frame rows past each video's last readable frame, and input events that do not
    point at a kept screen frame (events after the last kept frame are lost)."""
    keep = pa.array([True] * table.num_rows, type=pa.bool_())
    n_rows_frames = n_frames = 0
    for stream_name, frames in readable.items():
        is_frame = pc.and_(
            pc.equal(table["event_type"], "frame"), pc.equal(table["stream"], stream_name)
        )
        rows_here = int(pc.sum(pc.cast(is_frame, pa.int64())).as_py() or 0)
        kept_here = min(frames, rows_here)
        if stream_name == "screen":
            n_rows_frames, n_frames = rows_here, kept_here
        too_late = pc.and_(is_frame, pc.greater_equal(table["frame_ref"], kept_here))
        keep = pc.and_(keep, pc.invert(pc.fill_null(too_late, False)))
    is_input = pc.equal(table["stream"], "input")
    bad_input = pc.and_(
        is_input,
        pc.or_(pc.less(table["frame_ref"], 0), pc.greater_equal(table["frame_ref"], n_frames)),
    )
    keep = pc.and_(keep, pc.invert(pc.fill_null(bad_input, True)))
    kept = table.filter(keep)
    lost_inputs = int(pc.sum(pc.cast(is_input, pa.int64())).as_py() or 0) - int(
        pc.sum(pc.cast(pc.equal(kept["stream"], "input"), pa.int64())).as_py() or 0
    )
    return _Trimmed(kept.sort_by([("t_ns", "ascending")]), n_frames, n_rows_frames, lost_inputs)


def _frame_counts(events: Any) -> tuple[int, int, int, dict[str, int]]:
    """``(fresh, padded, dropped, events per type)`` of the kept events."""
    rows = events.to_pydict()
    padded = dropped = fresh = 0
    for kind, stream, duplicate, extra in zip(
        rows["event_type"], rows["stream"], rows["is_duplicate"], rows["metadata"], strict=True
    ):
        if kind != "frame" or stream != "screen":
            continue
        if not duplicate:
            fresh += 1
        elif extra and "dropped" in extra:
            dropped += 1
        else:
            padded += 1
    counts: dict[str, int] = {}
    for kind in rows["event_type"]:
        counts[kind] = counts.get(kind, 0) + 1
    return fresh, padded, dropped, counts


def _timed_segments(
    segments: list[dict[str, Any]], t0: int, fps: int, n_frames: int
) -> list[dict[str, Any]]:
    """Focus segments clipped to the kept frames, with their start and end times."""
    out = [
        {
            **seg,
            "start_t_ns": t0 + (seg["start_frame"] * 1_000_000_000) // fps,
            "end_t_ns": t0 + ((seg["end_frame"] + 1) * 1_000_000_000) // fps,
        }
        for seg in segments
        if seg["start_frame"] < n_frames
    ]
    for seg in out:
        seg["end_frame"] = min(seg["end_frame"], n_frames - 1)
    return out


def _commit(session: Path, meta: dict[str, Any], status: str, video: VideoInfo | None) -> None:
    """Write metadata and manifest, validate the files, then write both again with the verdict
    (the manifest last: it is what says the session is finished)."""
    meta["validation"] = {"ok": None, "problems": []}
    atomic_write_json(session / METADATA_FILE, meta)
    (session / EVENTS_JOURNAL).unlink(missing_ok=True)
    write_manifest(session, status)
    problems = validate_session(session)
    meta["validation"] = {
        "ok": not problems,
        "problems": problems,
        "video_frames": video.frames if video else 0,
        "frame_rows": meta["frame_count"],
        "pts_equal_index": bool(video.pts_ok) if video else False,
        "max_keyframe_gap_frames": video.keyframe_gap_max if video else 0,
    }
    atomic_write_json(session / METADATA_FILE, meta)
    write_manifest(session, status)


def _kept_frames(
    session: Path, table: Any, meta: dict[str, Any], fps: int, *, recovered: bool
) -> tuple[_Trimmed, VideoInfo | None, int]:
    """The events trimmed to the readable video, the video kept, its readable frame count.

    A recovery rewrites ``frames.mp4`` once, with its readable frames that have a row."""
    frames_path = session / FRAMES_FILE
    readable = {"screen": 0, "webcam": _video_frames(session / WEBCAM_FILE, meta)}
    video: VideoInfo | None = None
    if recovered and frames_path.is_file():
        # A torn fragmented MP4 cannot be probed as a whole: count its readable packets (one
        # pass, nothing written), then rewrite it once with the frames that have a row (the
        # events may end before the video: a journal cut short, a damaged row group).
        from ._remux import count_readable, remux_readable

        readable["screen"] = count_readable(frames_path)
        trimmed = _trim_to_video(table, readable)
        remux_readable(frames_path, limit=trimmed.frames)
        video = probe_video(frames_path, fps)
        if video.frames < trimmed.frames:  # the muxer refused a packet: fewer frames kept
            trimmed = _trim_to_video(table, {**readable, "screen": video.frames})
    else:
        if frames_path.is_file():
            video = probe_video(frames_path, fps)
            readable["screen"] = video.frames
        trimmed = _trim_to_video(table, readable)
    return trimmed, video, readable["screen"]


def _record_recovery(
    meta: dict[str, Any],
    trimmed: _Trimmed,
    n_video: int,
    *,
    journal_truncated: bool,
    events_from: str | None,
    cause: str,
    damage: list[str] | None,
    failure: dict[str, Any] | None,
) -> None:
    """``meta["recovery"]``: what was readable, what was lost and why; the stop reason."""
    n_frames = trimmed.frames
    meta["recovery"] = {
        "recovered_at": _now_iso(),
        "video_frames_readable": n_video,
        "frame_rows_in_journal": trimmed.frame_rows,
        "lost_frames": trimmed.frame_rows - n_frames,
        "video_frames_without_rows": max(0, n_video - n_frames),
        "lost_input_events": trimmed.lost_inputs,
        "journal_truncated": journal_truncated,
        "events_from": events_from,
        "cause": cause,
        "originals": ".original/",
        "note": _RECOVERY_NOTES[cause],
    }
    if damage:
        meta["recovery"]["damage"] = damage
    if cause == "killed":
        meta["stop_reason"] = "killed"
    elif cause == "failed":
        reason = (failure or {}).get("reason", "write failed")
        meta["stop_reason"] = f"error: {reason}"
        meta["failure"] = failure


def finalize_session(
    session: Path,
    *,
    recovered: bool,
    live: dict[str, Any] | None = None,
    cause: str = "killed",
    damage: list[str] | None = None,
    failure: dict[str, Any] | None = None,
    events_from: str | None = None,
    events: tuple[Any, bool] | None = None,
) -> dict[str, Any]:
    """Write ``events.parquet``, ``metadata.json`` and ``manifest.json``; return the metadata.

    ``live`` is what only a running recorder knows (stop time and reason, stream outcomes,
    window moves, focus segments); ``recover`` has none of it. A recovery says its ``cause``:
    ``killed`` (the recorder died), ``failed`` (a write failed: ``failure`` from the metadata)
    or ``damaged`` (a finished session's files were damaged later: ``damage`` lists the
    validator's findings). ``events`` is the table recover already read (and whether some
    events were lost), so no file is read twice; without it the events are read from disk.
    """
    refuse_symlinked_members(session)
    meta: dict[str, Any] = json.loads((session / METADATA_FILE).read_text())
    fps = int(meta["fps"])
    t0 = int(meta["start_monotonic_ns"]) if meta.get("start_monotonic_ns") is not None else None
    table, journal_truncated = (
        events if events is not None else _load_events(session, salvage=recovered)
    )
    trimmed, video, n_video = _kept_frames(session, table, meta, fps, recovered=recovered)
    n_frames = trimmed.frames
    journal_to_parquet(trimmed.events, session / EVENTS_FILE, rows_per_group=fps)
    fresh, padded, dropped, counts = _frame_counts(trimmed.events)

    live = live or {}
    stop_mono = live.get("stop_monotonic_ns")
    if stop_mono is None and t0 is not None:
        stop_mono = t0 + (n_frames * 1_000_000_000) // fps
    elapsed_s = (stop_mono - t0) / 1e9 if (t0 is not None and stop_mono) else 0.0
    duration_s = n_frames / fps
    start_wall = meta.get("start_t_ns")
    meta.update(
        {
            "status": STATUS_RECOVERED if recovered else STATUS_COMPLETE,
            "frame_count": n_frames,
            "dropped_frames": dropped,
            "padded_frames": padded,
            "actual_fps": round(n_frames / elapsed_s, 3) if elapsed_s > 0 else 0.0,
            "capture_fps": round(fresh / elapsed_s, 3) if elapsed_s > 0 else 0.0,
            "end_t_ns": (start_wall + int(duration_s * 1e9)) if start_wall is not None else None,
            "duration_s": round(duration_s, 6),
            "event_counts": counts,
        }
    )
    for key in (
        "stop_reason",
        "streams",
        "window",
        "trajectories",
        "audio_info",
        "webcam_info",
        "storage",
    ):
        if key in live:
            meta[key] = live[key]
    if t0 is not None:
        meta["trajectories"] = _timed_segments(meta.get("trajectories", []), t0, fps, n_frames)
    if recovered:
        _record_recovery(
            meta,
            trimmed,
            n_video,
            journal_truncated=journal_truncated,
            events_from=events_from,
            cause=cause,
            damage=damage,
            failure=failure,
        )
    _commit(session, meta, STATUS_RECOVERED if recovered else STATUS_COMPLETE, video)
    return meta
