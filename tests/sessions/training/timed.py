"""Record a real session on Xvfb with XTEST input injected at known frames.

The recorder's frame ``i`` is on screen from ``t0 + i/fps`` to ``t0 + (i+1)/fps`` (``t0`` =
``start_monotonic_ns``). Each input is injected (press and release) in the middle of a target
frame, and its monotonic time bracket kept; the expected frame comes from that bracket alone.
An injection whose bracket comes within 2 ms of a frame boundary (a loaded machine delayed it)
is kept with its bracket in ``ambiguous`` rather than given a guessed frame.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.capture.capture_helpers import REPO, Injector, open_window, run_env, start_recording

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
    ambiguous: dict[str, tuple[float, float]] = field(default_factory=dict)  # frame bracket


def _frame_of(t_ns: int, t0: int) -> float:
    return (t_ns - t0) * FPS / 1e9


def _wait_until(t_ns: int) -> None:
    while (left := t_ns - time.monotonic_ns()) > 0:
        time.sleep(min(left / 1e9, 0.005) if left > 2_000_000 else 0)


def _start_with_config(out: Path, seconds: int, state: Path) -> subprocess.Popen[str]:
    """``aiconfig capture --config experiments/baseline.yaml`` (signed): the session carries
    the config's provenance."""
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "aiconfig", "capture", "--config",
            str(REPO / "experiments" / "baseline.yaml"), "--duration", str(seconds),
            "--out", str(out), "--run-id", "timed-run", "--data-root", str(state), "--quiet",
        ],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=run_env(),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not list(out.rglob("session_*/metadata.json")):
        assert time.monotonic() < deadline and proc.poll() is None, (
            proc.stderr.read() if proc.stderr and proc.poll() is not None else "no session"
        )
        time.sleep(0.05)
    return proc


def record_timed_session(
    out: Path, *, seconds: int = 3, config_state: Path | None = None
) -> Injected:
    """Record ``seconds`` of the stand-in window while XTEST taps each of :data:`TAP_KEYS` in a
    frame of its own, right-clicks, scrolls and moves the pointer, each mid-frame. With
    ``config_state`` the signed baseline drives the recorder (``aiconfig capture``)."""
    win = open_window("League of Legends", WINDOW)
    inj = Injector()
    try:
        if config_state is None:
            proc = start_recording(out, "--duration", str(seconds), "--fps", str(FPS), "--quiet")
        else:
            proc = _start_with_config(out, seconds, config_state)
        session = next(p.parent for p in out.rglob("session_*/metadata.json"))
        t0 = int(json.loads((session / "metadata.json").read_text())["start_monotonic_ns"])
        inj.focus(win.handle)
        result = Injected(session)
        x0, y0 = WINDOW[:2]

        def at(frame: int) -> int:
            return t0 + int((frame + 0.4) * 1e9 / FPS)

        margin = 0.002 * FPS  # 2 ms in frames (X server times are whole milliseconds)

        def seen(name: str, before: int, after: int) -> int | None:
            lo, hi = _frame_of(before, t0), _frame_of(after, t0)
            first = int(lo - margin)
            if first == int(hi + margin) and first == int(lo) and lo >= 0:
                return first
            result.ambiguous[name] = (lo, hi)
            return None

        frame = 12
        for key in TAP_KEYS:
            code = inj.keycode(key)
            _wait_until(at(frame))
            before, _ = inj.key_press(code)
            time.sleep(0.002)
            _, after = inj.key_release(code)
            if (got := seen(key, before, after)) is not None:
                result.keys[key] = got
            frame += 4
        _wait_until(at(frame))
        before, _ = inj.move(x0 + 80, y0 + 60)
        _, after = inj.move(x0 + 240, y0 + 60)
        if (got := seen("move", before, after)) is not None:
            result.move = (got, 240, 60)
        frame += 4
        _wait_until(at(frame))
        before, _ = inj.button(3, True)
        time.sleep(0.002)
        _, after = inj.button(3, False)
        if (got := seen("right_click", before, after)) is not None:
            result.right_click = got
        frame += 4
        _wait_until(at(frame))
        before, _ = inj.button(4, True)
        _, after = inj.button(4, False)
        if (got := seen("scroll", before, after)) is not None:
            result.scroll_up = got
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        return result
    finally:
        inj.close()
        win.close()
