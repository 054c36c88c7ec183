"""Read, validate and measure one persisted capture session (System 0 data contract).

A session directory ``session_YYYYMMDD_HHMMSS/`` holds ``frames.mp4`` (H.264), ``events.parquet``
(exactly :data:`EVENT_SCHEMA`), ``metadata.json`` (:data:`METADATA_FIELDS`) and optionally
``webcam.mp4`` and ``audio.wav``. :func:`analyze_session` streams the event file in batches and
demuxes the video without decoding it (one frame is decoded to prove it is decodable), so a long
session is never loaded whole into memory.

This module imports numpy, pyarrow and PyAV (the ``capture`` extra): import it lazily.
"""

from __future__ import annotations

import json
import math
import wave
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .._errors import BudgetError, ManifestError
from .manifest import verify_manifest

__all__ = ["EVENT_SCHEMA", "METADATA_FIELDS", "SessionReport", "Thresholds", "analyze_session"]

# The harness reads persisted sessions and never imports the recorder (tests/harness/test_api.py),
# so the seed's table is stated here too; tests/capture checks both statements agree.
EVENT_SCHEMA: tuple[tuple[str, str], ...] = (
    ("t_ns", "int64"),
    ("t_capture_ns", "int64"),
    ("is_duplicate", "bool"),
    ("event_type", "string"),
    ("stream", "string"),
    ("key_code", "int32"),
    ("mouse_x", "float"),
    ("mouse_y", "float"),
    ("mouse_button", "string"),
    ("delta", "float"),
    ("frame_ref", "int32"),
    ("window_id", "string"),
    ("session_id", "string"),
    ("metadata", "string"),
)
"""Column names and Arrow type names (``float`` is Arrow's name for float32)."""

METADATA_FIELDS: dict[str, tuple[type, ...]] = {
    "format_version": (str,),
    "session_id": (str,),
    "fps": (int, float),
    "dropped_frames": (int,),
    "padded_frames": (int,),
    "actual_fps": (int, float),
    "capture_fps": (int, float),
    "screen_resolution": (list,),
    "window_id": (str,),
    "start_t_ns": (int,),
    "end_t_ns": (int,),
    "duration_s": (int, float),
}
OPTIONAL_METADATA = ("webcam_info", "audio_info", "validation", "trajectories")
DEFAULT_ACTIONS = ("key_press", "mouse_press", "mouse_click", "mouse_down", "scroll")


@dataclass(frozen=True)
class Thresholds:
    """Quality thresholds (from the config template); breaking one makes a session ``degraded``."""

    max_drop_rate: float = 0.01
    max_capture_jitter_ms: float = 10.0
    max_capture_lag_ms: float = 50.0
    action_event_types: tuple[str, ...] = DEFAULT_ACTIONS
    require_webcam: bool = False
    require_audio: bool = False


@dataclass
class SessionReport:
    path: str
    session_id: str | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def quality(self) -> str:
        if self.problems:
            return "invalid"
        return "degraded" if self.warnings else "good"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "session_id": self.session_id,
            "valid": self.valid,
            "quality": self.quality,
            "problems": self.problems,
            "warnings": self.warnings,
            "stats": self.stats,
            **({"steps": self.steps} if self.steps else {}),
        }


def _pct(values: Any, q: float) -> float | None:
    if len(values) == 0:
        return None
    return round(float(np.percentile(values, q)), 3)


def _check_metadata(path: Path, rep: SessionReport) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        rep.problems.append(f"metadata.json unreadable: {exc}")
        return {}
    if not isinstance(meta, dict):
        rep.problems.append("metadata.json is not a JSON object")
        return {}
    for name, types in METADATA_FIELDS.items():
        if name not in meta:
            rep.problems.append(f"metadata.json: missing field {name!r}")
        elif isinstance(meta[name], bool) or not isinstance(meta[name], types):
            rep.problems.append(f"metadata.json: {name} has type {type(meta[name]).__name__}")
    res = meta.get("screen_resolution")
    if isinstance(res, list) and (len(res) != 2 or not all(isinstance(v, int) for v in res)):
        rep.problems.append("metadata.json: screen_resolution is not [width, height]")
    fps = meta.get("fps")
    if isinstance(fps, int | float) and not fps > 0:
        rep.problems.append("metadata.json: fps must be positive")
    start, end = meta.get("start_t_ns"), meta.get("end_t_ns")
    if isinstance(start, int) and isinstance(end, int) and end < start:
        rep.problems.append("metadata.json: end_t_ns is before start_t_ns")
    rep.session_id = meta.get("session_id") if isinstance(meta.get("session_id"), str) else None
    return meta


def _batches(pf: Any, cols: list[str], batch_rows: int) -> Any:
    # Single-threaded column decoding: the pipeline parallelises across sessions instead.
    yield from pf.iter_batches(batch_size=batch_rows, columns=cols, use_threads=False)


def _scan_events(path: Path, rep: SessionReport, batch_rows: int) -> dict[str, Any]:
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several unrelated types here
        rep.problems.append(f"events.parquet unreadable: {exc}")
        return {}
    got = [(f.name, str(f.type)) for f in pf.schema_arrow]
    if got != list(EVENT_SCHEMA):
        want = {n: t for n, t in EVENT_SCHEMA}
        have = dict(got)
        diffs = [
            f"{n}: {have.get(n, 'missing')} != {t}" for n, t in want.items() if have.get(n) != t
        ]
        diffs += [f"{n}: unexpected column" for n in have if n not in want]
        rep.problems.append("events.parquet schema differs: " + "; ".join(diffs or ["order"]))
        return {}
    cols = [
        "t_ns",
        "t_capture_ns",
        "is_duplicate",
        "event_type",
        "stream",
        "frame_ref",
        "session_id",
    ]
    f_t, f_cap, f_dup, w_count, in_t, in_ref = [], [], [], 0, [], []
    types: Counter[str] = Counter()
    foreign_ids = 0
    try:
        for batch in _batches(pf, cols, batch_rows):
            d = {c: batch.column(c) for c in cols}

            def mask(expr: Any) -> Any:
                return pc.fill_null(expr, False).to_numpy(zero_copy_only=False)

            screen = mask(
                pc.and_(pc.equal(d["stream"], "screen"), pc.equal(d["event_type"], "frame"))
            )
            webcam = mask(
                pc.and_(pc.equal(d["stream"], "webcam"), pc.equal(d["event_type"], "frame"))
            )
            inp = mask(pc.equal(d["stream"], "input"))
            t = d["t_ns"].to_numpy(zero_copy_only=False)
            f_t.append(t[screen])
            f_cap.append(d["t_capture_ns"].to_numpy(zero_copy_only=False)[screen])
            f_dup.append(d["is_duplicate"].to_numpy(zero_copy_only=False)[screen])
            w_count += int(webcam.sum())
            for item in pc.value_counts(d["event_type"].filter(pa.array(inp))).to_pylist():
                types[str(item["values"])] += int(item["counts"])
            in_t.append(t[inp])
            in_ref.append(d["frame_ref"].to_numpy(zero_copy_only=False)[inp])
            if rep.session_id is not None:
                same = pc.fill_null(pc.equal(d["session_id"], rep.session_id), False)
                foreign_ids += len(same) - int(pc.sum(same).as_py() or 0)
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, pa.ArrowMemoryError) or "Failed to launch worker thread" in str(exc):
            raise BudgetError(
                f"reading {path} ran out of the memory budget: {exc}",
                path="AP_MEM_LIMIT_MB",
                hint="raise AP_MEM_LIMIT_MB",
            ) from None
        rep.problems.append(f"events.parquet is corrupt: {exc}")
        return {}
    if foreign_ids:
        rep.problems.append(f"events.parquet: {foreign_ids} rows carry another session_id")

    def cat(parts: list[Any], dtype: str) -> Any:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    return {
        "rows": pf.metadata.num_rows,
        "frame_t": cat(f_t, "int64"),
        "frame_cap": cat(f_cap, "int64"),
        "frame_dup": cat(f_dup, "bool"),
        "webcam_frames": w_count,
        "input_types": types,
        "input_t": cat(in_t, "int64"),
        "input_ref": cat(in_ref, "float64"),
    }


def _scan_video(path: Path, rep: SessionReport, threads: int, name: str) -> dict[str, Any]:
    try:
        container = av.open(str(path))
    except Exception as exc:  # noqa: BLE001 - PyAV/FFmpeg errors have no common base here
        rep.problems.append(f"{name} unreadable: {exc}")
        return {}
    try:
        if not container.streams.video:
            rep.problems.append(f"{name} has no video stream")
            return {}
        vs = container.streams.video[0]
        vs.thread_count = threads
        info: dict[str, Any] = {
            "codec": vs.codec_context.name,
            "width": vs.codec_context.width,
            "height": vs.codec_context.height,
        }
        tb = vs.time_base
        pts: list[int] = []
        keyframes = 0
        decoded = False
        for packet in container.demux(vs):
            if packet.size == 0 or packet.pts is None:
                continue
            pts.append(int(packet.pts))
            keyframes += bool(packet.is_keyframe)
            if not decoded:
                decoded = bool(packet.decode())
        info.update(frames=len(pts), keyframes=keyframes, decodable=decoded)
        info["pts_s"] = [float(p * tb) for p in sorted(pts)] if tb is not None else []
        return info
    except Exception as exc:  # noqa: BLE001 - corrupt streams raise FFmpeg errors of many kinds
        rep.problems.append(f"{name} is corrupt: {exc}")
        return {}
    finally:
        container.close()


def _audio(path: Path, rep: SessionReport) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        with wave.open(str(path), "rb") as w:
            rate, ch, n = w.getframerate(), w.getnchannels(), w.getnframes()
    except (OSError, wave.Error, EOFError) as exc:
        rep.problems.append(f"audio.wav unreadable: {exc}")
        return None
    return {"sample_rate": rate, "channels": ch, "duration_s": round(n / rate, 3) if rate else 0}


def _check_own_manifest(path: Path, rep: SessionReport) -> None:
    """Re-hash the session's own ``manifest.json`` when it is an aiconfig run manifest."""
    if not (path / "manifest.json").is_file():
        return
    try:
        result = verify_manifest(path, allow_extra=True)
    except ManifestError as exc:
        rep.warnings.append(f"session manifest.json not verified: {exc.problems[0].message}")
        return
    rep.problems.extend(f"manifest.json: {p.render()}" for p in result.problems)


def analyze_session(
    path: Path, *, thresholds: Thresholds, threads: int = 1, batch_rows: int = 65536
) -> SessionReport:
    """Validate one session directory and compute its statistics (never raises for bad data)."""
    rep = SessionReport(str(path))
    if not path.is_dir():
        rep.problems.append("session directory does not exist")
        return rep
    for required in ("frames.mp4", "events.parquet", "metadata.json"):
        if not (path / required).is_file():
            rep.problems.append(f"missing {required}")
    if rep.problems:
        return rep
    meta = _check_metadata(path / "metadata.json", rep)
    _check_own_manifest(path, rep)
    ev = _scan_events(path / "events.parquet", rep, batch_rows)
    video = _scan_video(path / "frames.mp4", rep, threads, "frames.mp4")
    if rep.problems and not (ev and video and meta):
        return rep

    fps = float(meta["fps"])
    duration = float(meta["duration_s"])
    ft, fcap, fdup = ev["frame_t"], ev["frame_cap"], ev["frame_dup"]
    n_video, n_events = video["frames"], len(ft)
    if video["codec"] != "h264":
        rep.problems.append(f"frames.mp4 codec is {video['codec']}, expected h264")
    if [video["width"], video["height"]] != meta["screen_resolution"]:
        rep.problems.append(
            f"frames.mp4 is {video['width']}x{video['height']}, metadata says "
            f"{meta['screen_resolution']}"
        )
    if not video["decodable"]:
        rep.problems.append("frames.mp4: no frame could be decoded")
    if n_video != n_events:
        rep.problems.append(f"frames.mp4 has {n_video} frames, events.parquet {n_events}")
    pts_idx = [round(p * fps) for p in video["pts_s"]]
    pts_exact = pts_idx == list(range(len(pts_idx)))
    if not pts_exact:
        rep.warnings.append("video PTS are not the frame indices 0..n-1")
    non_mono = int((np.diff(ft) <= 0).sum()) if n_events > 1 else 0
    if non_mono:
        rep.problems.append(f"{non_mono} frame timestamps (t_ns) are not increasing")

    period_ms = 1000.0 / fps
    cap_iv = np.diff(fcap[~fdup]) / 1e6 if n_events > 1 else np.zeros(0)
    lag_ms = (fcap - ft)[~fdup] / 1e6 if n_events else np.zeros(0)
    # Jitter of the grab relative to the presentation timeline: independent of padding gaps.
    jitter = float(np.std(lag_ms)) if len(lag_ms) else 0.0
    duplicates = int(fdup.sum())
    dropped = int(meta["dropped_frames"])
    drop_rate = dropped / (n_video + dropped) if (n_video + dropped) else 0.0

    types: Counter[str] = ev["input_types"]
    actions = sum(types.get(t, 0) for t in thresholds.action_event_types)
    in_t, in_ref = ev["input_t"], ev["input_ref"]
    mismatches = 0
    out_of_range = 0
    if len(in_t) and n_events:
        expected = np.searchsorted(ft, in_t, side="right") - 1
        valid_ref = (in_ref >= 0) & (in_ref < n_events)
        out_of_range = int((~valid_ref).sum())
        mismatches = int(((expected != in_ref) & valid_ref).sum())
    if out_of_range:
        rep.problems.append(
            f"{out_of_range} input events have a missing frame_ref or one outside the video"
        )

    rep.stats = {
        "duration_s": duration,
        "fps_target": fps,
        "fps_achieved": round(n_video / duration, 3) if duration > 0 else None,
        "fps_unique": round((n_video - duplicates) / duration, 3) if duration > 0 else None,
        "metadata_actual_fps": meta["actual_fps"],
        "metadata_capture_fps": meta["capture_fps"],
        "video_frames": n_video,
        "keyframes": video["keyframes"],
        "pts_equal_frame_indices": pts_exact,
        "dropped_frames": dropped,
        "padded_frames": int(meta["padded_frames"]),
        "duplicate_frames": duplicates,
        "drop_rate": round(drop_rate, 5),
        "input_events": int(sum(types.values())),
        "input_counts": dict(sorted(types.items())),
        "actions": actions,
        "actions_per_minute": round(actions * 60.0 / duration, 2) if duration > 0 else None,
        "timing": {
            "frame_period_ms": round(period_ms, 3),
            "capture_interval_ms_p50": _pct(cap_iv, 50),
            "capture_interval_ms_p95": _pct(cap_iv, 95),
            "capture_interval_ms_max": _pct(cap_iv, 100),
            "capture_jitter_ms": round(jitter, 3),
            "capture_lag_ms_p50": _pct(lag_ms, 50),
            "capture_lag_ms_p95": _pct(lag_ms, 95),
            "capture_lag_ms_max": _pct(lag_ms, 100),
            "late_frames": int((lag_ms > period_ms).sum()) if len(lag_ms) else 0,
            "non_monotonic_frames": non_mono,
            "frame_ref_mismatches": mismatches,
        },
        "webcam_frames": None,
        "audio": _audio(path / "audio.wav", rep),
    }
    webcam = path / "webcam.mp4"
    if webcam.exists():
        wv = _scan_video(webcam, rep, threads, "webcam.mp4")
        rep.stats["webcam_frames"] = wv.get("frames")
        if wv and wv.get("frames") != ev["webcam_frames"]:
            rep.warnings.append(
                f"webcam.mp4 has {wv.get('frames')} frames, events.parquet {ev['webcam_frames']}"
            )
    elif thresholds.require_webcam:
        rep.problems.append("missing webcam.mp4 (require_webcam)")
    if rep.stats["audio"] is None and thresholds.require_audio:
        rep.problems.append("missing audio.wav (require_audio)")

    if duplicates != rep.stats["padded_frames"]:
        rep.warnings.append(
            f"metadata padded_frames={rep.stats['padded_frames']} but {duplicates} duplicate rows"
        )
    if drop_rate > thresholds.max_drop_rate:
        rep.warnings.append(f"drop rate {drop_rate:.4f} > {thresholds.max_drop_rate}")
    if jitter > thresholds.max_capture_jitter_ms:
        rep.warnings.append(
            f"capture jitter {jitter:.2f} ms > {thresholds.max_capture_jitter_ms} ms"
        )
    lag95 = rep.stats["timing"]["capture_lag_ms_p95"]
    if lag95 is not None and lag95 > thresholds.max_capture_lag_ms:
        rep.warnings.append(f"capture lag p95 {lag95} ms > {thresholds.max_capture_lag_ms} ms")
    if mismatches:
        rep.warnings.append(f"{mismatches} input events' frame_ref disagree with their t_ns")
    if not math.isclose(duration, (meta["end_t_ns"] - meta["start_t_ns"]) / 1e9, rel_tol=0.01):
        rep.warnings.append("duration_s disagrees with end_t_ns - start_t_ns")
    return rep
