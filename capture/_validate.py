"""``capture validate SESSION``: check a session's files against each other and the contract.

Checks: required files exist; ``events.parquet`` has exactly the seed's schema; frame rows are
numbered 0..n-1 with presentation times on the fps grid and non-decreasing timestamps per stream;
the video's frame count, size and PTS (= frame index) agree with the frame rows and metadata;
every input ``frame_ref`` points at an existing frame; metadata counts agree with the rows; the
manifest's sha256 digests match the files.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pyarrow.parquet as pq

from aiconfig._files import sha256_file

from ._constants import EVENTS_FILE, FRAMES_FILE, MANIFEST_FILE, METADATA_FILE, WEBCAM_FILE
from ._events import event_schema

__all__ = ["VideoInfo", "probe_video", "validate_session"]


@dataclass(slots=True)
class VideoInfo:
    frames: int = 0
    width: int = 0
    height: int = 0
    pts_ok: bool = True
    keyframe_gap_max: int = 0
    has_b_frames: bool = False
    problems: list[str] = field(default_factory=list)


def probe_video(path: Path, fps: int) -> VideoInfo:
    """Count packets, and check PTS == index and keyframe spacing, without decoding."""
    info = VideoInfo()
    try:
        container: Any = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        info.problems.append(f"{path.name}: cannot open ({exc})")
        return info
    try:
        stream = container.streams.video[0]
        info.width = int(stream.codec_context.width)
        info.height = int(stream.codec_context.height)
        info.has_b_frames = bool(getattr(stream.codec_context, "has_b_frames", 0))
        last_key = 0
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.pts is None:
                    continue
                index = Fraction(packet.pts) * packet.time_base * fps
                if index != info.frames:
                    info.pts_ok = False
                if packet.is_keyframe:
                    info.keyframe_gap_max = max(info.keyframe_gap_max, info.frames - last_key)
                    last_key = info.frames
                info.frames += 1
        except (av.error.FFmpegError, OSError) as exc:
            info.problems.append(f"{path.name}: truncated after {info.frames} frames ({exc})")
        info.keyframe_gap_max = max(info.keyframe_gap_max, info.frames - last_key)
    finally:
        container.close()
    return info


def validate_session(session: Path) -> list[str]:
    """Every problem found in ``session`` (empty when it is valid)."""
    problems: list[str] = []
    try:
        status = json.loads((session / MANIFEST_FILE).read_text()).get("status")
    except (OSError, ValueError):
        status = None
    if status == "recording":
        return [
            "the session was not finalized (recorder killed or still running); "
            f"run 'python -m capture recover {session}'"
        ]
    for name in (FRAMES_FILE, EVENTS_FILE, METADATA_FILE, MANIFEST_FILE):
        if not (session / name).is_file():
            problems.append(f"{name} is missing")
    if problems:
        return problems
    try:
        meta = json.loads((session / METADATA_FILE).read_text())
        manifest = json.loads((session / MANIFEST_FILE).read_text())
    except (OSError, ValueError) as exc:
        return [f"metadata or manifest is not valid JSON ({exc})"]
    if manifest.get("status") not in ("complete", "recovered"):
        problems.append(
            f"manifest status is {manifest.get('status')!r}; run 'capture recover {session}'"
        )
    fps = int(meta.get("fps", 0))
    if fps <= 0:
        return [*problems, "metadata.fps is missing or not positive"]
    try:
        table = pq.read_table(str(session / EVENTS_FILE))
    except Exception as exc:  # noqa: BLE001 - any pyarrow failure means an unreadable file
        return [*problems, f"{EVENTS_FILE} is unreadable ({exc})"]
    if not table.schema.equals(event_schema(), check_metadata=False):
        problems.append(f"{EVENTS_FILE} schema differs from the contract: {table.schema}")
        return problems
    rows = table.to_pydict()
    frames = [
        i
        for i, (kind, stream) in enumerate(zip(rows["event_type"], rows["stream"], strict=True))
        if kind == "frame" and stream == "screen"
    ]
    refs = [rows["frame_ref"][i] for i in frames]
    if refs != list(range(len(refs))):
        problems.append("screen frame rows are not numbered 0..n-1 in order")
    t0 = meta.get("start_monotonic_ns")
    if frames and t0 is not None:
        off_grid = sum(
            1 for n, i in enumerate(frames) if rows["t_ns"][i] != t0 + (n * 1_000_000_000) // fps
        )
        if off_grid:
            problems.append(f"{off_grid} frame rows have t_ns off the {fps} fps grid")
    for stream in set(rows["stream"]):
        times = [t for t, s in zip(rows["t_ns"], rows["stream"], strict=True) if s == stream]
        if any(b < a for a, b in itertools.pairwise(times)):
            problems.append(f"t_ns is not monotonic in stream {stream!r}")
    dups = sum(1 for i in frames if rows["is_duplicate"][i])
    counted = int(meta.get("padded_frames", 0)) + int(meta.get("dropped_frames", 0))
    if dups != counted:
        problems.append(f"{dups} duplicate frame rows but metadata counts {counted} padded+dropped")
    n_inputs = 0
    for i, stream in enumerate(rows["stream"]):
        if stream != "input":
            continue
        n_inputs += 1
        ref = rows["frame_ref"][i]
        if ref is None or not 0 <= ref < len(frames):
            problems.append(f"input row {i} has frame_ref {ref} outside 0..{len(frames) - 1}")
            break
    video = probe_video(session / FRAMES_FILE, fps)
    problems.extend(video.problems)
    if video.frames != len(frames):
        problems.append(f"video has {video.frames} frames but events have {len(frames)}")
    if not video.pts_ok:
        problems.append("video PTS are not the frame indices")
    if video.has_b_frames:
        problems.append("video uses B-frames")
    if [video.width, video.height] != list(meta.get("screen_resolution", [])):
        problems.append(
            f"video is {video.width}x{video.height} but metadata.screen_resolution is "
            f"{meta.get('screen_resolution')}"
        )
    webcam_rows = sum(
        1
        for kind, stream in zip(rows["event_type"], rows["stream"], strict=True)
        if kind == "frame" and stream == "webcam"
    )
    if (session / WEBCAM_FILE).is_file():
        cam_fps = int((meta.get("webcam_info") or {}).get("fps") or fps)
        cam = probe_video(session / WEBCAM_FILE, cam_fps)
        problems.extend(cam.problems)
        if cam.frames != webcam_rows:
            problems.append(f"webcam video has {cam.frames} frames but events have {webcam_rows}")
        if not cam.pts_ok:
            problems.append("webcam video PTS are not the frame indices")
    elif webcam_rows:
        problems.append(f"{webcam_rows} webcam frame rows but no {WEBCAM_FILE}")
    if meta.get("frame_count") != len(frames):
        problems.append(f"metadata.frame_count {meta.get('frame_count')} != {len(frames)}")
    for artifact in manifest.get("artifacts", []):
        path = session / artifact["path"]
        if not path.is_file():
            problems.append(f"manifest lists {artifact['path']}, which is missing")
        elif sha256_file(path).sha256 != artifact["sha256"]:
            problems.append(f"{artifact['path']} does not match its sha256 in the manifest")
    return problems
