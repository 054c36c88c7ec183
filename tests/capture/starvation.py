"""CPU starvation for the capture tests and the benchmark: busy loops on every core, an X client
that keeps the X server busy, key presses into a window that repaints on each key, and the
checks that no frame shows pixels from after its slot.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.capture.capture_helpers import REPO, Injector, capture_cmd, open_window, run_env

BUSY = "while True:\n    pass\n"
X_LOAD = """
from Xlib import X, display
d = display.Display()
root = d.screen().root
w, h = d.screen().width_in_pixels, d.screen().height_in_pixels
print("ready", flush=True)
while True:
    root.get_image(0, 0, w, h, X.ZPixmap, 0xFFFFFFFF)  # the server copies the whole screen
"""
RECT = (100, 100, 320, 240)


def _palette() -> list[tuple[int, int, int]]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("testwin", REPO / "tests/capture/testwin.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.PALETTE)


def start_load(cores: int | None = None) -> list[subprocess.Popen[str]]:
    """A busy loop per core and one X client hammering the X server (GetImage of the screen)."""
    procs = [
        subprocess.Popen([sys.executable, "-c", BUSY], text=True)
        for _ in range(cores or os.cpu_count() or 2)
    ]
    xload = subprocess.Popen([sys.executable, "-c", X_LOAD], stdout=subprocess.PIPE, text=True)
    assert xload.stdout is not None and xload.stdout.readline().strip() == "ready"
    return [*procs, xload]


def stop_load(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def frame_colours(video: Path, x: int, y: int) -> list[int]:
    """Index into the test window's palette of pixel (x, y) in every frame."""
    import av
    import numpy as np

    palette = np.array(_palette(), dtype=np.float64)
    out = []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")[y, x].astype(np.float64)
            out.append(int(np.argmin(((palette - rgb) ** 2).sum(axis=1))))
    return out


def record_under_load(
    out: Path, *, seconds: float, fps: int = 30, key_period_s: float = 0.15, load: bool = True
) -> dict[str, Any]:
    """Record the test window for ``seconds`` while every core and the X server are loaded
    (``load``) and XTEST presses a key every ``key_period_s``; return the session and what was
    injected."""
    win = open_window("League of Legends", RECT)
    inj = Injector()
    load_procs: list[subprocess.Popen[str]] = []
    try:
        inj.focus(win.handle)
        code = inj.keycode("a")
        load_procs = start_load() if load else []
        proc = subprocess.Popen(
            capture_cmd(
                *("--quiet", "--duration", f"{seconds:g}", "--fps", str(fps)),
                *("--no-game-state", "--out", str(out)),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=run_env(),
        )
        deadline = time.monotonic() + 60
        while not list(out.glob("session_*/metadata.json")):
            assert proc.poll() is None and time.monotonic() < deadline, "capture did not start"
            time.sleep(0.02)
        time.sleep(0.5)
        meta0 = json.loads(next(out.glob("session_*/metadata.json")).read_text())
        end = meta0["start_monotonic_ns"] + int((seconds - 0.5) * 1e9)
        presses: list[tuple[int, int]] = []
        while time.monotonic_ns() < end:
            presses.append(inj.key_press(code))
            inj.key_release(code)
            time.sleep(key_period_s)
        stdout, stderr = proc.communicate(timeout=seconds + 120)
    finally:
        stop_load(load_procs)
        inj.close()
        win.close()
    return {"rc": proc.returncode, "stdout": stdout, "stderr": stderr, "presses": presses}


def check_slots(session: Path, presses: list[tuple[int, int]]) -> dict[str, Any]:
    """Figures and violations: fresh grabs outside their slot, frames showing a key pressed
    after their slot ended, key presses missing, frame_refs that disagree with t_ns."""
    import numpy as np
    import pyarrow.parquet as pq

    meta = json.loads((session / "metadata.json").read_text())
    fps, t0 = meta["fps"], meta["start_monotonic_ns"]
    ev = pq.read_table(session / "events.parquet").to_pydict()
    rows = list(
        zip(*(ev[k] for k in ("event_type", "stream", "t_ns", "t_capture_ns")), strict=True)
    )
    frames = [(t, c) for kind, s, t, c in rows if kind == "frame" and s == "screen"]
    dup = [
        d
        for (kind, s), d in zip(
            zip(ev["event_type"], ev["stream"], strict=True), ev["is_duplicate"], strict=True
        )
        if kind == "frame" and s == "screen"
    ]
    n = len(frames)
    slot_end = [t0 + ((i + 1) * 1_000_000_000) // fps for i in range(n)]
    outside = [
        i
        for i, ((t, c), d) in enumerate(zip(frames, dup, strict=True))
        if not d and not (t <= c < slot_end[i])
    ]
    colours = frame_colours(session / "frames.mp4", RECT[2] // 2, RECT[3] // 2)
    count, prev, future = 0, colours[0] if colours else 0, []
    for i, colour in enumerate(colours):
        count += (colour - prev) % 8  # each key press moves one colour on
        prev = colour
        if count and count <= len(presses) and presses[count - 1][0] >= slot_end[i]:
            future.append(i)
    keys = [
        (t, r)
        for kind, t, r in zip(ev["event_type"], ev["t_ns"], ev["frame_ref"], strict=True)
        if kind == "key_press"
    ]
    frame_t = np.array([t for t, _ in frames])
    bad_refs = sum(1 for t, r in keys if r != int(np.searchsorted(frame_t, t, side="right")) - 1)
    lag = [(c - t) / 1e6 for (t, c), d in zip(frames, dup, strict=True) if not d]
    return {
        "frames": n,
        "video_frames": len(colours),
        "fresh": n - sum(dup),
        "padded": meta["padded_frames"],
        "dropped": meta["dropped_frames"],
        "actual_fps": meta["actual_fps"],
        "capture_fps": meta["capture_fps"],
        "key_presses_injected": len(presses),
        "key_presses_recorded": len(keys),
        "frame_ref_mismatches": bad_refs,
        "fresh_outside_slot": outside,
        "frames_showing_a_later_key": future,
        "colour_changes_seen": count,
        "grab_lag_ms_p50": round(float(np.percentile(lag, 50)), 3) if lag else None,
        "grab_lag_ms_max": round(float(max(lag)), 3) if lag else None,
        "valid": meta["validation"]["ok"],
        "problems": meta["validation"]["problems"],
    }
