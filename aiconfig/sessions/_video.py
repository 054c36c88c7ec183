"""Probing a session video without decoding it (PyAV, imported when called)."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

__all__ = ["VideoInfo", "probe_video"]


@dataclass(slots=True)
class VideoInfo:
    """Packets of the first video stream: count, size, codec, PTS = index, keyframe spacing."""

    frames: int = 0
    width: int = 0
    height: int = 0
    codec: str | None = None
    pts_ok: bool = True
    keyframes: int = 0
    keyframe_gap_max: int = 0
    has_b_frames: bool = False
    decodable: bool = False
    problems: list[str] = field(default_factory=list)


def probe_video(path: Path, fps: float, *, decode_first: bool = False) -> VideoInfo:
    """Demux ``path`` (no decoding, except the first frame when ``decode_first``): a corrupt or
    truncated file is a problem in :attr:`VideoInfo.problems`, never an exception."""
    import av

    info = VideoInfo()
    try:
        container: Any = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        info.problems.append(f"{path.name}: cannot open ({exc})")
        return info
    try:
        if not container.streams.video:
            info.problems.append(f"{path.name}: no video stream")
            return info
        stream = container.streams.video[0]
        stream.thread_count = 1
        ctx = stream.codec_context
        info.width, info.height, info.codec = int(ctx.width), int(ctx.height), ctx.name
        info.has_b_frames = bool(getattr(ctx, "has_b_frames", 0))
        rate = Fraction(fps).limit_denominator(1001)
        last_key = 0
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.pts is None:
                    continue
                if Fraction(packet.pts) * packet.time_base * rate != info.frames:
                    info.pts_ok = False
                if packet.is_keyframe:
                    info.keyframes += 1
                    info.keyframe_gap_max = max(info.keyframe_gap_max, info.frames - last_key)
                    last_key = info.frames
                if decode_first and not info.decodable:
                    info.decodable = bool(packet.decode())
                info.frames += 1
        except (av.error.FFmpegError, OSError) as exc:
            info.problems.append(f"{path.name}: truncated after {info.frames} frames ({exc})")
        info.keyframe_gap_max = max(info.keyframe_gap_max, info.frames - last_key)
    finally:
        container.close()
    return info
