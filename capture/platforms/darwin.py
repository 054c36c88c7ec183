"""macOS: Quartz (pyobjc) for windows, ScreenCaptureKit for pixels with mss as the fallback,
pynput's event taps for input, a loopback device such as BlackHole for system audio,
avfoundation for webcams.

Windows come from ``CGWindowListCopyWindowInfo``: the exact ``kCGWindowName`` (and, when asked,
``kCGWindowOwnerName``) on layer 0. Bounds are in points, global display coordinates with the
origin at the top-left of the main display; times the display's backing scale (2 on Retina)
they are pixels. Focus: the frontmost application owns the window and no other normal window
of it lies above it. Without the Screen Recording permission macOS hides other apps' window
titles (``kCGWindowName`` absent): the window is then not found and the preflight says why.

The pyobjc modules are passed in (``quartz``, ``appkit``), so the tests run this code against
fakes that follow Apple's documented behaviour.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from aiconfig import CaptureDeviceError

from ._base import Check, Rect, WindowGoneError, WindowInfo

__all__ = [
    "NAME",
    "DarwinBackend",
    "DarwinInput",
    "check_display",
    "open_backend",
    "permission_checks",
    "sck_available",
    "screen_capture_allowed",
    "webcam_input",
]

NAME = "darwin"


def _modules() -> tuple[Any, Any]:
    try:
        quartz = importlib.import_module("Quartz")
        appkit = importlib.import_module("AppKit")
    except ImportError as exc:
        raise CaptureDeviceError(
            "the macOS backend needs pyobjc: pip install 'aiconfig[capture-macos]' "
            f"(missing: {exc.name})"
        ) from exc
    return quartz, appkit


def check_display() -> str:
    return "quartz"


def webcam_input(device: int | str) -> tuple[str, str]:
    """``(url, format)`` for PyAV: avfoundation numbers cameras (``0``) or names them."""
    return str(device), "avfoundation"


def screen_capture_allowed(quartz: Any) -> bool | None:
    """``CGPreflightScreenCaptureAccess`` (macOS 10.15+); None where it does not exist."""
    fn = getattr(quartz, "CGPreflightScreenCaptureAccess", None)
    return None if fn is None else bool(fn())


class DarwinBackend:
    """Window lookup and following through the Quartz window list."""

    def __init__(self, quartz: Any, appkit: Any, *, owner: str | None = None) -> None:
        self.q = quartz
        self.appkit = appkit
        self.owner = owner

    def _list(self, option: int, relative_to: int) -> list[Any]:
        infos = self.q.CGWindowListCopyWindowInfo(option, relative_to)
        return [] if infos is None else list(infos)

    def _scale_at(self, x: float, y: float, w: float, h: float) -> float:
        """The backing scale of the display holding the rectangle's centre (1 if none)."""
        q = self.q
        err, displays, count = q.CGGetDisplaysWithPoint((x + w / 2, y + h / 2), 1, None, None)
        if err != 0 or not count:
            return 1.0
        mode = q.CGDisplayCopyDisplayMode(displays[0])
        if mode is None:
            return 1.0
        points = q.CGDisplayModeGetWidth(mode)
        pixels = q.CGDisplayModeGetPixelWidth(mode)
        return float(pixels) / float(points) if points else 1.0

    def _rect(self, info: Any) -> Rect:
        b = info.get(self.q.kCGWindowBounds) or {}
        x, y = float(b.get("X", 0)), float(b.get("Y", 0))
        w, h = float(b.get("Width", 0)), float(b.get("Height", 0))
        s = self._scale_at(x, y, w, h)
        return Rect(round(x * s), round(y * s), round(w * s), round(h * s))

    def find(self, title: str) -> WindowInfo | None:
        q = self.q
        option = q.kCGWindowListOptionOnScreenOnly | q.kCGWindowListExcludeDesktopElements
        for info in self._list(option, q.kCGNullWindowID):
            if info.get(q.kCGWindowName) != title or int(info.get(q.kCGWindowLayer, 0)) != 0:
                continue
            if self.owner is not None and info.get(q.kCGWindowOwnerName) != self.owner:
                continue
            rect = self._rect(info)
            if rect.width <= 0 or rect.height <= 0:
                continue
            return WindowInfo(handle=int(info[q.kCGWindowNumber]), title=title, rect=rect)
        return None

    def _info(self, handle: int) -> Any:
        infos = self._list(self.q.kCGWindowListOptionIncludingWindow, handle)
        for info in infos:
            if int(info.get(self.q.kCGWindowNumber, -1)) == handle:
                return info
        raise WindowGoneError(f"window {handle} no longer exists")

    def geometry(self, handle: int) -> Rect:
        info = self._info(handle)
        if not info.get(self.q.kCGWindowIsOnscreen, True):  # minimised or on another Space
            rect = self._rect(info)
            return Rect(rect.left, rect.top, 0, 0)
        return self._rect(info)

    def has_focus(self, handle: int) -> bool:
        q = self.q
        app = self.appkit.NSWorkspace.sharedWorkspace().frontmostApplication()
        if app is None:
            return False
        pid = int(app.processIdentifier())
        option = q.kCGWindowListOptionOnScreenOnly | q.kCGWindowListExcludeDesktopElements
        for info in self._list(option, q.kCGNullWindowID):  # front to back
            if int(info.get(q.kCGWindowOwnerPID, -1)) != pid:
                continue
            if int(info.get(q.kCGWindowLayer, 0)) != 0:
                continue
            return int(info.get(q.kCGWindowNumber, -1)) == handle
        return False

    def screen(self) -> Rect:
        q = self.q
        main = q.CGMainDisplayID()
        bounds = q.CGDisplayBounds(main)
        mode = q.CGDisplayCopyDisplayMode(main)
        points = q.CGDisplayModeGetWidth(mode) if mode is not None else 0
        s = q.CGDisplayModeGetPixelWidth(mode) / points if points else 1.0
        return Rect(
            round(bounds.origin.x * s),
            round(bounds.origin.y * s),
            round(bounds.size.width * s),
            round(bounds.size.height * s),
        )

    def scale(self, handle: int) -> float:
        b = self._info(handle).get(self.q.kCGWindowBounds) or {}
        return self._scale_at(
            float(b.get("X", 0)), float(b.get("Y", 0)), float(b.get("Width", 0)), 1.0
        )

    def close(self) -> None:
        return None


def open_backend() -> DarwinBackend:
    quartz, appkit = _modules()
    return DarwinBackend(quartz, appkit)


_SETTINGS = "System Settings > Privacy & Security > "


def permission_checks(
    handle: int | None, modules: dict[str, Any] | None = None, version: str | None = None
) -> list[Check]:
    """Screen Recording, Input Monitoring and Accessibility, and ScreenCaptureKit's presence."""
    mods = modules if modules is not None else _permission_modules()
    quartz, hiservices = mods.get("Quartz"), mods.get("ApplicationServices")
    checks: list[Check] = []
    if quartz is None:
        return [
            Check(
                "pyobjc",
                "fail",
                "pyobjc's Quartz bindings are not installed",
                "pip install 'aiconfig[capture-macos]'",
                "screen",
            )
        ]
    allowed = screen_capture_allowed(quartz)
    if allowed is False:
        checks.append(
            Check(
                "screen-recording",
                "fail",
                "Screen Recording is not allowed for this terminal/app (macOS hides other "
                "apps' windows and pixels)",
                f"allow it in {_SETTINGS}Screen Recording, then restart the terminal",
                "screen",
            )
        )
    else:
        checks.append(Check("screen-recording", "ok", "Screen Recording allowed"))
    listen = getattr(quartz, "CGPreflightListenEventAccess", None)
    if listen is not None and not listen():
        checks.append(
            Check(
                "input-monitoring",
                "fail",
                "Input Monitoring is not allowed: the keyboard and mouse taps see nothing",
                f"allow it in {_SETTINGS}Input Monitoring, then restart the terminal",
                "input",
            )
        )
    else:
        checks.append(Check("input-monitoring", "ok", "Input Monitoring allowed"))
    trusted = getattr(hiservices, "AXIsProcessTrusted", None)
    if trusted is not None and not trusted():
        checks.append(
            Check(
                "accessibility",
                "fail",
                "Accessibility is not allowed: pynput's event tap cannot be created",
                f"allow it in {_SETTINGS}Accessibility",
                "input",
            )
        )
    else:
        checks.append(Check("accessibility", "ok", "Accessibility allowed"))
    import platform

    ver = version if version is not None else platform.mac_ver()[0]
    if sck_available(ver) if modules is None else "ScreenCaptureKit" in mods:
        checks.append(Check("screencapturekit", "ok", f"macOS {ver}: ScreenCaptureKit grabs"))
    else:
        checks.append(
            Check(
                "screencapturekit",
                "warn",
                f"macOS {ver or '?'}: ScreenCaptureKit unavailable, mss (CGWindowListCreateImage, "
                "deprecated since macOS 14) grabs at point resolution instead",
                "use macOS 12.3+ and pip install pyobjc-framework-ScreenCaptureKit",
            )
        )
    return checks


def sck_available(version: str | None = None) -> bool:
    """macOS 12.3 or later with pyobjc's ScreenCaptureKit bindings importable."""
    import platform

    ver = version if version is not None else platform.mac_ver()[0]
    try:
        parts = tuple(int(p) for p in (ver or "0").split(".")[:2])
    except ValueError:
        return False
    if parts < (12, 3):
        return False
    try:
        importlib.import_module("ScreenCaptureKit")
    except ImportError:
        return False
    return True


def _permission_modules() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("Quartz", "ApplicationServices", "ScreenCaptureKit"):
        try:
            out[name] = importlib.import_module(name)
        except ImportError:
            continue
    return out


_tap_time = threading.local()


class DarwinInput:
    """pynput's Quartz event taps, with each CGEvent's own timestamp on the recorder's clock.

    ``CGEventGetTimestamp`` counts from boot on the ``mach_absolute_time`` clock (in its ticks:
    nanoseconds on Intel, 125/3 ns on Apple silicon), which is the clock ``time.monotonic``
    reads on macOS. pynput runs ``darwin_intercept`` in the tap callback just before the
    listener's callback, on the same thread.
    """

    keyed = False

    def __init__(self, quartz: Any = None, numer_denom: tuple[int, int] | None = None) -> None:
        self._q = quartz
        self._ratio = numer_denom

    def _timebase(self) -> tuple[int, int]:
        if self._ratio is None:
            import ctypes
            import ctypes.util

            class _Info(ctypes.Structure):
                _fields_ = (("numer", ctypes.c_uint32), ("denom", ctypes.c_uint32))

            lib = ctypes.CDLL(ctypes.util.find_library("System") or "libSystem.dylib")
            info = _Info()
            lib.mach_timebase_info(ctypes.byref(info))
            self._ratio = (int(info.numer), int(info.denom) or 1)
        return self._ratio

    def _intercept(self, event_type: Any, event: Any) -> Any:
        q = self._q if self._q is not None else _modules()[0]
        _tap_time.ticks = int(q.CGEventGetTimestamp(event))
        return event  # unchanged: nothing is suppressed or altered

    def listener_options(self) -> dict[str, Any]:
        # An intercept makes pynput open a default (not listen-only) tap; it passes every
        # event on unchanged. Input Monitoring (listen-only) then also needs Accessibility.
        return {"darwin_intercept": self._intercept}

    def wrap(self, listener_cls: Any) -> Any:
        return listener_cls

    def to_pixels(self, x: float, y: float) -> tuple[float, float]:
        """pynput (a CGEvent's location) gives global points; times the backing scale of the
        display under the point they are the video's pixels."""
        if self._q is None:
            self._q = _modules()[0]
        scale = DarwinBackend(self._q, None)._scale_at(x, y, 0.0, 0.0)
        return x * scale, y * scale

    def event_time_ns(self, now_ns: int | None = None, key: Any = None) -> int:
        import time

        now = time.monotonic_ns() if now_ns is None else now_ns
        ticks = getattr(_tap_time, "ticks", None) if key is None else key
        if ticks is None:
            return now
        numer, denom = self._timebase()
        t = int(ticks) * numer // denom
        return t if 0 < now - t < 1_000_000_000 else now
