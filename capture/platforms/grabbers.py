"""Screen grabbers behind :class:`~capture.platforms.Grabber`: mss everywhere, and the
change-driven system APIs where they exist (Windows Graphics Capture through the maintained
``windows-capture`` binding; ScreenCaptureKit lives in :mod:`.sck`).

A change-driven source delivers a picture only when the window changed; :meth:`grab` then
returns ``None`` and the timeline repeats the previous picture in that slot.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from ._base import Rect, WindowGoneError

__all__ = ["MssGrabber", "WgcGrabber", "fit"]


def fit(pixels: Any, width: int, height: int) -> bytes:
    """A BGRA ``(h, w, 4)`` array cropped (top-left) or zero-padded to ``width x height``."""
    import numpy as np

    arr = np.asarray(pixels, dtype=np.uint8)
    if arr.shape[0] == height and arr.shape[1] == width:
        return arr.tobytes()
    out = np.zeros((height, width, 4), dtype=np.uint8)
    h, w = min(height, arr.shape[0]), min(width, arr.shape[1])
    out[:h, :w] = arr[:h, :w, :4]
    return out.tobytes()


class MssGrabber:
    """python-mss on the calling thread (XShm on X11, GDI on Windows, CoreGraphics on macOS).

    ``scale`` > 1 (macOS): mss grabs in points at nominal resolution; the picture is resized
    to the pixel rectangle so coordinates still match the video.
    """

    name = "mss"

    def __init__(self, scale: float = 1.0) -> None:
        import mss

        self._sct: Any = mss.MSS()
        self._scale = scale

    def grab(self, rect: Rect) -> bytes | memoryview | None:
        if self._scale == 1.0:
            raw: bytes = self._sct.grab(rect.as_mss()).raw
            return raw
        import cv2
        import numpy as np

        s = self._scale
        pts = {
            "left": round(rect.left / s),
            "top": round(rect.top / s),
            "width": max(1, round(rect.width / s)),
            "height": max(1, round(rect.height / s)),
        }
        shot = self._sct.grab(pts)
        arr = np.frombuffer(shot.raw, dtype=np.uint8).reshape(shot.height, shot.width, 4)
        out: bytes = cv2.resize(arr, (rect.width, rect.height)).tobytes()
        return out

    def close(self) -> None:
        self._sct.close()


class WgcGrabber:
    """Windows Graphics Capture of one window (``windows_capture``), frames on change only.

    No hook or injection: WGC is the compositor's own capture, the one OBS's "Windows 10"
    window capture uses. Frames arrive on the binding's thread; :meth:`grab` takes the newest.
    The window is named by its HWND (``window_hwnd``, windows-capture 2.0+), the one found by
    exact title: the binding's ``window_name`` matches substrings, which could pick a browser
    tab about the game.
    """

    name = "windows-graphics-capture"

    def __init__(self, handle: int, module: Any = None) -> None:
        wc = module if module is not None else importlib.import_module("windows_capture")
        self._lock = threading.Lock()
        self._latest: Any = None
        self._new = False
        self._closed = False
        self.frames_delivered = 0
        capture = wc.WindowsCapture(cursor_capture=False, draw_border=False, window_hwnd=handle)

        def on_frame_arrived(frame: Any, capture_control: Any) -> None:
            buf = frame.frame_buffer.copy()
            with self._lock:
                self._latest, self._new = buf, True
                self.frames_delivered += 1

        def on_closed() -> None:
            with self._lock:
                self._closed = True

        capture.event(on_frame_arrived)
        capture.event(on_closed)
        self._control = capture.start_free_threaded()

    def grab(self, rect: Rect) -> bytes | memoryview | None:
        with self._lock:
            if self._closed:
                raise WindowGoneError("the capture item closed (window gone)")
            if not self._new or self._latest is None:
                return None
            latest, self._new = self._latest, False
        return fit(latest, rect.width, rect.height)

    def close(self) -> None:
        control, self._control = self._control, None
        if control is not None:
            control.stop()
