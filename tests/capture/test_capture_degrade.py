"""Each stream degrades alone: the X server dies mid-run (screen and input fail for real) while
a webcam keeps recording; with nothing left, the session stops cleanly with a clear error."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from capture._events import EventJournal
from capture._finalize import finalize_session
from tests.capture.capture_helpers import capture_cmd, run_cli, run_env, start_xvfb

pytestmark = [pytest.mark.x11, pytest.mark.slow]

LAVFI = "lavfi:testsrc2=size=320x240:rate=30,realtime"


def _record_while_x_dies(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    xvfb, display = start_xvfb("1280x720x24")
    killer = threading.Timer(2.5, xvfb.kill)
    killer.start()
    try:
        return subprocess.run(
            capture_cmd("--allow-any", "--quiet", "--duration", "5", "--out", str(out), *extra),
            capture_output=True,
            text=True,
            env={**run_env(), "DISPLAY": display},
            check=False,
            timeout=60,
        )
    finally:
        killer.join()
        xvfb.wait()


def test_webcam_goes_on_when_the_x_server_dies(tmp_path: Path) -> None:
    proc = _record_while_x_dies(tmp_path, "--webcam", "--webcam-device", LAVFI)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    session = Path(proc.stdout.strip())
    meta = json.loads((session / "metadata.json").read_text())
    streams = meta["streams"]
    assert streams["screen"]["status"] == "failed" and streams["screen"]["failed_at_ns"]
    assert streams["input"]["status"] == "failed"
    assert streams["webcam"]["status"] == "complete"
    assert meta["stop_reason"] == "duration_reached"
    assert 10 < meta["frame_count"] < 140
    assert abs(meta["webcam_info"]["frames"] - 150) <= 2
    events = pq.read_table(session / "events.parquet").to_pydict()
    assert sum(1 for s in events["stream"] if s == "webcam") == meta["webcam_info"]["frames"]
    assert run_cli("validate", str(session)).returncode == 0


def test_nothing_left_to_record_is_a_clear_error(tmp_path: Path) -> None:
    proc = _record_while_x_dies(tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "error: nothing left to record" in proc.stderr.splitlines()[-1]
    session = Path(proc.stdout.strip())
    meta = json.loads((session / "metadata.json").read_text())
    assert meta["stop_reason"].startswith("error: nothing left to record")
    assert run_cli("validate", str(session)).returncode == 0


def test_an_empty_session_finalizes(tmp_path: Path) -> None:
    session = tmp_path / "session_20260101_000000"
    session.mkdir()
    (session / "metadata.json").write_text(
        json.dumps(
            {
                "format_version": "1.0.0",
                "fps": 30,
                "start_monotonic_ns": 1,
                "start_t_ns": 2,
                "screen_resolution": [640, 360],
            }
        )
    )
    EventJournal(session / "events.journal.arrows").close()
    meta = finalize_session(session, recovered=False)
    assert meta["frame_count"] == 0 and meta["duration_s"] == 0.0
    assert meta["validation"]["ok"] is False  # no video: said so, not crashed
    assert "frames.mp4 is missing" in meta["validation"]["problems"]
