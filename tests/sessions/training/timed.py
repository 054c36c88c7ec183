"""Record a real session on Xvfb with XTEST input injected at known frames.

The recorder's frame ``i`` is on screen from ``t0 + i/fps`` to ``t0 + (i+1)/fps`` (``t0`` =
``start_monotonic_ns``). Each input is injected (press and release) in the middle of its target
frame, and its monotonic time bracket kept: an injection whose bracket leaves the middle third of
one frame (a loaded machine) is reported as ambiguous, so the expected frame is never a guess.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.capture.capture_helpers import Injector, open_window, start_recording

WINDOW = (60, 40, 320, 240)
TAP_KEYS = ("q", "w", "e", "r", "d", "f", "a", "b", "1")
FPS = 30


@dataclass
class Injected:
    """What was injected and at which frame (computed from the injection time alone)."""

    session: Path
    keys: dict[str, int] = field(default_factory=dict)  # key -> frame
    right_click: int | None = None
    scroll_up: int | None = None
    move: tuple[int, int, int] | None = None  # frame, x, y in window pixels
    ambiguous: list[str] = field(default_factory=list)


def _frame_of(t_ns: int, t0: int) -> float:
    return (t_ns - t0) * FPS / 1e9


def _wait_until(t_ns: int) -> None:
    while (left := t_ns - time.monotonic_ns()) > 0:
        time.sleep(min(left / 1e9, 0.005) if left > 2_000_000 else 0)


def record_timed_session(out: Path, *, seconds: int = 3) -> Injected:
    """Record ``seconds`` of the stand-in window while XTEST taps each of :data:`TAP_KEYS` in a
    frame of its own, right-clicks, scrolls and moves the pointer, each mid-frame."""
    win = open_window("League of Legends", WINDOW)
    inj = Injector()
    try:
        proc = start_recording(out, "--duration", str(seconds), "--fps", str(FPS), "--quiet")
        session = next(out.glob("session_*"))
        t0 = int(json.loads((session / "metadata.json").read_text())["start_monotonic_ns"])
        inj.focus(win.handle)
        result = Injected(session)
        x0, y0, w, h = WINDOW

        def at(frame: int) -> int:
            return t0 + int((frame + 0.4) * 1e9 / FPS)

        def ok(name: str, before: int, after: int, frame: int) -> bool:
            lo, hi = _frame_of(before, t0), _frame_of(after, t0)
            if not (frame + 0.2 <= lo and hi <= frame + 0.85):
                result.ambiguous.append(f"{name}: frames {lo:.2f}..{hi:.2f}, wanted {frame}")
                return False
            return True

        frame = 12
        for key in TAP_KEYS:
            code = inj.keycode(key)
            _wait_until(at(frame))
            before, _ = inj.key_press(code)
            time.sleep(0.002)
            _, after = inj.key_release(code)
            if ok(key, before, after, frame):
                result.keys[key] = frame
            frame += 4
        _wait_until(at(frame))
        before, _ = inj.move(x0 + 80, y0 + 60)
        _, after = inj.move(x0 + 240, y0 + 60)
        if ok("move", before, after, frame):
            result.move = (frame, 240, 60)
        frame += 4
        _wait_until(at(frame))
        before, _ = inj.button(3, True)
        time.sleep(0.002)
        _, after = inj.button(3, False)
        if ok("right_click", before, after, frame):
            result.right_click = frame
        frame += 4
        _wait_until(at(frame))
        before, _ = inj.button(4, True)
        _, after = inj.button(4, False)
        if ok("scroll", before, after, frame):
            result.scroll_up = frame
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        return result
    finally:
        inj.close()
        win.close()
