"""Keyboard and mouse events (pynput), stamped on the monotonic clock and tied to video frames.

The listeners run in a child process of their own, so the recorder's busy threads (grab, convert,
encode, and the GIL they share) never delay a timestamp; CLOCK_MONOTONIC is system-wide, so the
child's stamps line up with the frame timeline. Rows travel to the parent over a pipe.

Each event is stamped with ``time.monotonic_ns()`` first thing in the listener callback, then:

* dropped unless the target window has focus at that instant (privacy; asked of the X server
  per event, on this logger's own connection, so a focus switch is never missed);
* given ``frame_ref`` = the frame on screen at that instant (:meth:`FrameClock.index_at`);
* given mouse coordinates relative to the captured region's top-left corner, so they index the
  video's pixels; the absolute screen coordinates go into ``metadata``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from aiconfig import CaptureDeviceError

from ._events import EventJournal, InputEvent
from ._timeline import FrameClock
from .platforms import input_hooks
from .windows import Rect, WindowBackend, open_backend

__all__ = ["InputLogger", "event_time_ns", "key_fields"]

_STOP_TIMEOUT_S = 5.0


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


def event_time_ns(now_ns: int | None = None, server_ms: int | None = None) -> int:
    """When the event happened, on the recorder's clock (CLOCK_MONOTONIC).

    The callback's own clock reading is an upper bound, late by the OS -> pynput path; each
    platform maps its own event time to the recorder's clock (:func:`capture.platforms.input_hooks`:
    X server time on X11, the hook's tick on Windows, the CGEvent timestamp on macOS), and the
    earlier of the two is kept. A time that does not fit (another clock) is ignored.
    """
    return input_hooks().event_time_ns(now_ns, server_ms)


def _hook_key(value: Any) -> Any:
    """What matches a callback to its hook stamp: on Windows the stamp is keyed by the virtual
    key or the pointer position; elsewhere the per-thread event time is used (``None``)."""
    if not input_hooks().keyed:  # an attribute: this runs for every key and mouse event
        return None
    if isinstance(value, tuple):
        return (int(value[0]), int(value[1]))
    return value


class _Listener:
    """pynput keyboard and mouse listeners (runs inside the logger's child process)."""

    def __init__(
        self,
        emit: Callable[[tuple[Any, ...]], None],
        clock: Callable[[], FrameClock | None],
        *,
        region: Callable[[], Rect],
        handle: int | None,
        window_id: str | None,
        session_id: str,
        mouse_moves: bool = True,
        focus_only: bool = True,
    ) -> None:
        self._send = emit
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
        # pynput connects to the display when imported: import it only once one is known good.
        from pynput import keyboard, mouse

        hooks = input_hooks()
        options = hooks.listener_options()
        kb = hooks.wrap(keyboard.Listener)(
            on_press=self._on_press, on_release=self._on_release, **options
        )
        ms = hooks.wrap(mouse.Listener)(
            on_move=self._on_move if self._mouse_moves else None,
            on_click=self._on_click,
            on_scroll=self._on_scroll,
            **options,
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
        clock = self._clock()
        if clock is None or t_ns < clock.t0_ns:  # recording has not started yet
            return
        if not self._allowed():
            return
        frame_ref = clock.index_at(t_ns)
        extra: dict[str, Any] = dict(meta or {})
        mouse_x = mouse_y = None
        if xy is not None:
            region = self._region()
            xy = input_hooks().to_pixels(*xy)  # macOS reports points; the video is pixels
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
        self._send(event.row())
        self.logged += 1

    def _on_press(self, key: Any) -> None:
        code, meta = key_fields(key)
        t_ns = event_time_ns(None, _hook_key(code))
        self._emit(t_ns, "key_press", key_code=code, meta=meta)

    def _on_release(self, key: Any) -> None:
        code, meta = key_fields(key)
        t_ns = event_time_ns(None, _hook_key(code))
        self._emit(t_ns, "key_release", key_code=code, meta=meta)

    def _on_move(self, x: float, y: float) -> None:
        t_ns = event_time_ns(None, _hook_key((x, y)))
        self._emit(t_ns, "mouse_move", xy=(x, y))

    def _on_click(self, x: float, y: float, button: Any, pressed: bool) -> None:
        t_ns = event_time_ns(None, _hook_key((x, y)))
        kind = "mouse_press" if pressed else "mouse_release"
        self._emit(t_ns, kind, xy=(x, y), button=getattr(button, "name", str(button)))

    def _on_scroll(self, x: float, y: float, dx: float, dy: float) -> None:
        t_ns = event_time_ns(None, _hook_key((x, y)))
        self._emit(t_ns, "mouse_scroll", xy=(x, y), delta=float(dy), meta={"delta_x": dx})


def _child_main(
    conn: Any,
    region: Any,
    t0: Any,
    fps: int,
    options: dict[str, Any],
) -> None:
    """Child process: listen until told to stop (or the parent dies), sending rows over ``conn``."""
    if sys.platform != "win32":  # Windows has no nice values (and no need: hooks run first)
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, -5)  # only with privilege; harmless otherwise
    parent = os.getppid()
    send_lock = threading.Lock()

    def send(row: tuple[Any, ...]) -> None:
        with send_lock:
            conn.send(("row", row))

    def current_region() -> Rect:
        with region.get_lock():
            return Rect(*region[:])

    def report(args: threading.ExceptHookArgs) -> None:
        # A listener thread died (typically: the X server went away). Tell the parent once,
        # quietly, instead of printing a traceback.
        with contextlib.suppress(Exception), send_lock:
            conn.send(("error", f"input listener failed: {args.exc_value}"))

    threading.excepthook = report

    def current_clock() -> FrameClock | None:
        value = int(t0.value)
        return None if value == 0 else FrameClock(value, fps)

    listener = _Listener(send, current_clock, region=current_region, **options)
    try:
        listener.start()
    except Exception as exc:  # noqa: BLE001 - reported to the parent as a stream failure
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    while True:
        if conn.poll(0.25):
            break
        if os.getppid() != parent:  # the recorder was killed: nothing left to send to
            with contextlib.suppress(Exception):
                listener.stop()
            return
    with contextlib.suppress(Exception):  # the X server may be gone already
        listener.stop()
    with contextlib.suppress(OSError), send_lock:
        conn.send(("done", (listener.logged, listener.suppressed)))
        conn.close()
    # Everything is sent and the listeners are stopped: skip the interpreter's finalization
    # (pynput, Xlib: hundreds of ms under load) that the recorder would otherwise wait out.
    os._exit(0)


class InputLogger:
    """Runs the pynput listeners in a child process and feeds their rows to the journal."""

    def __init__(
        self,
        journal: EventJournal,
        fps: int,
        *,
        region: Rect,
        handle: int | None,
        window_id: str | None,
        session_id: str,
        mouse_moves: bool = True,
        focus_only: bool = True,
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._journal = journal
        self._region: Any = ctx.Array("i", [region.left, region.top, region.width, region.height])
        self._t0: Any = ctx.Value("q", 0)
        self._conn, child_conn = ctx.Pipe()
        options = {
            "handle": handle,
            "window_id": window_id,
            "session_id": session_id,
            "mouse_moves": mouse_moves,
            "focus_only": focus_only,
        }
        self._proc = ctx.Process(
            target=_child_main,
            args=(child_conn, self._region, self._t0, fps, options),
            name="capture-input",
            daemon=True,
        )
        self._child_conn = child_conn
        self._reader: threading.Thread | None = None
        self._done = threading.Event()
        self.logged = 0
        self.suppressed = 0
        self.error: str | None = None

    def set_t0(self, t0_ns: int) -> None:
        """Recording started: events from ``t0_ns`` on are logged (none before)."""
        self._t0.value = t0_ns

    def set_region(self, rect: Rect) -> None:
        with self._region.get_lock():
            self._region[:] = [rect.left, rect.top, rect.width, rect.height]

    def start(self, timeout_s: float = 20.0) -> None:
        """Start the child and wait until its listeners are live; raises on failure."""
        self._proc.start()
        self._child_conn.close()
        if not self._conn.poll(timeout_s):
            self._proc.kill()
            raise CaptureDeviceError("input listener did not start within 20 s; check DISPLAY")
        kind, value = self._conn.recv()
        if kind != "ready":
            self._proc.join(timeout=_STOP_TIMEOUT_S)
            raise CaptureDeviceError(f"input listener failed: {value}")
        self._reader = threading.Thread(target=self._read, name="capture-input-rx", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            while True:
                kind, value = self._conn.recv()
                if kind == "row":
                    self._journal.add(value)
                    self.logged += 1
                elif kind == "done":
                    self.logged, self.suppressed = value
                    return
                elif kind == "error":
                    self.error = self.error or str(value)
        except (EOFError, OSError):
            self.error = self.error or "input listener exited unexpectedly"
        finally:
            self._done.set()

    def stop(self) -> None:
        """Stop the listeners and wait until every row they sent is in the journal."""
        if self._reader is not None:
            with contextlib.suppress(OSError):
                self._conn.send("stop")
            self._done.wait(_STOP_TIMEOUT_S)
        self._proc.join(timeout=_STOP_TIMEOUT_S)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        self._conn.close()
