"""Windows: user32/dwmapi through ctypes for windows, mss (GDI) or Windows Graphics Capture for
pixels, pynput's low-level hooks for input, WASAPI loopback for system audio, dshow for webcams.

Nothing is hooked or injected into the game process (League's anti-cheat froze or blacked out
OBS's game-capture hook): windows are read with ``EnumWindows``/``GetWindowTextW`` (exact title),
their rectangle with ``DwmGetWindowAttribute(DWMWA_EXTENDED_FRAME_BOUNDS)`` (the visible frame,
without the invisible resize borders, in physical pixels), and focus with
``GetForegroundWindow``. The process is made per-monitor DPI aware first, so that every
coordinate (system metrics, mss, pynput) is in physical pixels on a 150 % display too.

Every OS call goes through one small table (:class:`Win32Api`); the real one wraps ctypes, the
tests use a fake that follows the documented behaviour, errors included.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from typing import Any, Protocol

from aiconfig import CaptureDeviceError

from ._base import AccessDeniedError, Check, Rect, WindowGoneError, WindowInfo, unwrap_ms

__all__ = [
    "DPI_AWARENESS_PER_MONITOR",
    "NAME",
    "Win32Api",
    "Win32Backend",
    "Win32Input",
    "check_display",
    "elevation",
    "open_backend",
    "permission_checks",
    "webcam_input",
]

NAME = "win32"

S_OK = 0
E_ACCESSDENIED = 0x80070005
HRESULT_INVALID_WINDOW_HANDLE = 0x80070578  # HRESULT_FROM_WIN32(ERROR_INVALID_WINDOW_HANDLE)
ERROR_ACCESS_DENIED = 5
ERROR_INVALID_WINDOW_HANDLE = 1400
DWMWA_EXTENDED_FRAME_BOUNDS = 9
GA_ROOT = 2
SM_XVIRTUALSCREEN, SM_YVIRTUALSCREEN, SM_CXVIRTUALSCREEN, SM_CYVIRTUALSCREEN = 76, 77, 78, 79
DPI_AWARENESS_CONTEXT_PER_MONITOR_AWARE_V2 = -4
DPI_AWARENESS_PER_MONITOR = (
    2  # DPI_AWARENESS_PER_MONITOR_AWARE (GetAwarenessFromDpiAwarenessContext)
)
USER_DEFAULT_DPI = 96


class Win32Api(Protocol):
    """The Win32 functions the backend uses, with their documented return conventions:
    BOOLs as bool, HRESULTs as unsigned ints, handles as ints (0 = NULL), out-parameters
    returned. ``GetLastError`` is the thread's last error after a failing call."""

    def EnumWindows(self) -> list[int]: ...
    def GetWindowTextW(self, hwnd: int) -> str: ...
    def IsWindow(self, hwnd: int) -> bool: ...
    def IsWindowVisible(self, hwnd: int) -> bool: ...
    def IsIconic(self, hwnd: int) -> bool: ...
    def DwmGetWindowAttribute_RECT(
        self, hwnd: int, attribute: int
    ) -> tuple[int, tuple[int, int, int, int]]: ...
    def GetForegroundWindow(self) -> int: ...
    def GetAncestor(self, hwnd: int, flags: int) -> int: ...
    def GetWindowThreadProcessId(self, hwnd: int) -> int: ...
    def GetCurrentProcessId(self) -> int: ...
    def TokenElevation(self, pid: int) -> bool: ...  # raises AccessDeniedError
    def SetProcessDpiAwarenessContext(self, context: int) -> bool: ...
    def GetThreadDpiAwareness(self) -> int: ...
    def GetDpiForWindow(self, hwnd: int) -> int: ...
    def GetSystemMetrics(self, index: int) -> int: ...
    def GetTickCount(self) -> int: ...
    def GetLastError(self) -> int: ...


def make_dpi_aware(api: Win32Api) -> int:
    """Make this process per-monitor DPI aware (v2); returns the awareness in effect (0
    unaware, 1 system, 2 per monitor). Setting it again fails with ERROR_ACCESS_DENIED by
    design (also when a manifest set it first): the awareness in effect is what counts."""
    api.SetProcessDpiAwarenessContext(DPI_AWARENESS_CONTEXT_PER_MONITOR_AWARE_V2)
    return api.GetThreadDpiAwareness()


class Win32Backend:
    """Window lookup and following through :class:`Win32Api`."""

    def __init__(self, api: Win32Api) -> None:
        self.api = api
        self.dpi_awareness = make_dpi_aware(api)

    def find(self, title: str) -> WindowInfo | None:
        for hwnd in self.api.EnumWindows():
            if self.api.GetWindowTextW(hwnd) != title:  # "" when gone: no match
                continue
            if not self.api.IsWindowVisible(hwnd) or self.api.IsIconic(hwnd):
                continue
            try:
                rect = self.geometry(hwnd)
            except (WindowGoneError, AccessDeniedError):
                continue  # closed between the list and the query, or not ours to read
            if rect.width <= 0 or rect.height <= 0:
                continue
            return WindowInfo(handle=hwnd, title=title, rect=rect)
        return None

    def geometry(self, handle: int) -> Rect:
        """The visible frame in physical pixels (DWM's extended frame bounds)."""
        hr, (left, top, right, bottom) = self.api.DwmGetWindowAttribute_RECT(
            handle, DWMWA_EXTENDED_FRAME_BOUNDS
        )
        if hr != S_OK:
            if hr == E_ACCESSDENIED:
                raise AccessDeniedError(f"DwmGetWindowAttribute: access denied (0x{hr:08X})")
            if not self.api.IsWindow(handle):
                raise WindowGoneError(f"window 0x{handle:X} no longer exists (0x{hr:08X})")
            raise CaptureDeviceError(f"DwmGetWindowAttribute failed (HRESULT 0x{hr:08X})")
        if self.api.IsIconic(handle):  # minimised: DWM reports a parked caption bar
            return Rect(left, top, 0, 0)
        return Rect(left, top, max(0, right - left), max(0, bottom - top))

    def has_focus(self, handle: int) -> bool:
        fg = self.api.GetForegroundWindow()
        if fg == 0:  # NULL while activation changes hands
            return False
        return fg == handle or self.api.GetAncestor(fg, GA_ROOT) == handle

    def screen(self) -> Rect:
        """The virtual desktop (all monitors), physical pixels once DPI aware."""
        m = self.api.GetSystemMetrics
        return Rect(
            m(SM_XVIRTUALSCREEN),
            m(SM_YVIRTUALSCREEN),
            m(SM_CXVIRTUALSCREEN),
            m(SM_CYVIRTUALSCREEN),
        )

    def scale(self, handle: int) -> float | None:
        dpi = self.api.GetDpiForWindow(handle)
        return None if dpi == 0 else dpi / USER_DEFAULT_DPI

    def close(self) -> None:
        return None


def elevation(api: Win32Api, handle: int | None) -> dict[str, Any]:
    """Whether the recorder and the target window's process run elevated.

    Windows keeps input to an elevated window away from the low-level hooks of a process that
    is not elevated (UIPI): the recorder would log nothing while the game has focus. A token
    that a non-elevated process may not open (ERROR_ACCESS_DENIED) belongs to a process above
    it, which is how the mismatch shows.
    """
    me = api.TokenElevation(api.GetCurrentProcessId())
    out: dict[str, Any] = {"recorder_elevated": me, "target_elevated": None, "mismatch": False}
    if handle is None:
        return out
    pid = api.GetWindowThreadProcessId(handle)
    if pid == 0:
        out["target_elevated"] = None
        return out
    try:
        target = api.TokenElevation(pid)
    except AccessDeniedError:
        target = not me  # denied to a non-elevated caller: the target is above us
    out["target_elevated"] = target
    out["mismatch"] = bool(target and not me)
    return out


class Win32Input:
    """pynput's Windows hooks with each hook's own ``time`` (the tick count, ms) mapped to the
    recorder's clock.

    pynput calls ``win32_event_filter(msg, data)`` on the hook thread, then dispatches the
    callbacks on its message-loop thread: the filter stamps the event (clock reading and the
    hook's tick) and the callback takes the stamp of its event back, matched by key or position.
    The tick count advances in timer ticks (10-16 ms), so it bounds the time from above only
    loosely; the hook-thread reading usually wins.
    """

    keyed = True

    def __init__(self, api: Win32Api | None = None) -> None:
        self._api = api
        self._stamps: deque[tuple[Any, int]] = deque(maxlen=256)
        self._lock = threading.Lock()
        self._offset_ns: int | None = None

    def _tick_offset(self) -> int:
        """recorder clock - tick count (ns), from one paired reading."""
        if self._offset_ns is None:
            api = self._api if self._api is not None else real_api()
            before = time.monotonic_ns()
            tick = api.GetTickCount()
            after = time.monotonic_ns()
            self._offset_ns = (before + after) // 2 - tick * 1_000_000
        return self._offset_ns

    def stamp(self, key: Any, tick_ms: int, now_ns: int | None = None) -> int:
        now = time.monotonic_ns() if now_ns is None else now_ns
        offset = self._tick_offset()
        mapped = unwrap_ms(now - offset, tick_ms, period_ms=16)
        t = now if mapped is None else min(now, mapped + offset)
        with self._lock:
            self._stamps.append((key, t))
        return t

    def _filter(self, msg: int, data: Any) -> bool:
        key = getattr(data, "vkCode", None)
        if key is None:
            pt = getattr(data, "pt", None)
            key = None if pt is None else (int(pt.x), int(pt.y))
        self.stamp(key, int(getattr(data, "time", 0)))
        return True

    def listener_options(self) -> dict[str, Any]:
        # The listeners run in a process of their own: it must be per-monitor DPI aware too,
        # or the hooks' positions are scaled (1920 wide on a 2880-pixel 150 % display).
        make_dpi_aware(self._api if self._api is not None else real_api())
        return {"win32_event_filter": self._filter}

    def to_pixels(self, x: float, y: float) -> tuple[float, float]:
        return x, y  # physical pixels once DPI aware

    def wrap(self, listener_cls: Any) -> Any:
        return listener_cls

    def event_time_ns(self, now_ns: int | None = None, key: Any = None) -> int:
        """The stamp of the oldest pending event with ``key`` (older unmatched ones dropped)."""
        now = time.monotonic_ns() if now_ns is None else now_ns
        with self._lock:
            while self._stamps:
                k, t = self._stamps.popleft()
                if key is None or k == key:
                    return min(t, now)
        return now


def check_display() -> str:
    """Windows always has a desktop for an interactive session; a service has none."""
    return "windows-desktop"


def webcam_input(device: int | str) -> tuple[str, str]:
    """``(url, format)`` for PyAV: DirectShow names cameras (``video=Integrated Camera``)."""
    return f"video={device}", "dshow"


def open_backend() -> Win32Backend:
    return Win32Backend(real_api())


def permission_checks(handle: int | None, api: Win32Api | None = None) -> list[Check]:
    """DPI awareness, elevation mismatch, and the resolution of the recorder's clock."""
    api = api if api is not None else real_api()
    checks: list[Check] = []
    awareness = make_dpi_aware(api)
    if awareness == DPI_AWARENESS_PER_MONITOR:
        checks.append(Check("dpi-awareness", "ok", "per-monitor DPI aware: physical pixels"))
    else:
        checks.append(
            Check(
                "dpi-awareness",
                "fail",
                f"the process is not per-monitor DPI aware (awareness {awareness}): window "
                "rectangles and mouse positions would be scaled, not pixels",
                "start the recorder before anything in the process sets DPI awareness, or "
                "remove a dpiAware override from python.exe's compatibility settings",
                "screen",
            )
        )
    try:
        elev = elevation(api, handle)
    except (AccessDeniedError, CaptureDeviceError) as exc:
        checks.append(Check("elevation", "warn", f"cannot read process elevation ({exc})"))
    else:
        if elev["mismatch"]:
            checks.append(
                Check(
                    "elevation",
                    "fail",
                    "the game runs elevated (as administrator) and the recorder does not: "
                    "Windows keeps its input away from the recorder's hooks",
                    "run the recorder from an elevated terminal too, or start the game without "
                    "administrator rights",
                    "input",
                    data=elev,
                )
            )
        else:
            checks.append(
                Check("elevation", "ok", "recorder and game at the same level", data=elev)
            )
    res = time.get_clock_info("monotonic").resolution
    if res > 0.001:
        checks.append(
            Check(
                "clock",
                "warn",
                f"time.monotonic ticks every {res * 1e3:.1f} ms on this Python (GetTickCount64)",
                "use Python 3.13 or later, whose monotonic clock is QueryPerformanceCounter",
            )
        )
    else:
        checks.append(Check("clock", "ok", f"monotonic clock resolution {res * 1e6:.2f} us"))
    return checks


_REAL: Any = None


def real_api() -> Win32Api:
    """The ctypes table (only on Windows)."""
    global _REAL  # noqa: PLW0603 - one table per process, like python-mss's WinDLL handles
    if _REAL is None:
        if sys.platform != "win32":
            raise CaptureDeviceError("the Windows backend runs on Windows only")
        from ._win32_ctypes import ctypes_api

        _REAL = ctypes_api()
    return _REAL  # type: ignore[no-any-return]
