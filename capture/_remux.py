"""Keeping the readable part of a damaged MP4: shared by recover (a torn last fragment) and
finalize (during a recovery the video keeps only the frames that have an event row)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av

from aiconfig._files import atomic_path

from ._constants import MP4_MOVFLAGS

__all__ = ["count_readable", "remux_readable"]


def _readable_packets(src: Any, stream: Any) -> Iterator[Any]:
    """The packets of ``stream`` up to the first one that cannot be read (a torn fragment)."""
    try:
        for packet in src.demux(stream):
            if packet.size == 0 or packet.dts is None:
                continue
            yield packet
    except (av.error.FFmpegError, ValueError):
        return  # the torn last fragment, or damage: keep what came before


def count_readable(path: Path) -> int:
    """How many packets :func:`remux_readable` would keep (one demux pass, nothing written):
    a torn fragmented MP4 cannot be probed as a whole, but its packets can be counted."""
    try:
        src: Any = av.open(str(path))
    except (av.error.FFmpegError, OSError):
        return 0
    try:
        if not src.streams.video:
            return 0
        return sum(1 for _ in _readable_packets(src, src.streams.video[0]))
    finally:
        src.close()


def remux_readable(path: Path, limit: int | None = None) -> int:
    """Rewrite ``path`` with only its readable packets (the first ``limit`` of them: without
    B-frames decode order is frame order); returns how many were kept."""
    kept = 0
    try:
        src: Any = av.open(str(path))
    except (av.error.FFmpegError, OSError):
        return 0  # nothing readable; keep the file as evidence, validation will say so
    try:
        if not src.streams.video:
            return 0
        with atomic_path(path) as tmp:
            in_stream = src.streams.video[0]
            dst: Any = av.open(str(tmp), "w", format="mp4", options={"movflags": MP4_MOVFLAGS})
            try:
                out_stream = dst.add_stream_from_template(in_stream)
                try:
                    for packet in _readable_packets(src, in_stream):
                        if limit is not None and kept >= limit:
                            break
                        packet.stream = out_stream
                        dst.mux(packet)
                        kept += 1
                except (av.error.FFmpegError, ValueError):
                    pass  # a packet the muxer refuses: keep what came before
            finally:
                dst.close()
    finally:
        src.close()
    return kept
