"""``capture validate SESSION``: check a session's files against each other and the contract.

Checks: required files exist; ``events.parquet`` has exactly the seed's schema; frame rows are
numbered 0..n-1 with presentation times on the fps grid and non-decreasing timestamps per stream;
the video's frame count, size and PTS (= frame index) agree with the frame rows and metadata;
every input ``frame_ref`` points at an existing frame; metadata counts agree with the rows; the
manifest's sha256 digests match the files.
"""

from __future__ import annotations

import json
import os
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
    """Raise ConfigFileError naming the links when ``session`` holds any (see above)."""
    links = symlinked_members(session)
    if links:
        from aiconfig import ConfigFileError

        raise ConfigFileError(
            f"session members are symbolic links: {', '.join(links)}; refusing to read or "
            "write through them",
            file=str(session),
            hint="a recorder never writes links: remove them (someone planted them) and retry",
        )


MAX_JSON_BYTES = 16 << 20  # metadata.json / manifest.json of a session: a few KiB in practice


def load_json(path: Path) -> Any:
    """A session JSON file, read with a size cap; ValueError for anything that is not one.

    Refuses symlinks (a session's members are its own files), non-regular files, files over
    :data:`MAX_JSON_BYTES` and nesting that would make ``json`` recurse too deep.
    """
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_JSON_BYTES:
            raise ValueError(f"{path.name} is not a regular file under {MAX_JSON_BYTES} bytes")
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(MAX_JSON_BYTES + 1)
    finally:
        os.close(fd)
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError(f"{path.name} is nested too deeply") from None


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


class _Unreadable(Exception):
    pass


_BATCH_ROWS = 65_536  # rows decoded at a time: memory stays flat whatever the row count


@dataclass
class _EventScan:
    """What validation needs from ``events.parquet``, gathered one record batch at a time."""

    frames: int = 0
    webcam_frames: int = 0
    dups: int = 0
    schema_differs: bool = False
    problems: list[str] = field(default_factory=list)
    input_rows: list[Any] = field(default_factory=list)  # numpy arrays: row index of inputs
    input_refs: list[Any] = field(default_factory=list)  # numpy arrays: their frame_ref

    def first_bad_input_ref(self, n_frames: int) -> tuple[int, Any] | None:
        import numpy as np

        if not self.input_rows:
            return None
        rows = np.concatenate(self.input_rows)
        refs = np.concatenate(self.input_refs)
        bad = np.isnan(refs) | (refs < 0) | (refs >= n_frames)
        if not bad.any():
            return None
        first = int(np.argmax(bad))
        ref = refs[first]
        return int(rows[first]), None if np.isnan(ref) else int(ref)


def _scan_events(path: Path, fps: int, t0: Any) -> _EventScan:
    """Stream ``events.parquet`` in record batches (never the whole table in memory)."""
    import numpy as np
    import pyarrow.compute as pc

    scan = _EventScan()
    try:
        pf = pq.ParquetFile(str(path))
    except Exception as exc:  # noqa: BLE001 - any pyarrow failure means an unreadable file
        raise _Unreadable(f"{EVENTS_FILE} is unreadable ({exc})") from None
    if not pf.schema_arrow.equals(event_schema(), check_metadata=False):
        scan.problems.append(f"{EVENTS_FILE} schema differs from the contract: {pf.schema_arrow}")
        scan.schema_differs = True
        return scan
    cols = ["t_ns", "event_type", "stream", "frame_ref", "is_duplicate"]
    last_t: dict[str, int] = {}
    unordered: set[str] = set()
    off_grid = 0
    numbered = True
    row0 = 0
    try:
        for batch in pf.iter_batches(batch_size=_BATCH_ROWS, columns=cols, use_threads=False):
            t = batch.column("t_ns").to_numpy(zero_copy_only=False)
            stream = batch.column("stream")
            kind = batch.column("event_type")
            is_frame = pc.fill_null(pc.equal(kind, "frame"), False)
            screen = pc.and_(is_frame, pc.fill_null(pc.equal(stream, "screen"), False))
            screen_np = screen.to_numpy(zero_copy_only=False)
            refs = batch.column("frame_ref").to_numpy(zero_copy_only=False).astype("float64")
            n = int(screen_np.sum())
            if n:
                expected = np.arange(scan.frames, scan.frames + n, dtype="float64")
                if numbered and not np.array_equal(refs[screen_np], expected):
                    numbered = False
                if t0 is not None:
                    idx = np.arange(scan.frames, scan.frames + n, dtype="int64")
                    grid = int(t0) + (idx * 1_000_000_000) // fps
                    off_grid += int((t[screen_np] != grid).sum())
                dup = batch.column("is_duplicate").to_numpy(zero_copy_only=False)[screen_np]
                scan.dups += int(np.asarray(dup, dtype=bool).sum())
            scan.frames += n
            webcam = pc.and_(is_frame, pc.fill_null(pc.equal(stream, "webcam"), False))
            scan.webcam_frames += int(pc.sum(webcam).as_py() or 0)
            names = stream.to_numpy(zero_copy_only=False)
            for name in set(names.tolist()):
                here = t[names == name]
                if name in unordered or not len(here):
                    continue
                if (np.diff(here) < 0).any() or (name in last_t and here[0] < last_t[name]):
                    unordered.add(name)
                last_t[name] = int(here[-1])
            inp = pc.fill_null(pc.equal(stream, "input"), False).to_numpy(zero_copy_only=False)
            if inp.any():
                scan.input_rows.append(np.nonzero(inp)[0] + row0)
                scan.input_refs.append(refs[inp])
            row0 += batch.num_rows
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several unrelated types here
        raise _Unreadable(f"{EVENTS_FILE} is unreadable ({exc})") from None
    if not numbered:
        scan.problems.append("screen frame rows are not numbered 0..n-1 in order")
    if off_grid:
        scan.problems.append(f"{off_grid} frame rows have t_ns off the {fps} fps grid")
    for name in sorted(unordered, key=str):
        scan.problems.append(f"t_ns is not monotonic in stream {name!r}")
    return scan


def validate_session(session: Path) -> list[str]:
    """Every problem found in ``session`` (empty when it is valid)."""
    problems: list[str] = []
    links = symlinked_members(session)
    if links:
        return [f"session members are symbolic links (refused): {', '.join(links)}"]
    try:
        status = load_json(session / MANIFEST_FILE).get("status")
    except (OSError, ValueError, AttributeError):
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
        meta = load_json(session / METADATA_FILE)
        manifest = load_json(session / MANIFEST_FILE)
    except (OSError, ValueError) as exc:
        return [f"metadata or manifest is not valid JSON ({exc})"]
    if not isinstance(meta, dict) or not isinstance(manifest, dict):
        return ["metadata or manifest is not a JSON object"]
    if manifest.get("status") not in ("complete", "recovered"):
        problems.append(
            f"manifest status is {manifest.get('status')!r}; run 'capture recover {session}'"
        )
    fps = int(meta.get("fps", 0))
    if fps <= 0:
        return [*problems, "metadata.fps is missing or not positive"]
    try:
        scan = _scan_events(session / EVENTS_FILE, fps, meta.get("start_monotonic_ns"))
    except _Unreadable as exc:
        return [*problems, str(exc)]
    problems.extend(scan.problems)
    if scan.schema_differs:
        return problems
    n_frames = scan.frames
    counted = int(meta.get("padded_frames", 0)) + int(meta.get("dropped_frames", 0))
    if scan.dups != counted:
        problems.append(
            f"{scan.dups} duplicate frame rows but metadata counts {counted} padded+dropped"
        )
    bad_ref = scan.first_bad_input_ref(n_frames)
    if bad_ref is not None:
        row, ref = bad_ref
        problems.append(f"input row {row} has frame_ref {ref} outside 0..{n_frames - 1}")
    video = probe_video(session / FRAMES_FILE, fps)
    problems.extend(video.problems)
    if video.frames != n_frames:
        problems.append(f"video has {video.frames} frames but events have {n_frames}")
    if not video.pts_ok:
        problems.append("video PTS are not the frame indices")
    if video.has_b_frames:
        problems.append("video uses B-frames")
    if [video.width, video.height] != list(meta.get("screen_resolution", [])):
        problems.append(
            f"video is {video.width}x{video.height} but metadata.screen_resolution is "
            f"{meta.get('screen_resolution')}"
        )
    webcam_rows = scan.webcam_frames
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
    if meta.get("frame_count") != n_frames:
        problems.append(f"metadata.frame_count {meta.get('frame_count')} != {n_frames}")
    for artifact in manifest.get("artifacts", []):
        path = session / artifact["path"]
        if not path.is_file():
            problems.append(f"manifest lists {artifact['path']}, which is missing")
        elif sha256_file(path).sha256 != artifact["sha256"]:
            problems.append(f"{artifact['path']} does not match its sha256 in the manifest")
    return problems
