"""The real :class:`~capture.platforms.win32.Win32Api`: user32, dwmapi, kernel32 and advapi32
through ctypes (Windows only; the tests use the fake in tests/capture/platform_fakes.py).

Each method keeps the Win32 function's name and return convention; ``use_last_error`` makes
``GetLastError`` the calling thread's value right after the failing call. This module imports
nothing from :mod:`.win32` (which imports it lazily): it satisfies the protocol structurally.
"""

from __future__ import annotations

import sys
from typing import Any

from aiconfig import CaptureDeviceError

from ._base import AccessDeniedError

S_OK = 0
ERROR_ACCESS_DENIED = 5

__all__ = ["ctypes_api"]


if sys.platform == "win32":
    import ctypes
    from ctypes import wintypes

    def ctypes_api() -> Any:
        return _CtypesApi()

    class _CtypesApi:
        """The real table: user32, dwmapi, kernel32 and advapi32 through ctypes."""

        def __init__(self) -> None:
            self.user32 = ctypes.WinDLL("user32", use_last_error=True)
            self.dwmapi = ctypes.WinDLL("dwmapi")
            self.kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
            self.advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)
            u = self.user32
            u.GetWindowTextLengthW.argtypes = [wintypes.HWND]
            u.GetWindowTextLengthW.restype = ctypes.c_int
            u.GetWindowTextW.argtypes = [wintypes.HWND, wintypes.LPWSTR, ctypes.c_int]
            u.GetWindowTextW.restype = ctypes.c_int
            for name in ("IsWindow", "IsWindowVisible", "IsIconic"):
                getattr(u, name).argtypes = [wintypes.HWND]
                getattr(u, name).restype = wintypes.BOOL
            u.GetForegroundWindow.argtypes = []
            u.GetForegroundWindow.restype = wintypes.HWND
            u.GetAncestor.argtypes = [wintypes.HWND, wintypes.UINT]
            u.GetAncestor.restype = wintypes.HWND
            u.GetWindowThreadProcessId.argtypes = [wintypes.HWND, ctypes.POINTER(wintypes.DWORD)]
            u.GetWindowThreadProcessId.restype = wintypes.DWORD
            u.GetSystemMetrics.argtypes = [ctypes.c_int]
            u.GetSystemMetrics.restype = ctypes.c_int
            u.GetDpiForWindow.argtypes = [wintypes.HWND]
            u.GetDpiForWindow.restype = wintypes.UINT
            u.SetProcessDpiAwarenessContext.argtypes = [ctypes.c_void_p]
            u.SetProcessDpiAwarenessContext.restype = wintypes.BOOL
            u.GetThreadDpiAwarenessContext.argtypes = []
            u.GetThreadDpiAwarenessContext.restype = ctypes.c_void_p
            u.GetAwarenessFromDpiAwarenessContext.argtypes = [ctypes.c_void_p]
            u.GetAwarenessFromDpiAwarenessContext.restype = ctypes.c_int
            self.dwmapi.DwmGetWindowAttribute.argtypes = [
                wintypes.HWND,
                wintypes.DWORD,
                ctypes.c_void_p,
                wintypes.DWORD,
            ]
            self.dwmapi.DwmGetWindowAttribute.restype = ctypes.c_long
            k = self.kernel32
            k.OpenProcess.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
            k.OpenProcess.restype = wintypes.HANDLE
            k.CloseHandle.argtypes = [wintypes.HANDLE]
            k.CloseHandle.restype = wintypes.BOOL
            k.GetCurrentProcessId.restype = wintypes.DWORD
            k.GetTickCount.restype = wintypes.DWORD
            a = self.advapi32
            a.OpenProcessToken.argtypes = [
                wintypes.HANDLE,
                wintypes.DWORD,
                ctypes.POINTER(wintypes.HANDLE),
            ]
            a.OpenProcessToken.restype = wintypes.BOOL
            a.GetTokenInformation.argtypes = [
                wintypes.HANDLE,
                ctypes.c_int,
                ctypes.c_void_p,
                wintypes.DWORD,
                ctypes.POINTER(wintypes.DWORD),
            ]
            a.GetTokenInformation.restype = wintypes.BOOL

        def EnumWindows(self) -> list[int]:
            found: list[int] = []
            proc_type = ctypes.WINFUNCTYPE(wintypes.BOOL, wintypes.HWND, wintypes.LPARAM)

            def collect(hwnd: Any, _lparam: Any) -> bool:
                found.append(int(hwnd or 0))
                return True

            self.user32.EnumWindows(proc_type(collect), 0)
            return found

        def GetWindowTextW(self, hwnd: int) -> str:
            length = self.user32.GetWindowTextLengthW(hwnd)
            if length <= 0:
                return ""
            buf = ctypes.create_unicode_buffer(length + 1)
            got = self.user32.GetWindowTextW(hwnd, buf, length + 1)
            return buf.value if got > 0 else ""

        def IsWindow(self, hwnd: int) -> bool:
            return bool(self.user32.IsWindow(hwnd))

        def IsWindowVisible(self, hwnd: int) -> bool:
            return bool(self.user32.IsWindowVisible(hwnd))

        def IsIconic(self, hwnd: int) -> bool:
            return bool(self.user32.IsIconic(hwnd))

        def DwmGetWindowAttribute_RECT(
            self, hwnd: int, attribute: int
        ) -> tuple[int, tuple[int, int, int, int]]:
            rect = wintypes.RECT()
            hr = self.dwmapi.DwmGetWindowAttribute(
                hwnd, attribute, ctypes.byref(rect), ctypes.sizeof(rect)
            )
            return int(hr) & 0xFFFFFFFF, (rect.left, rect.top, rect.right, rect.bottom)

        def GetForegroundWindow(self) -> int:
            return int(self.user32.GetForegroundWindow() or 0)

        def GetAncestor(self, hwnd: int, flags: int) -> int:
            return int(self.user32.GetAncestor(hwnd, flags) or 0)

        def GetWindowThreadProcessId(self, hwnd: int) -> int:
            pid = wintypes.DWORD(0)
            self.user32.GetWindowThreadProcessId(hwnd, ctypes.byref(pid))
            return int(pid.value)

        def GetCurrentProcessId(self) -> int:
            return int(self.kernel32.GetCurrentProcessId())

        def TokenElevation(self, pid: int) -> bool:
            process_query_limited_information, token_query, token_elevation = 0x1000, 0x0008, 20
            proc = self.kernel32.OpenProcess(process_query_limited_information, False, pid)
            if not proc:
                if ctypes.get_last_error() == ERROR_ACCESS_DENIED:
                    raise AccessDeniedError(f"OpenProcess({pid}): access denied")
                raise CaptureDeviceError(f"OpenProcess({pid}) failed ({ctypes.get_last_error()})")
            try:
                token = wintypes.HANDLE()
                if not self.advapi32.OpenProcessToken(proc, token_query, ctypes.byref(token)):
                    if ctypes.get_last_error() == ERROR_ACCESS_DENIED:
                        raise AccessDeniedError(f"OpenProcessToken({pid}): access denied")
                    raise CaptureDeviceError(f"OpenProcessToken({pid}) failed")
                try:
                    value = wintypes.DWORD(0)
                    size = wintypes.DWORD(0)
                    ok = self.advapi32.GetTokenInformation(
                        token,
                        token_elevation,
                        ctypes.byref(value),
                        ctypes.sizeof(value),
                        ctypes.byref(size),
                    )
                    if not ok:
                        raise CaptureDeviceError(f"GetTokenInformation({pid}) failed")
                    return bool(value.value)
                finally:
                    self.kernel32.CloseHandle(token)
            finally:
                self.kernel32.CloseHandle(proc)

        def SetProcessDpiAwarenessContext(self, context: int) -> bool:
            try:
                return bool(self.user32.SetProcessDpiAwarenessContext(ctypes.c_void_p(context)))
            except AttributeError:  # before Windows 10 1703: shcore's per-monitor (v1)
                hr = ctypes.windll.shcore.SetProcessDpiAwareness(2)
                return int(hr) == S_OK

        def GetThreadDpiAwareness(self) -> int:
            try:
                ctx = self.user32.GetThreadDpiAwarenessContext()
                return int(self.user32.GetAwarenessFromDpiAwarenessContext(ctx))
            except AttributeError:
                return 1 if self.user32.IsProcessDPIAware() else 0

        def GetDpiForWindow(self, hwnd: int) -> int:
            return int(self.user32.GetDpiForWindow(hwnd))

        def GetSystemMetrics(self, index: int) -> int:
            return int(self.user32.GetSystemMetrics(index))

        def GetTickCount(self) -> int:
            return int(self.kernel32.GetTickCount())

        def GetLastError(self) -> int:
            return int(ctypes.get_last_error())

else:

    def ctypes_api() -> Any:
        raise CaptureDeviceError("the Windows backend runs on Windows only")
