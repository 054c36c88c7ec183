"""macOS pixels: ScreenCaptureKit (macOS 12.3+, through pyobjc) for one window, else mss.

``CGWindowListCreateImage``, which mss uses, is deprecated since macOS 14 in favour of
ScreenCaptureKit. An ``SCStream`` over an ``SCContentFilter`` of the target window delivers
BGRA ``CVPixelBuffer`` frames at the window's pixel size, only when the window changed (idle
frames carry no image buffer): :meth:`SckGrabber.grab` then returns ``None`` and the timeline
repeats the previous picture.

The pyobjc modules come in through ``modules`` (``ScreenCaptureKit``, ``CoreMedia``, ``Quartz``)
and the stream-output object through ``make_output``, so tests drive this code with fakes.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any

from ._base import AccessDeniedError, Grabber, Rect, WindowGoneError
from .darwin import sck_available

__all__ = ["SckGrabber", "open_darwin_grabber"]

K_CV_PIXEL_FORMAT_32BGRA = 0x42475241  # 'BGRA'
K_CV_PIXEL_BUFFER_LOCK_READ_ONLY = 1


_OUTPUT_CLASS: Any = None


def _objc_output(handler: Callable[[Any, Any], None]) -> Any:
    """An ``SCStreamOutput`` object calling ``handler(sample_buffer, type)`` (real pyobjc)."""
    global _OUTPUT_CLASS  # noqa: PLW0603 - an Objective-C class can be registered only once
    if _OUTPUT_CLASS is None:
        objc = importlib.import_module("objc")
        foundation = importlib.import_module("Foundation")

        ns_object: Any = foundation.NSObject
        protocol = objc.protocolNamed("SCStreamOutput")

        class CaptureStreamOutput(ns_object, protocols=[protocol]):  # type: ignore[misc,call-arg]
            def stream_didOutputSampleBuffer_ofType_(
                self, stream: Any, sample: Any, kind: Any
            ) -> None:
                self.handler(sample, kind)

        _OUTPUT_CLASS = CaptureStreamOutput
    out = _OUTPUT_CLASS.alloc().init()
    out.handler = handler
    return out


class SckGrabber:
    name = "screencapturekit"

    def __init__(
        self,
        handle: int,
        rect: Rect,
        *,
        fps: int = 30,
        modules: dict[str, Any] | None = None,
        make_output: Callable[[Callable[[Any, Any], None]], Any] | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        mods = modules or {
            n: importlib.import_module(n) for n in ("ScreenCaptureKit", "CoreMedia", "Quartz")
        }
        self._sck, self._cm, self._q = mods["ScreenCaptureKit"], mods["CoreMedia"], mods["Quartz"]
        self._lock = threading.Lock()
        self._latest: bytes | None = None
        self._size = (rect.width, rect.height)
        self._new = False
        self._error: str | None = None
        got = threading.Event()
        box: dict[str, Any] = {}

        def on_content(content: Any, error: Any) -> None:
            box["content"], box["error"] = content, error
            got.set()

        self._sck.SCShareableContent.getShareableContentWithCompletionHandler_(on_content)
        if not got.wait(timeout_s):
            raise AccessDeniedError("ScreenCaptureKit did not answer (Screen Recording prompt?)")
        if box["content"] is None:
            raise AccessDeniedError(f"ScreenCaptureKit refused: {box['error']}")
        window = next((w for w in box["content"].windows() if w.windowID() == handle), None)
        if window is None:
            raise WindowGoneError(f"window {handle} is not shareable content")
        filt = self._sck.SCContentFilter.alloc().initWithDesktopIndependentWindow_(window)
        cfg = self._sck.SCStreamConfiguration.alloc().init()
        cfg.setWidth_(rect.width)
        cfg.setHeight_(rect.height)
        cfg.setPixelFormat_(K_CV_PIXEL_FORMAT_32BGRA)
        cfg.setShowsCursor_(False)
        cfg.setMinimumFrameInterval_(self._cm.CMTimeMake(1, fps))
        self._stream = self._sck.SCStream.alloc().initWithFilter_configuration_delegate_(
            filt, cfg, None
        )
        self._output = (make_output or _objc_output)(self._on_sample)
        ok, err = self._stream.addStreamOutput_type_sampleHandlerQueue_error_(
            self._output, self._sck.SCStreamOutputTypeScreen, None, None
        )
        if not ok:
            raise AccessDeniedError(f"SCStream refused the output: {err}")
        started = threading.Event()

        def on_start(error: Any) -> None:
            if error is not None:
                self._error = str(error)
            started.set()

        self._stream.startCaptureWithCompletionHandler_(on_start)
        if not started.wait(timeout_s) or self._error is not None:
            raise AccessDeniedError(f"SCStream did not start: {self._error or 'timeout'}")

    def _on_sample(self, sample: Any, kind: Any) -> None:
        q = self._q
        pixbuf = self._cm.CMSampleBufferGetImageBuffer(sample)
        if pixbuf is None:  # an idle frame: nothing changed
            return
        q.CVPixelBufferLockBaseAddress(pixbuf, K_CV_PIXEL_BUFFER_LOCK_READ_ONLY)
        try:
            height = int(q.CVPixelBufferGetHeight(pixbuf))
            width = int(q.CVPixelBufferGetWidth(pixbuf))
            stride = int(q.CVPixelBufferGetBytesPerRow(pixbuf))
            raw = bytes(q.CVPixelBufferGetBaseAddress(pixbuf).as_buffer(stride * height))
        finally:
            q.CVPixelBufferUnlockBaseAddress(pixbuf, K_CV_PIXEL_BUFFER_LOCK_READ_ONLY)
        import numpy as np

        from .grabbers import fit

        rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, stride // 4, 4)[:, :width]
        frame = fit(rows, *self._size)
        with self._lock:
            self._latest, self._new = frame, True

    def grab(self, rect: Rect) -> bytes | memoryview | None:
        with self._lock:
            if self._error is not None:
                raise WindowGoneError(self._error)
            if not self._new or self._latest is None:
                return None
            self._new = False
            return self._latest

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stopCaptureWithCompletionHandler_(None)


def open_darwin_grabber(
    handle: int | None, rect: Rect, *, fps: int = 30, prefer: str = "auto"
) -> Grabber:
    """ScreenCaptureKit for a window where available, else mss (scaled to pixels)."""
    from .grabbers import MssGrabber

    if handle is not None and prefer != "mss" and sck_available():
        try:
            return SckGrabber(handle, rect, fps=fps)
        except Exception:  # noqa: BLE001, S110 - permission or API refusal: mss instead
            pass
    scale = 1.0
    if handle is not None:
        from .darwin import open_backend

        scale = open_backend().scale(handle)
    return MssGrabber(scale=scale)
