"""SIGKILL a recording, then ``capture recover`` must produce a valid session."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.capture.capture_helpers import (
    Injector,
    open_window,
    run_cli,
    start_recording,
)

pytestmark = [pytest.mark.x11, pytest.mark.slow]


def test_sigkill_then_recover(xvfb: str, injector: Injector, tmp_path: Path) -> None:
    win = open_window("League of Legends", (0, 0, 800, 600))
    try:
        injector.focus(win.handle)
        proc = start_recording(tmp_path, "--fps", "30", "--quiet", output=subprocess.DEVNULL)
        session = next(tmp_path.glob("session_*"))
        started = time.monotonic()
        time.sleep(1.0)
        code = injector.keycode("a")
        presses = 0
        while time.monotonic() - started < 3.5:
            injector.key_press(code)
            injector.key_release(code)
            presses += 1
            time.sleep(0.1)
        killed_after = time.monotonic() - started
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        win.close()

    manifest = json.loads((session / "manifest.json").read_text())
    assert manifest["status"] == "recording"
    bad = run_cli("validate", str(session))
    assert bad.returncode == 1 and "recover" in bad.stderr

    fixed = run_cli("recover", str(session))
    assert fixed.returncode == 0, fixed.stderr
    good = run_cli("validate", str(session))
    assert good.returncode == 0, good.stderr

    meta = json.loads((session / "metadata.json").read_text())
    assert meta["status"] == "recovered" and meta["stop_reason"] == "killed"
    assert meta["recovery"]["lost_frames"] >= 0
    # All but about the last second (one fragment + encoder delay) survives.
    assert meta["frame_count"] >= int((killed_after - 1.6) * 30)
    events = pq.read_table(session / "events.parquet").to_pydict()
    keys = [k for k in events["event_type"] if k == "key_press"]
    assert len(keys) >= presses - 12  # at most ~1 s of 10 presses/s lost
    assert not (session / "events.journal.arrows").exists()
    assert json.loads((session / "manifest.json").read_text())["status"] == "recovered"

    again = run_cli("recover", str(session))
    assert again.returncode == 1 and again.stderr.count("\n") == 1


def test_ctrl_c_stops_and_finalizes(xvfb: str, tmp_path: Path) -> None:
    proc = start_recording(tmp_path, "--allow-any", "--no-input", "--quiet")
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    session = Path(out.strip())
    meta = json.loads((session / "metadata.json").read_text())
    assert meta["stop_reason"] == "stopped" and meta["status"] == "complete"
    assert meta["frame_count"] >= 30
    assert run_cli("validate", str(session)).returncode == 0
