"""The platform seam (python-mss's model): one interface, one backend module per platform, and
only the backend of the platform in use is imported.

=========  ==============================  =================================================
platform   module                          windows / pixels / input / audio / webcam
=========  ==============================  =================================================
Linux      :mod:`capture.platforms.x11`    python-xlib / mss XShm / pynput Xlib / PulseAudio
                                           monitor / v4l2
Windows    :mod:`capture.platforms.win32`  user32+dwmapi (ctypes) / mss GDI or Windows
                                           Graphics Capture / pynput hooks / WASAPI loopback
                                           / dshow
macOS      :mod:`capture.platforms.darwin` Quartz window list / ScreenCaptureKit or mss /
                                           pynput taps / BlackHole loopback / avfoundation
=========  ==============================  =================================================

The recorder, timeline, writers and session code call the functions below and never branch on
the platform. Backends connect per thread (python-xlib connections are not thread-safe): every
thread that needs one calls :func:`open_backend` for its own.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any, cast

from ._base import (
    AccessDeniedError,
    Check,
    Grabber,
    InputHooks,
    Rect,
    WindowBackend,
    WindowGoneError,
    WindowInfo,
)

__all__ = [
    "AccessDeniedError",
    "Check",
    "Grabber",
    "InputHooks",
    "Rect",
    "WindowBackend",
    "WindowGoneError",
    "WindowInfo",
    "audio_loopback",
    "check_display",
    "input_hooks",
    "open_backend",
    "open_grabber",
    "platform_name",
    "webcam_input",
]


def platform_name(platform: str | None = None) -> str:
    """``x11``, ``win32`` or ``darwin``: the backend module for ``platform`` (``sys.platform``)."""
    plat = sys.platform if platform is None else platform
    if plat == "win32":
        return "win32"
    if plat == "darwin":
        return "darwin"
    return "x11"


def _choose_impl() -> ModuleType:
    """Import the backend of this platform only (the others may not even import here)."""
    return importlib.import_module(f".{platform_name()}", __name__)


def check_display() -> str:
    """The display this backend records, or a one-line error saying what to do."""
    return cast(str, _choose_impl().check_display())


def open_backend() -> WindowBackend:
    """The window backend for this platform, connected for the calling thread."""
    return cast(WindowBackend, _choose_impl().open_backend())


def webcam_input(device: int | str) -> tuple[str, str]:
    """``(url, PyAV format)`` naming camera ``device`` on this platform."""
    return cast(tuple[str, str], _choose_impl().webcam_input(device))


_hooks: InputHooks | None = None


def input_hooks() -> InputHooks:
    """pynput listener options and the event-time mapping of this platform (one per process)."""
    global _hooks  # noqa: PLW0603 - the mapping keeps state shared by both listeners
    if _hooks is None:
        impl = _choose_impl()
        cls = {"x11": "X11Input", "win32": "Win32Input", "darwin": "DarwinInput"}[impl.NAME]
        _hooks = cast(InputHooks, getattr(impl, cls)())
    return _hooks


def open_grabber(
    handle: int | None, title: str | None, rect: Rect, *, fps: int = 30, prefer: str = "auto"
) -> Grabber:
    """A grabber for the calling thread: the system capture API where one is usable (``prefer``
    ``auto``), else mss. ``prefer="mss"`` forces mss. ``rect`` is the window's pixel rectangle
    (its size sets a system capture's output size)."""
    from .grabbers import MssGrabber, WgcGrabber

    name = platform_name()
    if name == "win32" and prefer != "mss" and handle is not None:
        try:
            return WgcGrabber(handle)
        except Exception:  # noqa: BLE001, S110 - binding absent or WGC refused: mss instead
            pass
    if name == "darwin":
        from .sck import open_darwin_grabber

        return open_darwin_grabber(handle, rect, fps=fps, prefer=prefer)
    return MssGrabber()


def audio_loopback() -> Any:
    """This platform's system-audio loopback (:mod:`capture.platforms.loopback`)."""
    from . import loopback

    return loopback.for_platform(platform_name())
