"""Linux/X11: python-xlib for windows, mss (XShm) for pixels, pynput's Xlib listeners for input,
PulseAudio/PipeWire monitor sources for system audio, v4l2 for webcams.

The window is found by its exact title through the EWMH client list (``_NET_CLIENT_LIST``) when a
window manager publishes one, else by walking the window tree (bare X servers such as Xvfb have
no window manager). Focus comes from ``_NET_ACTIVE_WINDOW`` when present, else from the X input
focus. Titles match exactly, never by substring, so a browser tab *about* the game is never
captured. python-xlib connections are not thread-safe: every thread opens its own backend.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

from Xlib import display as xdisplay
from Xlib import error as xerror

from aiconfig import CaptureDeviceError

from ._base import Check, Rect, WindowGoneError, WindowInfo, unwrap_ms

__all__ = [
    "NAME",
    "X11Backend",
    "X11Input",
    "check_display",
    "open_backend",
    "permission_checks",
    "webcam_input",
]

NAME = "x11"


def check_display() -> str:
    """The X display name, or a one-line error saying what to do."""
    display = os.environ.get("DISPLAY", "")
    if not display:
        if os.environ.get("WAYLAND_DISPLAY"):
            raise CaptureDeviceError(
                "this is a Wayland session without X11 (DISPLAY is unset); capture needs X11: "
                "log in to an X11 session or start XWayland and set DISPLAY"
            )
        raise CaptureDeviceError(
            "no X display (DISPLAY is unset); run inside an X11 session, or start a virtual one "
            "with 'Xvfb :99 -screen 0 1920x1080x24 &' and set DISPLAY=:99"
        )
    return display


def open_backend() -> X11Backend:
    return X11Backend(check_display())


def webcam_input(device: int | str) -> tuple[str, str]:
    """``(url, format)`` of a camera for PyAV: ``/dev/videoN`` through v4l2."""
    return (f"/dev/video{device}" if isinstance(device, int) else device), "v4l2"


_server_time = threading.local()


class X11Input:
    """pynput's Xlib listeners, remembering each X event's server time (ms) while its callback
    runs (same thread). An X server on this machine stamps events with CLOCK_MONOTONIC in whole
    milliseconds (a 32-bit counter); the callback's own clock reading is an upper bound late by
    the X server -> RECORD -> pynput path: the earlier of the two is kept."""

    keyed = False

    def listener_options(self) -> dict[str, Any]:
        return {}

    def to_pixels(self, x: float, y: float) -> tuple[float, float]:
        return x, y  # X11 coordinates are pixels

    def wrap(self, listener_cls: Any) -> Any:
        if not hasattr(listener_cls, "_handle_message"):
            return listener_cls

        class WithServerTime(listener_cls):  # type: ignore[misc]
            def _handle_message(self, *args: Any) -> None:
                _server_time.ms = getattr(args[1], "time", None) if len(args) > 1 else None
                try:
                    super()._handle_message(*args)
                finally:
                    _server_time.ms = None

            def _stop_platform(self) -> None:
                super()._stop_platform()
                # pynput (1.8.x) disables the RECORD context on the connection that is blocked
                # reading it, so the listener thread wakes only at the next X event: join()
                # then waited out its timeout and every stop took seconds longer with input
                # logging on (moses-palmer/pynput#583, open). Disabling it through the other
                # connection, and flushing, ends the recording at once.
                with contextlib.suppress(Exception):
                    self._display_stop.record_disable_context(self._context)
                    self._display_stop.flush()

        return WithServerTime

    def event_time_ns(self, now_ns: int | None = None, key: Any = None) -> int:
        import time

        now = time.monotonic_ns() if now_ns is None else now_ns
        ms = getattr(_server_time, "ms", None) if key is None else key
        if ms is None:
            return now
        mapped = unwrap_ms(now, int(ms))
        return now if mapped is None else mapped


class X11Backend:
    """EWMH-aware window lookup on one python-xlib connection."""

    def __init__(self, display: str) -> None:
        try:
            self._d: Any = xdisplay.Display(display)
        except (xerror.DisplayError, xerror.ConnectionClosedError, OSError) as exc:
            raise CaptureDeviceError(
                f"cannot connect to X display {display!r} ({exc}); check DISPLAY and that the "
                "X server allows this user (xhost/XAUTHORITY)"
            ) from exc
        self._root: Any = self._d.screen().root
        self._atoms = {
            name: self._d.intern_atom(name)
            for name in ("_NET_CLIENT_LIST", "_NET_WM_NAME", "_NET_ACTIVE_WINDOW", "UTF8_STRING")
        }

    # -- lookup -------------------------------------------------------------------------
    def _title(self, win: Any) -> str | None:
        try:
            prop = win.get_full_property(self._atoms["_NET_WM_NAME"], self._atoms["UTF8_STRING"])
            if prop is not None and prop.value:
                value = prop.value
                return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            name = win.get_wm_name()
        except Exception:  # noqa: BLE001 - a window vanishing mid-walk is normal
            return None
        if isinstance(name, bytes):
            return name.decode("latin-1")
        return name if isinstance(name, str) and name else None

    def _candidates(self) -> list[Any]:
        prop = self._root.get_full_property(self._atoms["_NET_CLIENT_LIST"], 0)
        if prop is not None and len(prop.value):
            return [self._d.create_resource_object("window", int(w)) for w in prop.value]
        found: list[Any] = []
        stack = [self._root]
        while stack:
            win = stack.pop()
            try:
                children = win.query_tree().children
            except Exception:  # noqa: BLE001, S112 - destroyed while walking: skip it
                continue
            found.extend(children)
            stack.extend(children)
        return found

    def find(self, title: str) -> WindowInfo | None:
        for win in self._candidates():
            if self._title(win) != title:
                continue
            try:
                attrs = win.get_attributes()
                if attrs.map_state != 2:  # IsViewable
                    continue
                rect = self.geometry(win.id)
            except Exception:  # noqa: BLE001, S112 - vanished between list and query: skip it
                continue
            return WindowInfo(handle=int(win.id), title=title, rect=rect)
        return None

    # -- following ----------------------------------------------------------------------
    def geometry(self, handle: int) -> Rect:
        win = self._d.create_resource_object("window", handle)
        try:
            geo = win.get_geometry()
            pos = win.translate_coords(self._root, 0, 0)
        except (xerror.BadWindow, xerror.BadDrawable) as exc:
            raise WindowGoneError(str(exc)) from exc
        return Rect(-int(pos.x), -int(pos.y), int(geo.width), int(geo.height))

    def _is_within(self, child: int, ancestor: int) -> bool:
        win = self._d.create_resource_object("window", child)
        root_id = int(self._root.id)
        for _ in range(64):
            if int(win.id) == ancestor:
                return True
            if int(win.id) == root_id:
                return False
            try:
                win = win.query_tree().parent
            except Exception:  # noqa: BLE001
                return False
            if win is None or int(win.id) == 0:
                return False
        return False

    def has_focus(self, handle: int) -> bool:
        prop = self._root.get_full_property(self._atoms["_NET_ACTIVE_WINDOW"], 0)
        if prop is not None and len(prop.value) and int(prop.value[0]) != 0:
            return self._is_within(int(prop.value[0]), handle)
        focus = self._d.get_input_focus().focus
        if isinstance(focus, int):  # None (0) or PointerRoot (1): the window under the pointer
            if focus == 0:
                return False
            pointer = self._root.query_pointer()
            child = pointer.child
            return child is not None and child != 0 and self._is_within(int(child.id), handle)
        return self._is_within(int(focus.id), handle)

    def screen(self) -> Rect:
        geo = self._root.get_geometry()
        return Rect(0, 0, int(geo.width), int(geo.height))

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing twice or after the server died
            self._d.close()


def permission_checks(handle: int | None) -> list[Check]:
    """X11 has no capture permissions: any client of the display may read it."""
    try:
        backend = open_backend()
    except CaptureDeviceError as exc:
        return [Check("x11-connection", "fail", str(exc).split(";")[0], _fix(exc), "screen")]
    try:
        screen = backend.screen()
    finally:
        backend.close()
    return [
        Check(
            "x11-connection",
            "ok",
            f"connected to {os.environ.get('DISPLAY')}, screen {screen.width}x{screen.height}",
        )
    ]


def _fix(exc: Exception) -> str | None:
    text = str(exc)
    return text.split(";", 1)[1].strip() if ";" in text else None
