"""Keeping the readable part of a damaged MP4: shared by finalize (events that end before the
video) and recover (a torn last fragment)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av

from aiconfig._files import atomic_path

from ._constants import MP4_MOVFLAGS

__all__ = ["remux_readable"]


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
                    for packet in src.demux(in_stream):
                        if packet.size == 0 or packet.dts is None:
                            continue
                        if limit is not None and kept >= limit:
                            break
                        packet.stream = out_stream
                        dst.mux(packet)
                        kept += 1
                except (av.error.FFmpegError, ValueError):
                    pass  # the torn last fragment, or damage: keep what came before
            finally:
                dst.close()
    finally:
        src.close()
    return kept
