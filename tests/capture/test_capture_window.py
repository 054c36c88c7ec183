"""Window targeting on a real X server: absent window, a window that moves, one that closes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.capture.capture_helpers import (
    Injector,
    open_window,
    run_cli,
    start_recording,
)

pytestmark = [pytest.mark.x11]


def test_absent_window_is_refused(xvfb: str, tmp_path: Path) -> None:
    proc = run_cli("--duration", "1", "--out", str(tmp_path), "--window-title", "No Such Game")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1
    assert "No Such Game" in proc.stderr and "--allow-any" in proc.stderr
    assert not list(tmp_path.glob("session_*"))  # nothing recorded
    manifest = json.loads((tmp_path / "manifest.json").read_text())  # the run says why
    assert manifest["status"] == "failed" and "No Such Game" in manifest["error"]
    assert manifest["artifacts"] == []


@pytest.mark.slow
def test_follows_a_moving_window_and_stops_when_it_closes(
    xvfb: str, injector: Injector, tmp_path: Path
) -> None:
    import av
    from Xlib import display

    win = open_window("League of Legends", (100, 100, 320, 240))
    closed = False
    try:
        injector.focus(win.handle)
        proc = start_recording(tmp_path, "--duration", "20", "--quiet")
        time.sleep(1.5)  # listeners up
        d = display.Display()
        d.create_resource_object("window", win.handle).configure(x=900, y=500)
        d.sync()
        d.close()
        time.sleep(0.5)
        injector.move(900 + 10, 500 + 20)
        time.sleep(0.5)
        win.close()
        closed = True
        out, err = proc.communicate(timeout=30)
    finally:
        if not closed:
            win.close()
    assert proc.returncode == 0, err
    session = Path(out.strip())
    meta = json.loads((session / "metadata.json").read_text())
    assert meta["stop_reason"] == "window_closed"
    assert meta["window"]["moves"] >= 1
    assert meta["screen_resolution"] == [320, 240]
    assert meta["duration_s"] < 10
    events = pq.read_table(session / "events.parquet").to_pydict()
    moves = [
        (x, y)
        for kind, x, y in zip(
            events["event_type"], events["mouse_x"], events["mouse_y"], strict=True
        )
        if kind == "mouse_move"
    ]
    assert moves and moves[-1] == (10.0, 20.0)
    # The picture followed the window: the last frames still show its red fill.
    with av.open(str(session / "frames.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == meta["frame_count"]
    red = [
        np.abs(f[60:180, 80:240].reshape(-1, 3).mean(axis=0) - (200, 30, 30)).max() < 25
        for f in frames
    ]
    assert red[-1] or red[-2]  # (the close may race the very last grab)
    assert sum(not r for r in red) <= 2  # at most the grab racing the move, and the close
