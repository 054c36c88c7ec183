"""Optional webcam: a PyAV input device (v4l2 / avfoundation / dshow) to ``webcam.mp4``.

The camera pushes frames at its own pace; each is stamped on arrival (monotonic clock) and placed
on the webcam's own timeline at its fps, sharing ``t0`` with the screen: a slot no frame arrived
for repeats the previous picture (padded), a second frame in the same slot is dropped. Rows go to
the event stream with ``stream = "webcam"``. ``webcam.mp4`` uses the same fragmented H.264 writer
as the screen, so it has the same crash safety.

A device written ``lavfi:GRAPH`` (e.g. ``lavfi:testsrc2=size=1280x720:rate=30,realtime``) opens a
libavfilter source through the very same code path: that is how tests stand in for a camera.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from aiconfig import CaptureDeviceError

from ._events import EventJournal, frame_row
from ._screen_recorder import lower_priority
from ._timeline import FrameClock
from ._video_writer import VideoWriter, even_size

__all__ = ["WebcamRecorder", "open_camera"]


def open_camera(device: int | str, resolution: tuple[int, int], fps: int) -> Any:
    """Open the platform's camera input (or a ``lavfi:`` stand-in); one-line error if absent."""
    w, h = resolution
    if isinstance(device, str) and device.startswith("lavfi:"):
        url, fmt, options = device[len("lavfi:") :], "lavfi", {}
    else:
        from .platforms import webcam_input

        url, fmt = webcam_input(device)
        options = {"video_size": f"{w}x{h}", "framerate": str(fps)}
    try:
        return av.open(url, format=fmt, options=options, timeout=5.0)
    except (av.error.FFmpegError, OSError) as exc:
        raise CaptureDeviceError(
            f"webcam {device!r} cannot be opened ({exc}); check --webcam-device (e.g. ls "
            "/dev/video*) and that no other program holds the camera"
        ) from exc


@dataclass(slots=True)
class WebcamStats:
    frames: int = 0
    fresh: int = 0
    padded: int = 0
    dropped: int = 0
    error: str | None = None
    failed_at_ns: int | None = None


class WebcamRecorder:
    """Reads a camera on one thread and encodes on another (bounded queue between)."""

    def __init__(
        self,
        container: Any,
        path: Path,
        journal: EventJournal,
        *,
        device: int | str,
        fps: int,
        session_id: str,
        preset: str,
        threads: int = 0,
        on_write_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        stream = container.streams.video[0]
        self._on_write_error = on_write_error
        self.width, self.height = even_size(stream.codec_context.width, stream.codec_context.height)
        self.device = device
        self.fps = fps
        self.stats = WebcamStats()
        self._container = container
        self._journal = journal
        self._session_id = session_id
        self._writer = VideoWriter(
            path, self.width, self.height, fps, preset=preset, threads=threads
        )
        self._q: queue.Queue[Any] = queue.Queue(maxsize=4)
        self._stop = threading.Event()
        self._clock: FrameClock | None = None
        self._end_index: int | None = None
        self._reader = threading.Thread(target=self._read_loop, name="capture-webcam", daemon=True)
        self._encoder = threading.Thread(target=self._encode_loop, name="capture-webcam-enc")

    def start(self, t0_ns: int) -> None:
        self._clock = FrameClock(t0_ns, self.fps)
        self._encoder.start()
        self._reader.start()

    def set_end(self, end_ns: int) -> None:
        """No webcam frame at or after ``end_ns`` (the screen video's end) is recorded."""
        if self._clock is not None:
            self._end_index = max(0, self._clock.index_at(end_ns - 1) + 1)
        self._stop.set()

    def stop(self) -> None:
        """Stops both threads; safe before ``start`` (a session that never began recording)."""
        self._stop.set()
        if self._reader.is_alive():
            self._reader.join(timeout=10)
        if self._encoder.is_alive():
            self._q.put(None)
            self._encoder.join()
        try:
            self._writer.close()
        except OSError as exc:  # a full disk: what was written stays
            self._write_failed(exc)
        self._container.close()

    def _write_failed(self, exc: BaseException) -> None:
        if self.stats.error is None:
            self.stats.error = f"webcam write failed: {exc}"
            self.stats.failed_at_ns = time.monotonic_ns()
        if self._on_write_error is not None:
            self._on_write_error(exc)

    def _row(self, index: int, t_capture: int | None, dup: str | None) -> None:
        clock = self._clock or FrameClock(0, self.fps)
        self._journal.add(
            frame_row(
                index,
                clock.t_ns(index),
                t_capture,
                dup is not None,
                stream="webcam",
                window_id=None,
                session_id=self._session_id,
                duplicate_of=dup,
            )
        )
        self.stats.frames = index + 1

    def _read_loop(self) -> None:
        clock = self._clock or FrameClock(time.monotonic_ns(), self.fps)
        next_index = 0
        last_capture: int | None = None
        try:
            for frame in self._container.decode(video=0):
                if self._stop.is_set():
                    break
                t_capture = time.monotonic_ns()
                slot = clock.index_at(t_capture)
                if self._end_index is not None:
                    slot = min(slot, self._end_index)
                    if next_index >= self._end_index:
                        break
                if slot < next_index or slot < 0:
                    if slot >= 0:
                        self.stats.dropped += 1
                    continue
                while next_index < slot and last_capture is not None:
                    self._row(next_index, last_capture, "padded")
                    self.stats.padded += 1
                    next_index += 1
                image = frame.reformat(
                    width=self.width, height=self.height, format="yuv420p"
                ).to_ndarray()
                try:
                    self._q.put_nowait((next_index, image))
                except queue.Full:
                    self._row(next_index, last_capture, "dropped")
                    self.stats.dropped += 1
                else:
                    self._row(next_index, t_capture, None)
                    self.stats.fresh += 1
                    last_capture = t_capture
                next_index += 1
        except (av.error.FFmpegError, OSError) as exc:
            self.stats.error = f"webcam read failed: {exc}"
            self.stats.failed_at_ns = time.monotonic_ns()
        finally:
            self._q.put((None, next_index))

    def _encode_loop(self) -> None:
        lower_priority()
        try:
            self._encode()
        except OSError as exc:
            self._write_failed(exc)
            self._stop.set()
            while self._q.get() is not None:  # keep the reader from blocking on a full queue
                pass

    def _encode(self) -> None:
        previous: Any = None
        written = 0
        while True:
            item = self._q.get()
            if item is None:
                return
            index, image = item
            if index is None:
                while previous is not None and written < image:
                    self._writer.write_i420(previous, written)
                    written += 1
                continue
            while previous is not None and written < index:
                self._writer.write_i420(previous, written)
                written += 1
            self._writer.write_i420(image, index)
            previous = image
            written = index + 1

    def info(self) -> dict[str, Any]:
        st = self.stats
        return {
            "device": self.device,
            "resolution": [self.width, self.height],
            "fps": self.fps,
            "file": self._writer.path.name,
            "frames": st.frames,
            "fresh_frames": st.fresh,
            "padded_frames": st.padded,
            "dropped_frames": st.dropped,
            "error": st.error,
            "failed_at_ns": st.failed_at_ns,
        }
