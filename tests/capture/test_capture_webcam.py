"""Webcam through the PyAV input path, with a libavfilter source standing in for a camera."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.capture.capture_helpers import capture_cmd, run_cli, run_env

pytestmark = [pytest.mark.x11, pytest.mark.slow]

LAVFI = "lavfi:testsrc2=size=640x360:rate=30,realtime"


def _record(out: Path, *args: str) -> tuple[Path, dict[str, Any]]:
    proc = subprocess.run(
        capture_cmd("--allow-any", "--quiet", "--no-input", "--out", str(out), *args),
        capture_output=True,
        text=True,
        env=run_env(),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    session = Path(proc.stdout.strip())
    return session, json.loads((session / "metadata.json").read_text())


def test_webcam_has_its_own_timeline(xvfb: str, tmp_path: Path) -> None:
    session, meta = _record(tmp_path, "--duration", "3", "--webcam", "--webcam-device", LAVFI)
    info = meta["webcam_info"]
    assert isinstance(info, dict)
    assert info["resolution"] == [640, 360] and info["error"] is None
    assert meta["streams"]["webcam"]["status"] == "complete"
    events = pq.read_table(session / "events.parquet").to_pydict()
    cam = [i for i, s in enumerate(events["stream"]) if s == "webcam"]
    assert [events["frame_ref"][i] for i in cam] == list(range(len(cam)))
    assert abs(len(cam) - 90) <= 3 and info["frames"] == len(cam)
    probe = json.loads(
        subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-count_packets",
                "-show_entries",
                "stream=width,height,nb_read_packets",
                "-of",
                "json",
                str(session / "webcam.mp4"),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["streams"][0]
    assert (probe["width"], probe["height"]) == (640, 360)
    assert int(probe["nb_read_packets"]) == len(cam)
    assert run_cli("validate", str(session)).returncode == 0


def test_missing_camera_leaves_the_screen_complete(xvfb: str, tmp_path: Path) -> None:
    session, meta = _record(tmp_path, "--duration", "1", "--webcam", "--webcam-device", "9")
    webcam = meta["streams"]["webcam"]
    assert webcam["status"] == "failed" and "/dev/video9" in webcam["error"]
    assert meta["frame_count"] == 30 and not (session / "webcam.mp4").exists()
    assert run_cli("validate", str(session)).returncode == 0


def test_a_webcam_opened_but_never_started_stops_cleanly(tmp_path: Path) -> None:
    """The screen grabber failing to start stops a webcam that was opened but not started."""
    from capture._events import EventJournal
    from capture._webcam_recorder import WebcamRecorder, open_camera

    journal = EventJournal(tmp_path / "events.journal")
    cam = WebcamRecorder(
        open_camera(LAVFI, (640, 360), 30),
        tmp_path / "webcam.mp4",
        journal,
        device=LAVFI,
        fps=30,
        session_id="s",
        preset="ultrafast",
    )
    cam.stop()  # raised "cannot join thread before it is started"
    journal.close()
    assert cam.stats.frames == 0
