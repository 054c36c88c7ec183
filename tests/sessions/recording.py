"""Record real sessions for the session-library tests: the recorder on Xvfb, a stand-in window
driven by XTEST (keys and mouse at known times), and a tone played into a PulseAudio null sink."""

from __future__ import annotations

import math
import subprocess
import time
import wave
from pathlib import Path

import numpy as np

from tests.capture.capture_helpers import Injector, open_window, start_recording

WINDOW = (100, 80, 320, 240)
KEYS = ("q", "w", "e", "r")


def write_tone(path: Path, hz: float = 997.0, seconds: float = 8.0, rate: int = 44100) -> None:
    t = np.arange(int(seconds * rate)) / rate
    mono = (0.4 * 32767 * np.sin(2 * math.pi * hz * t)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(mono, 2).tobytes())


def record_played_session(out: Path, tone: Path, *, seconds: int = 3) -> dict[str, int]:
    """Record the stand-in window for ``seconds`` with audio, while XTEST presses keys and
    clicks inside it. Returns how many key presses and clicks were injected."""
    win = open_window("League of Legends", WINDOW)
    player = subprocess.Popen(
        ["paplay", "--device=capsink", str(tone)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    inj = Injector()
    try:
        proc = start_recording(
            out, "--duration", str(seconds), "--fps", "30", "--audio", "--quiet", timeout=60
        )
        inj.focus(win.handle)
        time.sleep(0.3)
        x0, y0, w, h = WINDOW
        presses = clicks = 0
        for i in range(12):
            code = inj.keycode(KEYS[i % len(KEYS)])
            inj.key_press(code)
            time.sleep(0.02)
            inj.key_release(code)
            presses += 1
            inj.move(x0 + 20 + (i * 23) % (w - 40), y0 + 20 + (i * 37) % (h - 40))
            if i % 3 == 0:
                inj.button(1, True)
                inj.button(1, False)
                clicks += 1
            time.sleep(0.1)
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
        if proc.stdout is not None:
            proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()
        return {"key_press": presses, "mouse_press": clicks}
    finally:
        inj.close()
        player.terminate()
        player.wait(timeout=10)
        win.close()


def record_plain_session(out: Path, *, seconds: int = 2) -> None:
    """Record the whole screen (``--allow-any``) with no input logging and no audio."""
    proc = start_recording(
        out, "--duration", str(seconds), "--fps", "30", "--allow-any", "--no-input", "--quiet",
        timeout=60,
    )  # fmt: skip
    assert proc.wait(timeout=60) == 0
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def record_killed_session(out: Path, *, after_s: float = 2.0) -> Path:
    """Start a long recording and SIGKILL it: a real half-written session."""
    proc = start_recording(
        out, "--duration", "60", "--fps", "30", "--allow-any", "--no-input", "--quiet",
        timeout=60,
    )  # fmt: skip
    time.sleep(after_s)
    proc.kill()
    proc.wait(timeout=30)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    return next(out.glob("session_*"))


__all__ = [
    "KEYS",
    "WINDOW",
    "record_killed_session",
    "record_plain_session",
    "record_played_session",
    "write_tone",
]
