"""Fakes of the OS boundary for the Windows and macOS backends, following the documented API.

Windows (user32/dwmapi/kernel32/advapi32, as :class:`capture.platforms.win32.Win32Api`):

* ``GetWindowTextW`` of a destroyed window returns 0 characters (``""``), last error 1400
  (ERROR_INVALID_WINDOW_HANDLE);
* ``DwmGetWindowAttribute(DWMWA_EXTENDED_FRAME_BOUNDS)`` returns the visible frame in physical
  pixels whatever the caller's DPI awareness ("not adjusted for DPI"), and
  ``HRESULT_FROM_WIN32(ERROR_INVALID_WINDOW_HANDLE)`` for a destroyed window; a minimised window
  reports a parked caption at (-32000, -32000);
* ``GetSystemMetrics`` answers in logical units (virtualised, divided by the scale) to a
  process that is not per-monitor DPI aware, in physical pixels to one that is;
* ``SetProcessDpiAwarenessContext`` fails with ERROR_ACCESS_DENIED once the awareness is set
  (by the manifest or an earlier call);
* ``GetForegroundWindow`` may return NULL while activation changes hands;
* ``OpenProcessToken`` on an elevated process fails with ERROR_ACCESS_DENIED for a caller that
  is not elevated;
* hook ``time`` values are the tick count in ms, advancing in 15.625 ms steps.

macOS (Quartz / AppKit through pyobjc):

* ``CGWindowListCopyWindowInfo`` lists on-screen windows front to back; without the Screen
  Recording permission ``kCGWindowName`` is absent for other applications' windows;
  ``kCGWindowListOptionIncludingWindow`` for a closed window gives an empty list;
* bounds are in points; the display mode's pixel width over its width is the backing scale.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from capture.platforms import AccessDeniedError
from capture.platforms import win32 as w

# -- Windows ---------------------------------------------------------------------------------


@dataclass
class FakeHwnd:
    title: str
    rect: tuple[int, int, int, int]  # physical pixels: left, top, right, bottom
    pid: int = 4242
    visible: bool = True
    iconic: bool = False
    alive: bool = True
    dwm_denied: bool = False


@dataclass
class FakeWin32:
    scale: float = 1.5
    physical: tuple[int, int] = (2880, 1620)
    windows: dict[int, FakeHwnd] = field(default_factory=dict)
    z_order: list[int] = field(default_factory=list)
    foreground: int = 0
    awareness: int = 0
    awareness_locked: int | None = None
    me_pid: int = 100
    elevated: set[int] = field(default_factory=set)
    last_error: int = 0
    tick_base_ms: int = 0
    next_hwnd: int = 0x10010

    # test-side helpers
    def open(self, title: str, rect_px: tuple[int, int, int, int], **kw: Any) -> int:
        hwnd = self.next_hwnd
        self.next_hwnd += 0x10
        left, top, width, height = rect_px
        self.windows[hwnd] = FakeHwnd(title, (left, top, left + width, top + height), **kw)
        self.z_order.insert(0, hwnd)
        return hwnd

    def close(self, hwnd: int) -> None:
        self.windows[hwnd].alive = False
        self.z_order.remove(hwnd)

    # the table
    def EnumWindows(self) -> list[int]:
        return list(self.z_order)

    def GetWindowTextW(self, hwnd: int) -> str:
        win = self.windows.get(hwnd)
        if win is None or not win.alive:
            self.last_error = w.ERROR_INVALID_WINDOW_HANDLE
            return ""
        return win.title

    def IsWindow(self, hwnd: int) -> bool:
        win = self.windows.get(hwnd)
        return win is not None and win.alive

    def IsWindowVisible(self, hwnd: int) -> bool:
        return self.IsWindow(hwnd) and self.windows[hwnd].visible

    def IsIconic(self, hwnd: int) -> bool:
        return self.IsWindow(hwnd) and self.windows[hwnd].iconic

    def DwmGetWindowAttribute_RECT(
        self, hwnd: int, attribute: int
    ) -> tuple[int, tuple[int, int, int, int]]:
        assert attribute == w.DWMWA_EXTENDED_FRAME_BOUNDS
        if not self.IsWindow(hwnd):
            return w.HRESULT_INVALID_WINDOW_HANDLE, (0, 0, 0, 0)
        win = self.windows[hwnd]
        if win.dwm_denied:
            return w.E_ACCESSDENIED, (0, 0, 0, 0)
        if win.iconic:
            return w.S_OK, (-32000, -32000, -31840, -31972)
        return w.S_OK, win.rect

    def GetForegroundWindow(self) -> int:
        return self.foreground if self.IsWindow(self.foreground) else 0

    def GetAncestor(self, hwnd: int, flags: int) -> int:
        return hwnd if self.IsWindow(hwnd) else 0

    def GetWindowThreadProcessId(self, hwnd: int) -> int:
        return self.windows[hwnd].pid if self.IsWindow(hwnd) else 0

    def GetCurrentProcessId(self) -> int:
        return self.me_pid

    def TokenElevation(self, pid: int) -> bool:
        if pid in self.elevated and self.me_pid not in self.elevated:
            self.last_error = w.ERROR_ACCESS_DENIED
            raise AccessDeniedError(f"OpenProcessToken({pid}): access denied")
        return pid in self.elevated

    def SetProcessDpiAwarenessContext(self, context: int) -> bool:
        if self.awareness_locked is not None:
            self.awareness = self.awareness_locked
            self.last_error = w.ERROR_ACCESS_DENIED
            return False
        assert context == w.DPI_AWARENESS_CONTEXT_PER_MONITOR_AWARE_V2
        self.awareness = w.DPI_AWARENESS_PER_MONITOR
        self.awareness_locked = self.awareness
        return True

    def GetThreadDpiAwareness(self) -> int:
        return self.awareness

    def GetDpiForWindow(self, hwnd: int) -> int:
        return round(96 * self.scale) if self.IsWindow(hwnd) else 0

    def GetSystemMetrics(self, index: int) -> int:
        width, height = self.physical
        if self.awareness != w.DPI_AWARENESS_PER_MONITOR:
            width, height = round(width / self.scale), round(height / self.scale)
        return {
            w.SM_XVIRTUALSCREEN: 0,
            w.SM_YVIRTUALSCREEN: 0,
            w.SM_CXVIRTUALSCREEN: width,
            w.SM_CYVIRTUALSCREEN: height,
        }[index]

    def GetTickCount(self) -> int:
        ms = time.monotonic_ns() // 1_000_000 + self.tick_base_ms
        return int(ms - ms % 15.625) & 0xFFFFFFFF

    def GetLastError(self) -> int:
        return self.last_error


# -- macOS -----------------------------------------------------------------------------------


class FakeQuartz:
    """The Quartz names the darwin backend uses, over a list of windows (front to back)."""

    kCGWindowListOptionOnScreenOnly = 1
    kCGWindowListOptionIncludingWindow = 8
    kCGWindowListExcludeDesktopElements = 16
    kCGNullWindowID = 0
    kCGWindowNumber = "kCGWindowNumber"
    kCGWindowName = "kCGWindowName"
    kCGWindowOwnerName = "kCGWindowOwnerName"
    kCGWindowOwnerPID = "kCGWindowOwnerPID"
    kCGWindowLayer = "kCGWindowLayer"
    kCGWindowBounds = "kCGWindowBounds"
    kCGWindowIsOnscreen = "kCGWindowIsOnscreen"

    def __init__(self, scale: float = 2.0, points: tuple[int, int] = (1440, 900)) -> None:
        self.scale = scale
        self.points = points
        self.windows: list[dict[str, Any]] = []
        self.screen_recording = True
        self.listen_access = True
        self.me_pid = 100
        self.next_id = 500
        self.event_ticks = 0

    def open(self, title: str, rect_px: tuple[int, int, int, int], pid: int = 4242) -> int:
        wid = self.next_id
        self.next_id += 1
        left, top, width, height = (v / self.scale for v in rect_px)
        self.windows.insert(
            0,
            {
                self.kCGWindowNumber: wid,
                self.kCGWindowName: title,
                self.kCGWindowOwnerName: title,
                self.kCGWindowOwnerPID: pid,
                self.kCGWindowLayer: 0,
                self.kCGWindowBounds: {"X": left, "Y": top, "Width": width, "Height": height},
                self.kCGWindowIsOnscreen: True,
            },
        )
        return wid

    def find(self, wid: int) -> dict[str, Any]:
        return next(i for i in self.windows if i[self.kCGWindowNumber] == wid)

    def _visible(self, info: dict[str, Any]) -> dict[str, Any]:
        if self.screen_recording or info[self.kCGWindowOwnerPID] == self.me_pid:
            return dict(info)
        return {k: v for k, v in info.items() if k != self.kCGWindowName}

    def CGWindowListCopyWindowInfo(self, option: int, relative: int) -> list[dict[str, Any]]:
        if option & self.kCGWindowListOptionIncludingWindow:
            return [self._visible(i) for i in self.windows if i[self.kCGWindowNumber] == relative]
        out = self.windows
        if option & self.kCGWindowListOptionOnScreenOnly:
            out = [i for i in out if i[self.kCGWindowIsOnscreen]]
        return [self._visible(i) for i in out]

    def CGGetDisplaysWithPoint(
        self, point: tuple[float, float], max_displays: int, displays: Any, count: Any
    ) -> tuple[int, list[int], int]:
        x, y = point
        inside = 0 <= x < self.points[0] and 0 <= y < self.points[1]
        return 0, ([1] if inside else []), (1 if inside else 0)

    def CGDisplayCopyDisplayMode(self, display: int) -> Any:
        return SimpleNamespace(width=self.points[0], pixel_width=self.points[0] * self.scale)

    def CGDisplayModeGetWidth(self, mode: Any) -> int:
        return int(mode.width)

    def CGDisplayModeGetPixelWidth(self, mode: Any) -> int:
        return int(mode.pixel_width)

    def CGMainDisplayID(self) -> int:
        return 1

    def CGDisplayBounds(self, display: int) -> Any:
        return SimpleNamespace(
            origin=SimpleNamespace(x=0.0, y=0.0),
            size=SimpleNamespace(width=float(self.points[0]), height=float(self.points[1])),
        )

    def CGPreflightScreenCaptureAccess(self) -> bool:
        return self.screen_recording

    def CGPreflightListenEventAccess(self) -> bool:
        return self.listen_access

    def CGEventGetTimestamp(self, event: Any) -> int:
        return int(event.timestamp)


class FakeAppKit:
    def __init__(self) -> None:
        self.front_pid: int | None = None
        app_kit = self

        class _App:
            def processIdentifier(self) -> int:
                assert app_kit.front_pid is not None
                return app_kit.front_pid

        class _Workspace:
            def frontmostApplication(self) -> Any:
                return None if app_kit.front_pid is None else _App()

        ws = _Workspace()
        self.NSWorkspace = SimpleNamespace(sharedWorkspace=lambda: ws)
