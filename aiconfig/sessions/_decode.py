"""Decoding session frames by index, fast (PyAV and numpy, imported when used).

Frames are addressed by index: the recorder writes PTS = frame index in a 1/fps time base, so
frame ``i`` is the decoded frame whose PTS maps to ``i`` -- never "the nearest frame within a
tolerance". A decoded frame whose index is not the one expected raises :class:`SessionError`.

:class:`FrameReader` keeps, per process (each DataLoader worker gets its own after the fork):

* a few open containers, each with its decoder positioned somewhere in the video: a request at
  or after that position, before the next keyframe that would be cheaper to seek to, is served
  by decoding forward (no seek);
* otherwise a seek to the keyframe at or before the frame, known from the recorder's keyframe
  interval (``video.gop_frames``): frame ``k * gop`` is a keyframe, so no frame is decoded twice
  to find one;
* a bounded LRU cache of resized frames (bytes, not entries), so the ``frame_stack`` frames of
  neighbouring samples are decoded once.

:func:`iter_clip` is the sequential path: one seek, then every frame of a clip in order.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from .._errors import SessionError

__all__ = ["FrameReader", "iter_clip", "to_array"]

_INHERITED: list[Any] = []  # decoders a forked worker inherited (see FrameReader._container)
_INTERPOLATION = "AREA"  # swscale's area average: the right filter for downscaling


_LOCAL = threading.local()  # one reformatter per thread and process (see to_array)


def to_array(frame: Any, size: tuple[int, int]) -> Any:
    """A decoded ``av.VideoFrame`` as uint8 ``[3, H, W]`` at ``size`` (width, height).

    The same pixels as ``frame.to_ndarray(width=, height=, format="rgb24",
    interpolation="AREA")``, at well under half its cost: ``VideoFrame.reformat`` builds a new
    swscale context (filter coefficients included) for every frame, while one
    ``VideoReformatter`` kept per thread lets swscale reuse its cached context as long as the
    source format and size stay the same.
    """
    import numpy as np

    pid = os.getpid()
    if getattr(_LOCAL, "pid", None) != pid:
        # A forked DataLoader worker makes its own: the parent's context may hold swscale
        # worker threads that do not exist in the child (using it would wait on them forever),
        # so it is kept, unused, like the decoders a worker inherits.
        from av.video.reformatter import VideoReformatter

        if getattr(_LOCAL, "reformatter", None) is not None:
            _INHERITED.append(_LOCAL.reformatter)
        _LOCAL.reformatter, _LOCAL.pid = VideoReformatter(), pid
    reformatter = _LOCAL.reformatter
    w, h = size
    rgb = reformatter.reformat(
        frame, width=w, height=h, format="rgb24", interpolation=_INTERPOLATION
    )
    return np.ascontiguousarray(rgb.to_ndarray().transpose(2, 0, 1))


@dataclass
class _Open:
    path: Path
    container: Any
    stream: Any
    fps: Fraction
    frames: Iterator[Any] | None = None
    next_index: int = 0  # index of the frame ``frames`` yields next
    last: int = -1

    def index_of(self, frame: Any) -> int:
        if frame.pts is None:
            return self.last + 1
        index: int = round(Fraction(frame.pts) * self.stream.time_base * self.fps)
        return index

    def seek(self, index: int) -> None:
        pts = int(Fraction(index) / self.fps / self.stream.time_base)
        self.container.seek(pts, stream=self.stream, backward=True, any_frame=False)
        self.frames = self.container.decode(self.stream)
        self.next_index = -1  # unknown until the first frame comes out

    def next(self) -> tuple[int, Any]:
        if self.frames is None:
            self.frames = self.container.decode(self.stream)
        try:
            frame = next(self.frames)
        except StopIteration:
            self.frames = None
            raise
        except Exception as exc:  # noqa: BLE001 - av.error.* and OSError: one message
            self.frames = None
            raise SessionError(
                f"cannot decode after frame {self.last} ({exc})",
                file=str(self.path),
                hint="the video is damaged; validate the session",
            ) from None
        index = self.index_of(frame)
        self.last = index
        self.next_index = index + 1
        return index, frame


def _open(path: Path, fps: float) -> _Open:
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise SessionError(f"cannot open ({exc})", file=str(path)) from None
    if not container.streams.video:
        container.close()
        raise SessionError("no video stream", file=str(path))
    stream = container.streams.video[0]
    stream.thread_type = "SLICE"
    stream.thread_count = 1  # one core per worker: parallelism comes from DataLoader workers
    return _Open(path, container, stream, Fraction(fps).limit_denominator(1001))


@dataclass
class FrameReader:
    """Frames by ``(video, index)``, resized to ``size``; per process, bounded (see module)."""

    size: tuple[int, int]
    cache_bytes: int = 128 << 20
    max_open: int = 8
    _pid: int = field(default=-1, repr=False)
    _open: OrderedDict[Path, _Open] = field(default_factory=OrderedDict, repr=False)
    _cache: OrderedDict[tuple[Path, int], Any] = field(default_factory=OrderedDict, repr=False)
    _cached: int = field(default=0, repr=False)
    decoded: int = 0
    seeks: int = 0
    hits: int = 0

    def _container(self, path: Path, fps: float) -> _Open:
        if self._pid != os.getpid():  # a forked worker: never share the parent's decoders
            # ...nor free them here: closing a container opened in the parent can block in the
            # child on a lock FFmpeg held at fork time. They are kept, unused, until exit.
            _INHERITED.append(self._open)
            self._open, self._cache, self._cached, self._pid = (
                OrderedDict(),
                OrderedDict(),
                0,
                os.getpid(),
            )
        if path in self._open:
            self._open.move_to_end(path)
            return self._open[path]
        opened = _open(path, fps)
        self._open[path] = opened
        while len(self._open) > self.max_open:
            _, old = self._open.popitem(last=False)
            old.container.close()
        return opened

    def _put(self, key: tuple[Path, int], array: Any) -> None:
        if key in self._cache:
            return
        self._cache[key] = array
        self._cached += array.nbytes
        while self._cached > self.cache_bytes and self._cache:
            _, old = self._cache.popitem(last=False)
            self._cached -= old.nbytes

    @property
    def cached_bytes(self) -> int:
        return self._cached

    def frames(self, path: Path, fps: float, gop: int, indices: list[int]) -> list[Any]:
        """The frames ``indices`` of ``path`` (uint8 ``[3, H, W]`` each)."""
        out: dict[int, Any] = {}
        for index in sorted(set(indices)):
            hit = self._cache.get((path, index))
            if hit is not None:
                self._cache.move_to_end((path, index))
                self.hits += 1
                out[index] = hit
                continue
            out[index] = self._decode_to(path, fps, max(gop, 1), index)
        return [out[i] for i in indices]

    def _decode_to(self, path: Path, fps: float, gop: int, index: int) -> Any:
        s = self._container(path, fps)
        keyframe = index // gop * gop
        if not (s.frames is not None and keyframe <= s.next_index <= index):
            s.seek(keyframe)  # cheaper than decoding forward across a keyframe
            self.seeks += 1
        while True:
            try:
                got, frame = s.next()
            except StopIteration:
                raise SessionError(
                    f"frame {index} is past the end of the video (last decoded: {s.last})",
                    file=str(path),
                    hint="the video is shorter than its frame rows; validate the session",
                ) from None
            self.decoded += 1
            if got > index:
                raise SessionError(
                    f"frame {index} is missing: the decoder went from {got - 1} to {got}",
                    file=str(path),
                    hint="PTS must equal the frame index; validate the session",
                )
            array = to_array(frame, self.size)
            self._put((path, got), array)
            if got == index:
                return array

    def close(self) -> None:
        for s in self._open.values():
            s.container.close()
        self._open.clear()
        self._cache.clear()
        self._cached = 0


def iter_clip(
    path: Path, fps: float, start: int, stop: int, size: tuple[int, int]
) -> Iterator[tuple[int, Any]]:
    """``(index, [3, H, W] uint8)`` for frames ``start..stop-1``, decoded in order after one
    seek to the keyframe at or before ``start`` (the caller aligns ``start`` to one)."""
    s = _open(path, fps)
    try:
        if start > 0:
            s.seek(start)
        expected = start
        while expected < stop:
            try:
                got, frame = s.next()
            except StopIteration:
                raise SessionError(
                    f"frame {expected} is past the end of the video",
                    file=str(path),
                    hint="the video is shorter than its frame rows; validate the session",
                ) from None
            if got < expected:
                continue
            if got > expected:
                raise SessionError(
                    f"frame {expected} is missing (next decoded: {got})",
                    file=str(path),
                    hint="PTS must equal the frame index; validate the session",
                )
            yield got, to_array(frame, size)
            expected += 1
    finally:
        s.container.close()
