"""Finding the target window and following it: one interface, one backend per platform.

Linux/X11 is implemented with python-xlib: the window is found by its exact title through the
EWMH client list (``_NET_CLIENT_LIST``) when a window manager publishes one, else by walking the
window tree (bare X servers such as Xvfb have no window manager). Focus comes from
``_NET_ACTIVE_WINDOW`` when present, else from the X input focus. macOS and Windows are refused
with a clear "not supported yet" error. Titles match exactly, never by substring, so a browser tab
*about* the game is never captured.

python-xlib connections are not thread-safe: every thread that needs one calls
:func:`open_backend` for its own.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from typing import Any, Protocol

from Xlib import display as xdisplay
from Xlib import error as xerror

from aiconfig import CaptureDeviceError

__all__ = [
    "Rect",
    "WindowBackend",
    "WindowGoneError",
    "WindowInfo",
    "check_display",
    "open_backend",
]


@dataclass(frozen=True, slots=True)
class Rect:
    left: int
    top: int
    width: int
    height: int

    def as_mss(self) -> dict[str, int]:
        return {"left": self.left, "top": self.top, "width": self.width, "height": self.height}

    def clamp_into(self, outer: Rect) -> Rect:
        """Same size, moved (not shrunk) so it lies inside ``outer`` where possible."""
        width = min(self.width, outer.width)
        height = min(self.height, outer.height)
        left = min(max(self.left, outer.left), outer.left + outer.width - width)
        top = min(max(self.top, outer.top), outer.top + outer.height - height)
        return Rect(left, top, width, height)


@dataclass(frozen=True, slots=True)
class WindowInfo:
    handle: int
    title: str
    rect: Rect


class WindowGoneError(Exception):
    """The target window was closed (or destroyed) while being followed."""


class WindowBackend(Protocol):
    def find(self, title: str) -> WindowInfo | None: ...
    def geometry(self, handle: int) -> Rect: ...
    def has_focus(self, handle: int) -> bool: ...
    def screen(self) -> Rect: ...
    def close(self) -> None: ...


def check_display() -> str:
    """Return the X display name, or raise a one-line error saying what to do."""
    if sys.platform == "darwin":
        raise CaptureDeviceError(
            "screen capture on macOS is not supported yet; record on Linux/X11 for now"
        )
    if sys.platform.startswith("win"):
        raise CaptureDeviceError(
            "screen capture on Windows is not supported yet; record on Linux/X11 for now"
        )
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


def open_backend() -> WindowBackend:
    """The backend for this platform, connected for the calling thread."""
    return X11Backend(check_display())


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
