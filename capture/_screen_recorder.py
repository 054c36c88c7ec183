"""Screen video: grab (the platform's grabber: mss, Windows Graphics Capture or ScreenCaptureKit),
convert (OpenCV) and encode (PyAV) in three threads.

The stages are joined by small bounded queues, so memory stays flat however long the session
runs, and a slow stage never blocks the grabber: when the convert queue is full the fresh grab is
dropped and its slot repeats the previous picture (see :mod:`capture._timeline`). The grabber
sleeps until each slot's presentation time, so ``t_capture_ns`` sits within scheduling jitter of
``t_ns``; lateness is judged right before the grab, so the grab time of every fresh frame lies
inside its own slot, and a grab that ends after its slot is dropped (its pixels may be the next
slot's). The clock starts at the first grab: frame 0's ``t_ns`` is its grab time. Before every
grab it re-reads the window's position (following it when it moves, and never grabbing after it
closed: a closed window ends the recording cleanly); every ``GEOMETRY_POLL_S`` it also asks
which window has focus, for the session's trajectories.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ._constants import ENCODER_NICE, FRAME_QUEUE, GEOMETRY_POLL_S
from ._events import EventJournal, frame_row
from ._timeline import FrameClock, FrameStats
from ._video_writer import VideoWriter, even_size
from .platforms import open_grabber
from .windows import Rect, WindowGoneError, open_backend

__all__ = ["ScreenRecorder", "ScreenTarget", "lower_priority"]

_STOP = object()


@dataclass(frozen=True, slots=True)
class ScreenTarget:
    """What to record: a window (``handle``) or, with ``handle=None``, a fixed screen area."""

    handle: int | None
    title: str | None
    rect: Rect


@dataclass(slots=True)
class FocusTracker:
    """Focus intervals in frame indices (the session's ``trajectories``)."""

    segments: list[list[int]] = field(default_factory=list)
    focused: bool = False

    def update(self, focused: bool, frame: int) -> None:
        if focused and not self.focused:
            self.segments.append([frame, frame])
        if focused and self.segments:
            self.segments[-1][1] = frame
        self.focused = focused


def lower_priority(nice: int = ENCODER_NICE) -> None:
    """Let the game, the X server and the input logger run first: the heavy stages (convert,
    encode) of this thread get a higher nice value (Linux: per thread; macOS: the process's
    nice value is per process, so this is skipped there; Windows has none)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


def _drain(q: queue.Queue[Any]) -> None:
    """Discard ``q``'s items up to the grabber's stop marker."""
    while True:
        item = q.get()
        if item is _STOP or (isinstance(item, tuple) and item[0] is _STOP):
            return


class ScreenRecorder:
    """Records one target to ``frames.mp4`` and frame rows to the event journal."""

    def __init__(
        self,
        target: ScreenTarget,
        path: Path,
        journal: EventJournal,
        *,
        fps: int,
        session_id: str,
        window_id: str | None,
        preset: str,
        crf: int,
        keyframe_interval_s: float,
        on_stop: Callable[[str], None],
        max_frames: int | None = None,
        queue_size: int = FRAME_QUEUE,
        threads: int = 0,
        on_write_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.target = target
        self._on_write_error = on_write_error
        self.max_frames = max_frames
        self.fps = fps
        self.session_id = session_id
        self.window_id = window_id
        self.width, self.height = even_size(target.rect.width, target.rect.height)
        self.region: Rect = Rect(target.rect.left, target.rect.top, self.width, self.height)
        self.stats = FrameStats()
        self.focus = FocusTracker()
        self.clock: FrameClock | None = None
        self.started = threading.Event()
        self.grab_done = threading.Event()
        self.stop_reason: str | None = None
        self.window_moves = 0
        self.window_resized = False
        self.window_hidden_frames = 0
        self.grabber_name: str | None = None
        self._hidden = False
        self._grab_end = 0  # slots the grab thread wrote: the encoder fills them all
        self.on_region: Callable[[Rect], None] | None = None
        self._journal = journal
        self._on_stop = on_stop
        self._stop = threading.Event()
        self._convert_q: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._encode_q: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._writer = VideoWriter(
            path,
            self.width,
            self.height,
            fps,
            preset=preset,
            crf=crf,
            keyframe_interval_s=keyframe_interval_s,
            threads=threads,
        )
        self._threads = [
            threading.Thread(target=self._guard(self._grab_loop), name="capture-grab"),
            threading.Thread(target=self._guard(self._convert_loop), name="capture-convert"),
            threading.Thread(target=self._guard(self._encode_loop), name="capture-encode"),
        ]

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self) -> None:
        for thread in self._threads:
            thread.join()
        try:
            self._writer.close()
        except OSError as exc:  # the last fragment could not be written (a full disk)
            if self._on_write_error is None:
                raise
            self._on_write_error(exc)

    @property
    def gop(self) -> int:
        return self._writer.gop

    def _guard(self, body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                body()
            except Exception as exc:  # noqa: BLE001 - a stage failing must stop the others
                name = threading.current_thread().name
                self.stats.errors.append(f"{name}: {exc}")
                if isinstance(exc, OSError) and self._on_write_error is not None:
                    self._on_write_error(exc)  # frames.mp4 could not be written
                self._finish(f"error: {exc}")
                self._stop.set()
                self.started.set()
                # Keep draining this stage's input until the stop marker, so that the stages
                # before it never block on a full queue and join() returns.
                if name == "capture-encode":
                    _drain(self._encode_q)
                elif name == "capture-convert":
                    _drain(self._convert_q)
                    self._encode_q.put(_STOP)

        return run

    def _finish(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            self._on_stop(reason)

    # -- grab ---------------------------------------------------------------------------
    def _grab_loop(self) -> None:
        """The grab thread: frame 0 (which starts the clock), then every slot until stopped.

        The stop reason says how the grabbing ended; however it ended, the stop marker reaches
        the convert stage with the number of slots written (the encoder fills them all).
        """
        backend, screen = self._window_backend()
        try:
            sct = open_grabber(self.target.handle, self.target.title, self.region, fps=self.fps)
            self.grabber_name = sct.name
            try:
                first = self._first_frame(sct, backend, screen)
                if first is not None:
                    self._grab_slots(sct, backend, screen, *first)
            finally:
                sct.close()
        except WindowGoneError:  # the system capture saw the window close
            self._finish("window_closed")
        except Exception as exc:  # noqa: BLE001 - X gone, grab refused: the screen stream fails
            self.stats.errors.append(f"screen grab failed: {exc}")
            self.stats.failed_at_ns = time.monotonic_ns()
            self._finish(f"error: screen grab failed: {exc}")
        else:
            self._finish("stopped")
        finally:
            self.started.set()  # open() stops waiting (without a clock: did not start)
            self.grab_done.set()
            self._convert_q.put((_STOP, self._grab_end))
            if backend is not None:
                backend.close()

    def _window_backend(self) -> tuple[Any, Rect]:
        """The window backend (``None`` for a fixed screen area: no window to follow) and the
        screen the window's region is clamped into."""
        backend: Any = open_backend()
        screen = backend.screen()
        if self.target.handle is None:
            backend.close()
            backend = None
        return backend, screen

    def _first_frame(
        self, sct: Any, backend: Any, screen: Rect
    ) -> tuple[FrameClock, int | None, int] | None:
        """Frame 0, which starts the clock: the first picture grabbed (frame 0's ``t_ns`` is its
        grab time), or a hidden slot when the window is hidden from the start.

        Returns the clock, frame 0's capture time (``None``: no picture yet) and when focus is
        polled next; ``None`` when the recording stopped or the window closed first.
        """
        stats = self.stats
        next_poll = 0
        while not self._stop.is_set():
            now = time.monotonic_ns()
            if backend is not None:
                check_focus = now >= next_poll
                if check_focus:
                    next_poll = now + int(GEOMETRY_POLL_S * 1e9)
                if not self._poll(backend, screen, 0, check_focus):
                    return None
            if self._hidden:
                # Minimised or zero-size: never grab what lies under it.
                clock = self._start(time.monotonic_ns())
                self._row(0, clock.t_ns(0), None, "hidden")
                stats.padded += 1
                self.window_hidden_frames += 1
                return clock, None, next_poll
            t_capture = time.monotonic_ns()
            raw = sct.grab(self.region)
            if raw is None:  # a change-driven source has no first picture yet
                time.sleep(0.001)
                continue
            clock = self._start(t_capture)  # frame 0 is this grab
            try:
                self._convert_q.put_nowait((0, raw, self.region))
            except queue.Full:  # pragma: no cover - only this thread fills the queue
                self._row(0, clock.t_ns(0), None, "dropped")
                stats.dropped += 1
                return clock, None, next_poll
            self._row(0, clock.t_ns(0), t_capture, None)
            stats.fresh += 1
            if stats.first_capture_ns is None:
                stats.first_capture_ns = t_capture
            stats.last_capture_ns = t_capture
            return clock, t_capture, next_poll
        return None

    def _grab_slots(
        self,
        sct: Any,
        backend: Any,
        screen: Rect,
        clock: FrameClock,
        last_capture: int | None,
        next_poll: int,
    ) -> None:
        """Every slot after frame 0 until stopped, each at its presentation time: grabbed fresh,
        or repeating the previous picture (dropped, hidden, unchanged or padded).

        The frame-timing loop: it does no work per slot beyond what the slot needs. However it
        ends, ``_grab_end`` is the number of slots written.
        """
        stats = self.stats
        index = 1
        try:
            while not self._stop.is_set():
                if self.max_frames is not None and index >= self.max_frames:
                    self._hold_last_frame(clock, index)
                    break
                slot_t = clock.t_ns(index)
                now = time.monotonic_ns()
                if now < slot_t:
                    time.sleep((slot_t - now) / 1e9)
                    now = time.monotonic_ns()
                index = self._pad_missed(clock, index, now, last_capture)
                if backend is not None:
                    # Geometry before every grab (one round trip): a moved window is
                    # followed at once and a closed one never shows what was under it.
                    check_focus = now >= next_poll
                    if check_focus:
                        next_poll = now + int(GEOMETRY_POLL_S * 1e9)
                    if not self._poll(backend, screen, index, check_focus):
                        break
                if self._convert_q.full():
                    # The pipeline is behind: skip the grab (saving its CPU for the
                    # encoder) and repeat the previous picture in this slot.
                    self._row(index, clock.t_ns(index), last_capture, "dropped")
                    stats.dropped += 1
                    index += 1
                    continue
                if self._hidden:
                    # Minimised or zero-size: never grab what lies under it; repeat.
                    self._row(index, clock.t_ns(index), last_capture, "hidden")
                    stats.padded += 1
                    self.window_hidden_frames += 1
                    index += 1
                    continue
                t_capture = time.monotonic_ns()
                # Lateness is judged right before the grab, after the geometry round trip
                # (slow under load): a grab that starts after its slot ended belongs to the
                # slot it starts in, the skipped ones are padded.
                index = self._pad_missed(clock, index, t_capture, last_capture)
                raw = sct.grab(self.region)
                t_done = time.monotonic_ns()
                if raw is None and last_capture is not None:
                    # A change-driven source (WGC, ScreenCaptureKit): nothing new since the
                    # last picture, which this slot repeats.
                    self._row(index, clock.t_ns(index), last_capture, "unchanged")
                    stats.padded += 1
                    index += 1
                    continue
                if raw is None:  # no first picture yet (hidden at the start): next slot
                    time.sleep(0.001)
                    continue
                if last_capture is not None and t_done >= clock.t_ns(index + 1):
                    # The grab ended after its slot: its pixels may be the next slot's.
                    # Never shown early: the slot repeats the previous picture.
                    self._row(index, clock.t_ns(index), last_capture, "dropped")
                    stats.dropped += 1
                    stats.late_grabs += 1
                    index += 1
                    continue
                try:
                    self._convert_q.put_nowait((index, raw, self.region))
                except queue.Full:  # pragma: no cover - only this thread fills the queue
                    self._row(index, clock.t_ns(index), last_capture, "dropped")
                    stats.dropped += 1
                else:
                    self._row(index, clock.t_ns(index), t_capture, None)
                    stats.fresh += 1
                    last_capture = t_capture
                    if stats.first_capture_ns is None:
                        stats.first_capture_ns = t_capture
                    stats.last_capture_ns = t_capture
                index += 1
        finally:
            self._grab_end = index

    def _hold_last_frame(self, clock: FrameClock, index: int) -> None:
        """The fixed duration is reached: hold the last frame for its whole display interval
        (cut short by a stop), then stop."""
        end = clock.t_ns(index) - time.monotonic_ns()
        if end > 0:
            self._stop.wait(end / 1e9)
        self._finish("duration_reached")

    def _start(self, t0_ns: int) -> FrameClock:
        """The session's clock: frame 0 is presented at ``t0_ns``, its own grab time."""
        clock = FrameClock(t0_ns, self.fps)
        self.clock = clock
        self.started.set()
        return clock

    def _pad_missed(self, clock: FrameClock, index: int, now: int, last_capture: int | None) -> int:
        """Pad every slot that ended before ``now`` (repeat the previous picture); returns the
        slot ``now`` lies in (capped at the last frame of a fixed duration)."""
        late_to = clock.index_at(now)
        if self.max_frames is not None:
            late_to = min(late_to, self.max_frames - 1)
        while index < late_to and last_capture is not None:
            self._row(index, clock.t_ns(index), last_capture, "padded")
            self.stats.padded += 1
            index += 1
        return index

    def _row(self, index: int, t_ns: int, t_capture: int | None, dup: str | None) -> None:
        self._journal.add(
            frame_row(
                index,
                t_ns,
                t_capture,
                dup is not None,
                stream="screen",
                window_id=self.window_id,
                session_id=self.session_id,
                duplicate_of=dup,
            )
        )
        self.stats.frames = index + 1

    def _poll(self, backend: Any, screen: Rect, index: int, check_focus: bool) -> bool:
        """Follow the window; False when it is gone."""
        handle = self.target.handle
        if handle is None:
            return True
        try:
            rect = backend.geometry(handle)
            focused = backend.has_focus(handle) if check_focus else self.focus.focused
        except WindowGoneError:
            self._finish("window_closed")
            return False
        self._hidden = rect.width <= 0 or rect.height <= 0
        if self._hidden:  # minimised / zero-size: keep the region, repeat the last picture
            self.focus.update(False, index)
            return True
        if (rect.width, rect.height) != (self.target.rect.width, self.target.rect.height):
            self.window_resized = True
        width = min(rect.width, self.width)
        height = min(rect.height, self.height)
        region = Rect(rect.left, rect.top, width, height).clamp_into(screen)
        if region != self.region:
            if (region.left, region.top) != (self.region.left, self.region.top):
                self.window_moves += 1
            self.region = region
            if self.on_region is not None:
                self.on_region(region)
        self.focus.update(focused, index)
        return True

    # -- convert ------------------------------------------------------------------------
    def _convert_loop(self) -> None:
        lower_priority()
        while True:
            item = self._convert_q.get()
            if item is _STOP or item[0] is _STOP:
                self._encode_q.put(item)
                return
            index, raw, region = item
            bgra = np.frombuffer(raw, dtype=np.uint8).reshape(region.height, region.width, 4)
            if (region.width, region.height) != (self.width, self.height):
                canvas = np.zeros((self.height, self.width, 4), dtype=np.uint8)
                canvas[: region.height, : region.width] = bgra
                bgra = canvas
            i420 = cv2.cvtColor(bgra, cv2.COLOR_BGRA2YUV_I420)
            self._encode_q.put((index, i420))

    # -- encode -------------------------------------------------------------------------
    def _encode_loop(self) -> None:
        lower_priority()  # x264's worker threads, created on the first frame, inherit it
        writer = self._writer
        previous: Any = None
        next_index = 0
        while True:
            item = self._encode_q.get()
            if item is _STOP:
                return
            if item[0] is _STOP:
                final_count = int(item[1])
                while previous is not None and next_index < final_count:
                    writer.write_i420(previous, next_index)
                    next_index += 1
                return
            index, i420 = item
            while previous is not None and next_index < index:
                writer.write_i420(previous, next_index)
                next_index += 1
            writer.write_i420(i420, index)
            previous = i420
            next_index = index + 1
