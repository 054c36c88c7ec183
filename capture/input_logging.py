"""Keyboard and mouse events (pynput), stamped on the monotonic clock and tied to video frames.

Each event is stamped with ``time.monotonic_ns()`` first thing in the listener callback, then:

* dropped unless the target window has focus at that instant (privacy; asked of the X server
  per event, on this logger's own connection, so a focus switch is never missed);
* given ``frame_ref`` = the frame on screen at that instant (:meth:`FrameClock.index_at`);
* given mouse coordinates relative to the captured region's top-left corner, so they index the
  video's pixels; the absolute screen coordinates go into ``metadata``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from .events import EventJournal, InputEvent
from .timeline import FrameClock
from .windows import Rect, WindowBackend, open_backend

__all__ = ["InputLogger", "key_fields"]


def key_fields(key: Any) -> tuple[int | None, dict[str, Any]]:
    """``(key_code, metadata)`` for a pynput key: the X keysym (``vk``) and a readable name."""
    name: str
    vk = getattr(key, "vk", None)
    value = getattr(key, "value", None)
    if value is not None and hasattr(value, "vk"):  # a pynput Key enum member
        vk = value.vk
        name = f"Key.{key.name}"
    else:
        char = getattr(key, "char", None)
        name = char if char is not None else f"<{vk}>"
    return (int(vk) if vk is not None else None), {"key": name}


class InputLogger:
    """Runs pynput keyboard and mouse listeners for the duration of a session."""

    def __init__(
        self,
        journal: EventJournal,
        clock: FrameClock,
        *,
        region: Callable[[], Rect],
        handle: int | None,
        window_id: str | None,
        session_id: str,
        mouse_moves: bool = True,
        focus_only: bool = True,
        frame_limit: Callable[[], int] | None = None,
    ) -> None:
        self._journal = journal
        self._clock = clock
        self._region = region
        self._handle = handle
        self._window_id = window_id
        self._session_id = session_id
        self._mouse_moves = mouse_moves
        self._focus_only = focus_only and handle is not None
        self._lock = threading.Lock()
        self._backend: WindowBackend | None = open_backend() if self._focus_only else None
        self._listeners: list[Any] = []
        self._active = False
        self.logged = 0
        self.suppressed = 0

    def start(self) -> None:
        from pynput import keyboard, mouse

        kb = keyboard.Listener(on_press=self._on_press, on_release=self._on_release)
        ms = mouse.Listener(
            on_move=self._on_move if self._mouse_moves else None,
            on_click=self._on_click,
            on_scroll=self._on_scroll,
        )
        self._listeners = [kb, ms]
        self._active = True
        for listener in self._listeners:
            listener.start()
        for listener in self._listeners:
            listener.wait()

    def stop(self) -> None:
        self._active = False
        for listener in self._listeners:
            listener.stop()
        for listener in self._listeners:
            if listener.is_alive() and listener is not threading.current_thread():
                listener.join(timeout=2.0)
        with self._lock:
            if self._backend is not None:
                self._backend.close()
                self._backend = None

    # -- callbacks ----------------------------------------------------------------------
    def _allowed(self) -> bool:
        if not self._active:
            return False
        if not self._focus_only:
            return True
        with self._lock:
            if self._backend is None or self._handle is None:
                return False
            try:
                ok = self._backend.has_focus(self._handle)
            except Exception:  # noqa: BLE001 - window gone: the session is ending anyway
                ok = False
        if not ok:
            self.suppressed += 1
        return ok

    def _emit(
        self,
        t_ns: int,
        event_type: str,
        *,
        key_code: int | None = None,
        xy: tuple[float, float] | None = None,
        button: str | None = None,
        delta: float | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        if not self._allowed():
            return
        frame_ref = max(0, self._clock.index_at(t_ns))
        extra: dict[str, Any] = dict(meta or {})
        mouse_x = mouse_y = None
        if xy is not None:
            region = self._region()
            extra["abs_x"], extra["abs_y"] = xy
            mouse_x, mouse_y = xy[0] - region.left, xy[1] - region.top
        event = InputEvent(
            t_ns=t_ns,
            event_type=event_type,
            key_code=key_code,
            mouse_x=mouse_x,
            mouse_y=mouse_y,
            mouse_button=button,
            delta=delta,
            frame_ref=frame_ref,
            window_id=self._window_id,
            session_id=self._session_id,
            metadata=extra or None,
        )
        self._journal.add(event.row())
        self.logged += 1

    def _on_press(self, key: Any) -> None:
        t_ns = time.monotonic_ns()
        code, meta = key_fields(key)
        self._emit(t_ns, "key_press", key_code=code, meta=meta)

    def _on_release(self, key: Any) -> None:
        t_ns = time.monotonic_ns()
        code, meta = key_fields(key)
        self._emit(t_ns, "key_release", key_code=code, meta=meta)

    def _on_move(self, x: float, y: float) -> None:
        t_ns = time.monotonic_ns()
        self._emit(t_ns, "mouse_move", xy=(x, y))

    def _on_click(self, x: float, y: float, button: Any, pressed: bool) -> None:
        t_ns = time.monotonic_ns()
        kind = "mouse_press" if pressed else "mouse_release"
        self._emit(t_ns, kind, xy=(x, y), button=getattr(button, "name", str(button)))

    def _on_scroll(self, x: float, y: float, dx: float, dy: float) -> None:
        t_ns = time.monotonic_ns()
        self._emit(t_ns, "mouse_scroll", xy=(x, y), delta=float(dy), meta={"delta_x": dx})
