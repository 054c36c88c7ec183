"""One contract for every window backend: the X11 backend on a real Xvfb, the Windows and macOS
backends over fakes of their OS boundary (tests/capture/platform_fakes.py, which follow the
documented API behaviour, errors included).

Each world opens real-enough windows with sizes given in physical pixels; the backend must
find them by exact title, report pixels (a 150 % Windows display, a Retina Mac), follow a move,
see focus, skip hidden windows, and raise :class:`WindowGoneError` once a window is closed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import pytest

from capture.platforms import Rect, WindowBackend, WindowGoneError
from capture.platforms.darwin import DarwinBackend
from capture.platforms.win32 import Win32Backend
from tests.capture.platform_fakes import FakeAppKit, FakeQuartz, FakeWin32


class World(Protocol):
    screen: Rect

    def backend(self) -> WindowBackend: ...
    def open(self, title: str, rect: tuple[int, int, int, int]) -> int: ...
    def move(self, handle: int, left: int, top: int) -> None: ...
    def hide(self, handle: int) -> None: ...
    def close(self, handle: int) -> None: ...
    def focus(self, handle: int) -> None: ...
    def cleanup(self) -> None: ...


class X11World:
    """Real windows (tests/capture/testwin.py) on the suite's Xvfb (1920x1080)."""

    screen = Rect(0, 0, 1920, 1080)

    def __init__(self) -> None:
        from Xlib import display

        from tests.capture.capture_helpers import Injector

        self.d: Any = display.Display()
        self.inj = Injector()
        self.wins: dict[int, Any] = {}

    def backend(self) -> WindowBackend:
        from capture.platforms.x11 import open_backend

        return open_backend()

    def open(self, title: str, rect: tuple[int, int, int, int]) -> int:
        from tests.capture.capture_helpers import open_window

        win = open_window(title, rect)
        self.wins[win.handle] = win
        return win.handle

    def _win(self, handle: int) -> Any:
        return self.d.create_resource_object("window", handle)

    def move(self, handle: int, left: int, top: int) -> None:
        self._win(handle).configure(x=left, y=top)
        self.d.sync()

    def hide(self, handle: int) -> None:
        self._win(handle).unmap()
        self.d.sync()

    def close(self, handle: int) -> None:
        import time

        self.wins.pop(handle).close()
        time.sleep(0.1)  # the server has destroyed it once the client is gone

    def focus(self, handle: int) -> None:
        self.inj.focus(handle)

    def cleanup(self) -> None:
        for win in self.wins.values():
            win.close()
        self.inj.close()
        self.d.close()


class Win32World:
    """A 2880x1620 display at 150 % (DPI 144); the process starts DPI unaware."""

    screen = Rect(0, 0, 2880, 1620)

    def __init__(self) -> None:
        self.api = FakeWin32()

    def backend(self) -> WindowBackend:
        return Win32Backend(self.api)

    def open(self, title: str, rect: tuple[int, int, int, int]) -> int:
        return self.api.open(title, rect)

    def move(self, handle: int, left: int, top: int) -> None:
        win = self.api.windows[handle]
        l0, t0, r0, b0 = win.rect
        win.rect = (left, top, left + r0 - l0, top + b0 - t0)

    def hide(self, handle: int) -> None:
        self.api.windows[handle].iconic = True

    def close(self, handle: int) -> None:
        self.api.close(handle)

    def focus(self, handle: int) -> None:
        self.api.foreground = handle

    def cleanup(self) -> None:
        return None


class DarwinWorld:
    """A Retina display: 1440x900 points, backing scale 2."""

    screen = Rect(0, 0, 2880, 1800)

    def __init__(self) -> None:
        self.q = FakeQuartz()
        self.appkit = FakeAppKit()
        self.pids: dict[int, int] = {}

    def backend(self) -> WindowBackend:
        return DarwinBackend(self.q, self.appkit)

    def open(self, title: str, rect: tuple[int, int, int, int]) -> int:
        pid = 5000 + len(self.pids)
        wid = self.q.open(title, rect, pid=pid)
        self.pids[wid] = pid
        return wid

    def move(self, handle: int, left: int, top: int) -> None:
        bounds = self.q.find(handle)[self.q.kCGWindowBounds]
        bounds["X"], bounds["Y"] = left / self.q.scale, top / self.q.scale

    def hide(self, handle: int) -> None:
        self.q.find(handle)[self.q.kCGWindowIsOnscreen] = False

    def close(self, handle: int) -> None:
        self.q.windows.remove(self.q.find(handle))

    def focus(self, handle: int) -> None:
        info = self.q.find(handle)
        self.q.windows.remove(info)
        self.q.windows.insert(0, info)
        self.appkit.front_pid = self.pids[handle]

    def cleanup(self) -> None:
        return None


@pytest.fixture(
    params=[
        pytest.param("x11", marks=pytest.mark.x11),
        "win32",
        "darwin",
    ]
)
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    if request.param == "x11":
        request.getfixturevalue("xvfb")
    worlds: dict[str, type[World]] = {"x11": X11World, "win32": Win32World, "darwin": DarwinWorld}
    made = worlds[request.param]()
    try:
        yield made
    finally:
        made.cleanup()


def test_finds_by_exact_title_in_physical_pixels(world: World) -> None:
    handle = world.open("League of Legends", (300, 150, 640, 360))
    world.open("League of Legends - Wiki", (10, 10, 200, 100))  # never by substring
    backend = world.backend()
    try:
        info = backend.find("League of Legends")
        assert info is not None and info.handle == handle
        assert info.title == "League of Legends"
        assert info.rect == Rect(300, 150, 640, 360)
        assert backend.find("League of") is None
        assert backend.find("league of legends") is None
        assert backend.screen() == world.screen
    finally:
        backend.close()
        backend.close()  # twice is fine


def test_follows_a_move(world: World) -> None:
    handle = world.open("League of Legends", (100, 100, 320, 240))
    backend = world.backend()
    try:
        assert backend.geometry(handle) == Rect(100, 100, 320, 240)
        world.move(handle, 900, 500)
        assert backend.geometry(handle) == Rect(900, 500, 320, 240)
    finally:
        backend.close()


def test_focus_follows_the_foreground_window(world: World) -> None:
    game = world.open("League of Legends", (0, 0, 320, 240))
    other = world.open("Browser", (400, 0, 320, 240))
    backend = world.backend()
    try:
        world.focus(game)
        assert backend.has_focus(game)
        world.focus(other)
        assert not backend.has_focus(game)
        assert backend.has_focus(other)
    finally:
        backend.close()


def test_hidden_windows_are_not_found(world: World) -> None:
    handle = world.open("League of Legends", (0, 0, 320, 240))
    world.hide(handle)
    backend = world.backend()
    try:
        assert backend.find("League of Legends") is None
    finally:
        backend.close()


def test_a_closed_window_is_gone(world: World) -> None:
    handle = world.open("League of Legends", (0, 0, 320, 240))
    backend = world.backend()
    try:
        assert backend.find("League of Legends") is not None
        world.close(handle)
        assert backend.find("League of Legends") is None
        with pytest.raises(WindowGoneError):
            backend.geometry(handle)
        assert not backend.has_focus(handle)
    finally:
        backend.close()
