"""The one session validator: ``python -m capture validate``, ``aiconfig sessions validate``,
the pipeline and the catalog all call :func:`validate_session`.

A session is **invalid** (a ``problem``) when it breaks the format: a required file is missing or
unreadable, the event schema differs from the seed's, metadata lacks a seed field or disagrees
with the rows, frame rows are not numbered 0..n-1 on the fps grid, timestamps go backwards within
a stream, an input's ``frame_ref`` points outside the video, the video's frame count, size, codec
or PTS (= frame index) disagree with the rows, the video has B-frames or longer keyframe gaps
than recorded, or a file's sha256 differs from the manifest. Anything else worth knowing is a
``note`` (it never makes a session invalid or degraded); quality thresholds are the pipeline's.
"""

from __future__ import annotations

import math
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import ConfigFileError, SessionError
from ._format import (
    AUDIO_FILE,
    EVENTS_FILE,
    EVENTS_JOURNAL,
    FRAMES_FILE,
    MANIFEST_FILE,
    METADATA_FILE,
    STATUS_COMPLETE,
    STATUS_FAILED,
    STATUS_RECORDING,
    STATUS_RECOVERED,
    WEBCAM_FILE,
)
from ._manifest import verify_artifacts
from ._scan import EventScan, scan_events, schema_problem
from ._session import Session, metadata_problems, open_session, read_json_member, symlinked_members
from ._video import VideoInfo, probe_video

__all__ = ["SessionCheck", "validate_session"]


@dataclass
class SessionCheck:
    """The verdict on one session: ``problems`` (invalid when any), ``notes``, ``stats``."""

    path: str
    session_id: str | None = None
    status: str = "failed"
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "session_id": self.session_id,
            "status": self.status,
            "valid": self.valid,
            "problems": self.problems,
            "notes": self.notes,
            "stats": self.stats,
        }


def _pct(values: Any, q: float) -> float | None:
    import numpy as np

    return round(float(np.percentile(values, q)), 3) if len(values) else None


def _audio(path: Path, check: SessionCheck) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        with wave.open(str(path), "rb") as w:
            rate, ch, n = w.getframerate(), w.getnchannels(), w.getnframes()
    except (OSError, wave.Error, EOFError) as exc:
        check.problems.append(f"{AUDIO_FILE} is unreadable ({exc})")
        return None
    return {"sample_rate": rate, "channels": ch, "duration_s": round(n / rate, 3) if rate else 0}


def _not_finalized(path: Path) -> bool:
    """The recorder writes ``manifest.json`` with ``status: recording`` first and commits it
    last; a killed one leaves it (or its journal) behind."""
    try:
        doc = read_json_member(path / MANIFEST_FILE)
    except (OSError, ConfigFileError):
        return (path / EVENTS_JOURNAL).is_file()
    return isinstance(doc, dict) and doc.get("status") in (STATUS_RECORDING, STATUS_FAILED)


def _failure(path: Path) -> str | None:
    """``reason at TIME`` from a failed session's metadata (None when it did not fail)."""
    try:
        doc = read_json_member(path / MANIFEST_FILE)
        if not isinstance(doc, dict) or doc.get("status") != STATUS_FAILED:
            return None
        meta = read_json_member(path / METADATA_FILE)
        failure = meta.get("failure") if isinstance(meta, dict) else None
    except (OSError, ConfigFileError):
        return "reason unknown"
    if not isinstance(failure, dict):
        return "reason unknown"
    return f"{failure.get('reason', 'reason unknown')} at {failure.get('at', 'an unknown time')}"


def _open(path: Path, check: SessionCheck) -> Session | None:
    if not path.is_dir():
        check.problems.append("session directory does not exist")
        return None
    links = symlinked_members(path)
    if links:
        check.problems.append(f"session members are symbolic links (refused): {', '.join(links)}")
        return None
    try:
        if _not_finalized(path):
            check.status = STATUS_RECORDING
            failure = _failure(path)
            if failure is not None:
                check.status = STATUS_FAILED
                check.problems.append(
                    f"the recording failed ({failure}); free some space if the disk is full "
                    f"and run 'python -m capture recover {path}'"
                )
                return None
            check.problems.append(
                "the session was not finalized (recorder killed or still running); "
                f"run 'python -m capture recover {path}'"
            )
            return None
        missing = [
            f"{name} is missing"
            for name in (FRAMES_FILE, EVENTS_FILE, METADATA_FILE, MANIFEST_FILE)
            if not (path / name).is_file()
        ]
        if (path / METADATA_FILE).is_file() and not (path / MANIFEST_FILE).is_file():
            missing[-1] += (
                " (the recorder writes it last); "
                f"run 'python -m capture recover {path}' if the recorder was killed"
            )
        check.problems.extend(missing)
        if not (path / METADATA_FILE).is_file():
            return None
        session = open_session(path)
    except SessionError as exc:
        check.problems.append(exc.problems[0].render())
        return None
    except PermissionError as exc:
        check.problems.append(f"cannot read the session ({exc.strerror}); check its permissions")
        return None
    check.session_id = session.id
    check.status = session.status
    if session.manifest_problem is not None:
        check.problems.append(session.manifest_problem)
        return None
    if session.manifest is not None and session.status not in (
        STATUS_COMPLETE,
        STATUS_RECOVERED,
    ):
        check.problems.append(
            f"{MANIFEST_FILE} status is {session.status!r}; run 'python -m capture recover {path}'"
        )
    check.problems.extend(metadata_problems(session.metadata))
    return session


def _events(
    session: Session, check: SessionCheck, batch_rows: int, events: Any
) -> EventScan | None:
    if events is None:
        try:
            schema = session.parquet_file().schema_arrow
        except SessionError as exc:
            check.problems.append(exc.problems[0].render())
            return None
    else:
        schema = events.schema
    problem = schema_problem(schema)
    if problem is not None:
        check.problems.append(problem)
        return None
    meta_id = session.metadata.get("session_id")
    batches = (
        session.iter_events(columns=None, batch_size=batch_rows)
        if events is None
        else events.to_batches(max_chunksize=batch_rows)
    )
    try:
        return scan_events(batches, meta_id if isinstance(meta_id, str) else None)
    except SessionError as exc:
        check.problems.append(exc.problems[0].render())
        return None


def _check_rows(session: Session, ev: EventScan, check: SessionCheck) -> None:
    import numpy as np

    meta = session.metadata
    fps = session.fps  # total: a wrong-typed field reads as 0 (metadata_problems names it)
    n = len(ev.frame_t)
    if not ev.frame_refs_in_order:
        check.problems.append("screen frame rows are not numbered 0..n-1 in order")
    t0 = meta.get("start_monotonic_ns")
    if not (isinstance(t0, int) and not isinstance(t0, bool) and 0 <= t0 < 2**62):
        t0 = None  # not a clock reading the int64 grid below could hold
    if n and t0 is not None and fps > 0 and float(fps).is_integer():
        grid = t0 + (np.arange(n, dtype=np.int64) * 1_000_000_000) // int(fps)
        off = int((ev.frame_t != grid).sum())
        if off:
            check.problems.append(f"{off} frame rows have t_ns off the {fps:g} fps grid")
    for stream, bad in sorted(ev.non_monotonic.items()):
        check.problems.append(f"t_ns goes backwards {bad} times in stream {stream!r}")
    if ev.foreign_session_rows:
        check.problems.append(
            f"{EVENTS_FILE}: {ev.foreign_session_rows} rows carry another session_id"
        )
    dups = int(ev.frame_dup.sum())
    padded, dropped = meta.get("padded_frames"), meta.get("dropped_frames")
    if isinstance(padded, int) and isinstance(dropped, int) and dups != padded + dropped:
        check.problems.append(
            f"{dups} duplicate frame rows but {METADATA_FILE} counts {padded} padded + "
            f"{dropped} dropped"
        )
    refs = ev.input_ref
    bad_refs = int((~((refs >= 0) & (refs < n))).sum()) if len(refs) else 0
    if bad_refs:
        check.problems.append(
            f"{bad_refs} input events have a missing frame_ref or one outside 0..{n - 1}"
        )
    count = meta.get("frame_count")
    if count is not None and count != n:
        check.problems.append(f"{METADATA_FILE}: frame_count is {count}, events have {n} frames")
    if len(refs) and n:
        expected = np.searchsorted(ev.frame_t, ev.input_t, side="right") - 1
        valid = (refs >= 0) & (refs < n)
        mismatches = int(((expected != refs) & valid).sum())
        if mismatches:
            check.notes.append(f"{mismatches} input events' frame_ref disagree with their t_ns")
        check.stats.setdefault("timing", {})["frame_ref_mismatches"] = mismatches


def _check_video(session: Session, ev: EventScan, check: SessionCheck) -> VideoInfo:
    meta = session.metadata
    fps = session.fps or 1.0
    video = probe_video(session.video_path, fps, decode_first=True)
    check.problems.extend(video.problems)
    n = len(ev.frame_t)
    if not video.problems:
        if video.codec != "h264":
            check.problems.append(f"{FRAMES_FILE} codec is {video.codec}, expected h264")
        if not video.decodable:
            check.problems.append(f"{FRAMES_FILE}: no frame could be decoded")
    if video.frames != n:
        check.problems.append(f"{FRAMES_FILE} has {video.frames} frames but events have {n}")
    if not video.pts_ok:
        check.problems.append(f"{FRAMES_FILE} PTS are not the frame indices 0..n-1")
    if video.has_b_frames:
        check.problems.append(f"{FRAMES_FILE} uses B-frames")
    gop = session.keyframe_interval
    if gop and video.keyframe_gap_max > gop and video.frames > gop:
        check.problems.append(
            f"{FRAMES_FILE} has {video.keyframe_gap_max} frames between keyframes, "
            f"metadata.video.gop_frames is {gop}"
        )
    res = meta.get("screen_resolution")
    if not video.problems and [video.width, video.height] != res:
        check.problems.append(
            f"{FRAMES_FILE} is {video.width}x{video.height} but {METADATA_FILE} "
            f"screen_resolution is {res}"
        )
    cam_path = session.path / WEBCAM_FILE
    if cam_path.is_file():
        cam_info = meta.get("webcam_info")
        cam_fps = fps
        if isinstance(cam_info, dict) and isinstance(cam_info.get("fps"), int | float):
            cam_fps = float(cam_info["fps"]) or fps
        cam = probe_video(cam_path, cam_fps)
        check.problems.extend(cam.problems)
        if cam.frames != ev.webcam_frames:
            check.problems.append(
                f"{WEBCAM_FILE} has {cam.frames} frames but events have {ev.webcam_frames}"
            )
        if not cam.pts_ok:
            check.problems.append(f"{WEBCAM_FILE} PTS are not the frame indices 0..n-1")
        check.stats["webcam_frames"] = cam.frames
    elif ev.webcam_frames:
        check.problems.append(f"{ev.webcam_frames} webcam frame rows but no {WEBCAM_FILE}")
    return video


def _stats(session: Session, ev: EventScan, video: VideoInfo, check: SessionCheck) -> None:
    import numpy as np

    meta = session.metadata
    fps = session.fps
    duration = session.duration_s
    n = len(ev.frame_t)
    dup = ev.frame_dup
    fresh = ~dup
    period_ms = 1000.0 / fps if fps else 0.0
    cap = ev.frame_cap[fresh]
    lag_ms = (cap - ev.frame_t[fresh]) / 1e6 if n else np.zeros(0)
    cap_iv = np.diff(cap) / 1e6 if len(cap) > 1 else np.zeros(0)
    dropped, padded = meta.get("dropped_frames"), meta.get("padded_frames")
    dropped = dropped if isinstance(dropped, int) else 0
    padded = padded if isinstance(padded, int) else 0
    timing = check.stats.get("timing", {})
    check.stats.update(
        {
            "duration_s": duration,
            "fps_target": fps,
            "fps_achieved": round(video.frames / duration, 3) if duration > 0 else None,
            "fps_unique": round(int(fresh.sum()) / duration, 3) if duration > 0 else None,
            "metadata_actual_fps": meta.get("actual_fps"),
            "metadata_capture_fps": meta.get("capture_fps"),
            "video_frames": video.frames,
            "keyframes": video.keyframes,
            "max_keyframe_gap_frames": video.keyframe_gap_max,
            "pts_equal_frame_indices": video.pts_ok,
            "dropped_frames": dropped,
            "padded_frames": padded,
            "duplicate_frames": int(dup.sum()),
            "padded_rate": round(padded / n, 5) if n else 0.0,
            "drop_rate": round(dropped / n, 5) if n else 0.0,
            "event_rows": ev.rows,
            "event_counts": dict(sorted(ev.event_counts.items())),
            "input_events": int(sum(ev.input_counts.values())),
            "input_counts": dict(sorted(ev.input_counts.items())),
            "timing": {
                "frame_period_ms": round(period_ms, 3),
                "capture_interval_ms_p50": _pct(cap_iv, 50),
                "capture_interval_ms_p95": _pct(cap_iv, 95),
                "capture_interval_ms_max": _pct(cap_iv, 100),
                "capture_jitter_ms": round(float(np.std(lag_ms)), 3) if len(lag_ms) else 0.0,
                "capture_lag_ms_p50": _pct(lag_ms, 50),
                "capture_lag_ms_p95": _pct(lag_ms, 95),
                "capture_lag_ms_max": _pct(lag_ms, 100),
                "late_frames": int((lag_ms > period_ms).sum()) if len(lag_ms) else 0,
                "frame_ref_mismatches": timing.get("frame_ref_mismatches", 0),
            },
            "webcam_frames": check.stats.get("webcam_frames"),
            "audio": _audio(session.path / AUDIO_FILE, check),
        }
    )
    start, end = meta.get("start_t_ns"), meta.get("end_t_ns")
    if (
        isinstance(start, int)
        and isinstance(end, int)
        and duration > 0
        and not math.isclose(duration, (end - start) / 1e9, rel_tol=0.01)
    ):
        check.notes.append("duration_s disagrees with end_t_ns - start_t_ns")


def validate_session(
    path: str | Path, *, batch_rows: int = 65536, verify_hashes: bool = True, events: Any = None
) -> SessionCheck:
    """Check ``path`` against the format and measure it. Never raises for bad data: every
    problem is one line in :attr:`SessionCheck.problems`.

    ``events``: the session's ``Session.events()`` table when the caller has read it for its
    own use too (the report, the dataset): it is checked instead of reading the file again.
    Without it the file is streamed in batches of ``batch_rows`` (never whole in memory)."""
    path = Path(path)
    check = SessionCheck(str(path))
    session = _open(path, check)
    if session is None or not (session.video_path.is_file() and session.events_path.is_file()):
        return check
    ev = _events(session, check, batch_rows, events)
    if ev is None:
        return check
    _check_rows(session, ev, check)
    video = _check_video(session, ev, check)
    _stats(session, ev, video, check)
    if verify_hashes and session.manifest is not None:
        check.problems.extend(verify_artifacts(path, session.manifest))
    return check
