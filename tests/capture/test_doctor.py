"""``python -m capture doctor`` on this machine: with and without a display, PulseAudio and the
target window; one line per check, ``--json``, exit 1 when a requested stream cannot work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.capture.capture_helpers import REPO, open_window


def _doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "capture", "doctor", *args],
        capture_output=True,
        text=True,
        env={k: v for k, v in full.items() if v != ""},
        check=False,
        timeout=60,
    )


def test_no_display_fails_with_what_to_do(tmp_path: Path) -> None:
    proc = _doctor("--out", str(tmp_path), env={"DISPLAY": "", "WAYLAND_DISPLAY": ""})
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert all(line.split()[0] in ("ok", "warn", "fail", "skip") for line in lines)
    display = next(line for line in lines if line.split()[1] == "display")
    assert display.startswith("fail") and "Xvfb" in display and "->" in display
    assert proc.stderr.count("\n") == 1 and "screen" in proc.stderr
    assert "Traceback" not in proc.stderr
    wayland = _doctor("--json", env={"DISPLAY": "", "WAYLAND_DISPLAY": "wayland-0"})
    doc = json.loads(wayland.stdout)
    assert wayland.returncode == 1 and doc["ok"] is False
    check = next(c for c in doc["checks"] if c["check"] == "display")
    assert "Wayland" in check["detail"] and "XWayland" in check["fix"]


@pytest.mark.x11
@pytest.mark.audio
def test_display_window_and_audio_all_ok(xvfb: str, pulse: dict[str, str], tmp_path: Path) -> None:
    win = open_window("League of Legends", (10, 20, 320, 240))
    try:
        proc = _doctor("--audio", "--json", "--out", str(tmp_path))
    finally:
        win.close()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    checks = {c["check"]: c for c in doc["checks"]}
    assert doc["ok"] and doc["requested_streams"] == ["audio", "game", "input", "screen"]
    assert (
        checks["window"]["status"] == "ok" and "320x240 at (10, 20)" in checks["window"]["detail"]
    )
    assert checks["audio"]["status"] == "ok" and "capsink.monitor" in checks["audio"]["detail"]
    assert checks["x11-connection"]["status"] == "ok"
    assert checks["disk"]["status"] == "ok" and checks["disk"]["data"]["free_bytes"] > 0


@pytest.mark.x11
def test_missing_window_audio_and_disk_each_fail(xvfb: str, tmp_path: Path) -> None:
    empty = tmp_path / "run"
    empty.mkdir(mode=0o700)
    proc = _doctor(
        *("--audio", "--webcam", "--webcam-device", "7", "--duration", "1e9"),
        *("--out", str(tmp_path / "out")),
        env={"XDG_RUNTIME_DIR": str(empty), "PULSE_SERVER": str(empty / "none")},
    )
    assert proc.returncode == 1
    failed = {line.split()[1]: line for line in proc.stdout.splitlines() if line.startswith("fail")}
    assert set(failed) == {"window", "audio", "webcam", "disk"}, proc.stdout
    assert "--allow-any" in failed["window"]
    assert "module-null-sink" in failed["audio"]
    assert "/dev/video7" in failed["webcam"]
    assert "free some space" in failed["disk"]
    assert proc.stderr.strip().endswith("fix the lines above")
    ok = _doctor("--allow-any", "--no-input", "--out", str(tmp_path / "out"))
    assert ok.returncode == 0, ok.stdout
    assert "warn  window" in ok.stdout and "--allow-any records" in ok.stdout


def _documented_doctor_lines() -> list[str]:
    lines = []
    for doc in (REPO / "README.md", REPO / "docs" / "capture.md"):
        for raw in doc.read_text(encoding="utf-8").splitlines():
            text = raw.strip()
            if text.startswith("python -m capture doctor"):
                lines.append(text.split("  #", 1)[0].strip())
    return lines


@pytest.mark.x11
@pytest.mark.audio
def test_documented_doctor_commands_run_as_written(
    xvfb: str, pulse: dict[str, str], tmp_path: Path
) -> None:
    import shlex

    commands = _documented_doctor_lines()
    assert len(commands) >= 3
    win = open_window("League of Legends", (0, 0, 320, 240))
    try:
        for command in commands:
            argv = shlex.split(command)[3:]  # after "python -m capture"
            proc = subprocess.run(
                [sys.executable, "-m", "capture", *argv],
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                cwd=tmp_path,
                check=False,
                timeout=60,
            )
            assert proc.returncode == 0, (command, proc.stdout, proc.stderr)
            if "--json" in argv:
                assert json.loads(proc.stdout)["ok"] is True
    finally:
        win.close()
