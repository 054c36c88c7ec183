"""H.264 writer on PyAV: yuv420p, no B-frames, a keyframe every <= 1 s, fragmented MP4.

Fragmented MP4 (``frag_keyframe+empty_moov+default_base_moof``) writes a self-contained
``moof``/``mdat`` fragment at every keyframe, so a process killed mid-recording leaves a file
whose complete fragments all decode (a plain MP4 killed mid-write keeps nothing: its index is
written at close). PTS is the frame index in a ``1/fps`` time base, exactly.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from aiconfig import CaptureDeviceError

from ._constants import MP4_MOVFLAGS

__all__ = ["VideoWriter", "even_size"]


def even_size(width: int, height: int) -> tuple[int, int]:
    """yuv420p needs even dimensions: the largest even size that fits."""
    return width - width % 2, height - height % 2


class VideoWriter:
    """Encode I420 (yuv420p) numpy frames to a fragmented MP4. Not thread-safe: one owner."""

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: int,
        *,
        preset: str = "superfast",
        crf: int = 23,
        keyframe_interval_s: float = 1.0,
        threads: int = 0,
    ) -> None:
        if width % 2 or height % 2:
            raise CaptureDeviceError(
                f"{path.name}: video size {width}x{height} is odd; yuv420p needs even sizes"
            )
        self.path = path
        self.width = width
        self.height = height
        self.fps = fps
        self.gop = max(1, int(fps * keyframe_interval_s))
        self.frames_written = 0
        self.packets_written = 0
        self._closed = False
        try:
            self._container: Any = av.open(
                str(path),
                mode="w",
                format="mp4",
                # flush_packets: hand every finished fragment to the OS at once, so a SIGKILL
                # keeps it (the I/O buffer would otherwise hold the first ~32 KiB back).
                options={"movflags": MP4_MOVFLAGS, "flush_packets": "1"},
            )
        except OSError as exc:
            raise CaptureDeviceError(
                f"{path}: cannot create the video file ({exc}); check the output directory"
            ) from exc
        stream: Any = self._container.add_stream("libx264", rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        ctx = stream.codec_context
        ctx.time_base = Fraction(1, fps)
        ctx.framerate = Fraction(fps, 1)
        ctx.gop_size = self.gop
        ctx.max_b_frames = 0
        if threads > 0:
            ctx.thread_count = threads
        ctx.options = {
            "preset": preset,
            "crf": str(crf),
            "x264-params": (
                f"keyint={self.gop}:min-keyint={self.gop}:scenecut=0:bframes=0:rc-lookahead=0"
                ":sync-lookahead=0"
            ),
        }
        self._stream = stream

    def write_i420(self, i420: Any, index: int) -> None:
        """Encode one frame (an ``(h*3/2, w)`` uint8 I420 array) at PTS ``index``."""
        frame = av.VideoFrame.from_ndarray(i420, format="yuv420p")
        frame.pts = index
        frame.time_base = Fraction(1, self.fps)
        self._mux(self._stream.encode(frame))
        self.frames_written += 1

    def _mux(self, packets: Any) -> None:
        for packet in packets:
            self._container.mux(packet)
            self.packets_written += 1

    def close(self) -> None:
        """Flush the encoder and finish the file. Safe to call twice. A failed write (a full
        disk) raises once, after the container has been released."""
        if self._closed:
            return
        self._closed = True
        error: BaseException | None = None
        try:
            self._mux(self._stream.encode(None))
        except (OSError, av.error.FFmpegError) as exc:
            error = exc
        try:
            self._container.close()
        except (OSError, av.error.FFmpegError) as exc:
            error = error or exc
        if error is not None:
            raise error
