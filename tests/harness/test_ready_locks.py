"""Ready file lifecycle (SIGTERM, SIGKILL) and device-lock contention between real processes."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from aiconfig import DeviceLockedError, RunStateError
from aiconfig.harness import DeviceLock, RunContext, ready_state
from aiconfig.harness.ready import write_ready_file

from .util import child_env, finish, read_json, run_cli, start_child


def _env(tmp_path: Path, run_id: str, **extra: str) -> dict[str, str]:
    return child_env(
        tmp_path,
        AP_RUN_ID=run_id,
        AP_OUT_DIR=str(tmp_path / run_id),
        AP_READY_FILE=str(tmp_path / f"{run_id}.ready.json"),
        **extra,
    )


def test_ready_file_removed_on_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "a.ready.json"
    proc = start_child(_env(tmp_path, "a"), tmp_path)
    state = ready_state(ready)
    assert state.is_ready
    assert state.info["pid"] == proc.pid
    assert state.info["run_id"] == "a"
    assert {"started_at", "ready_at", "pid_start_ticks", "job"} <= set(state.info)
    assert finish(proc, signal.SIGTERM) == 143
    assert not ready.exists()
    manifest = read_json(tmp_path / "a" / "manifest.json")
    assert manifest["status"] == "interrupted"
    assert [a["path"] for a in manifest["artifacts"]] == ["payload.bin"]


def test_sigkilled_run_leaves_a_detectably_stale_ready_file(tmp_path: Path) -> None:
    ready = tmp_path / "k.ready.json"
    proc = start_child(_env(tmp_path, "k"), tmp_path)
    assert ready_state(ready).is_ready
    live = run_cli(["ready", "check", str(ready)], env=child_env(tmp_path), cwd=tmp_path)
    assert (live.returncode, live.stdout) == (0, f"ready (run 'k', pid {proc.pid})\n")
    finish(proc, signal.SIGKILL)
    state = ready_state(ready)
    assert state.state == "stale" and not state.is_ready  # the file cannot claim readiness
    dead = run_cli(["ready", "check", "--json", str(ready)], env=child_env(tmp_path), cwd=tmp_path)
    assert dead.returncode == 1
    assert json.loads(dead.stdout)["state"] == "stale"
    # A new run may take over a stale ready file.
    write_ready_file(ready, run_id="next", job="capture", started_at="now")
    assert ready_state(ready).is_ready and ready_state(ready).info["run_id"] == "next"


def test_ready_state_takes_a_str_as_documented(tmp_path: Path) -> None:
    """docs/harness.md: ``aiconfig.harness.ready_state(path)``, path as an orchestrator has it."""
    ready = tmp_path / "s.ready.json"
    assert ready_state(str(ready)).state == "absent"
    write_ready_file(ready, run_id="s", job="capture", started_at="now")
    assert ready_state(str(ready)).is_ready
    ready.write_text("{not json")
    assert ready_state(str(ready)).state == "invalid"


def test_live_ready_file_of_another_run_is_not_overwritten(tmp_path: Path) -> None:
    ready = tmp_path / "l.ready.json"
    proc = start_child(_env(tmp_path, "l"), tmp_path)
    try:
        with pytest.raises(RunStateError, match="held by live run 'l'"):
            write_ready_file(ready, run_id="other", job="capture", started_at="now")
    finally:
        finish(proc, signal.SIGKILL)


def test_pid_reuse_is_detected(tmp_path: Path) -> None:
    ready = tmp_path / "reuse.json"
    write_ready_file(ready, run_id="x", job="capture", started_at="now")
    doc = read_json(ready)
    doc["pid_start_ticks"] -= 1  # same pid, different process start time
    ready.write_text(__import__("json").dumps(doc))
    assert ready_state(ready).state == "stale"


def test_device_lock_held_by_another_process(tmp_path: Path) -> None:
    hyper = tmp_path / "hyper"
    env = _env(tmp_path, "holder", HYPERVISOR_RUN_DIR=str(hyper), TEST_DEVICES="screen,input")
    proc = start_child(env, tmp_path)
    lock_dir = hyper / "shared" / "locks"
    try:
        assert (lock_dir / "screen_capture.lock").exists()
        with pytest.raises(DeviceLockedError) as info:
            DeviceLock(lock_dir, "screen", run_id="second", job="capture").acquire()
        msg = str(info.value)
        assert "run 'holder'" in msg and f"pid {proc.pid}" in msg
        assert "screen_capture.lock" in msg
        # A whole run asking for the device fails fast and records why.
        ctx = RunContext.from_env(
            "capture",
            devices=("audio", "input"),
            env={"AP_OUT_DIR": str(tmp_path / "second"), "HYPERVISOR_RUN_DIR": str(hyper)},
        )
        with pytest.raises(DeviceLockedError, match="input is in use by run 'holder'"), ctx:
            pytest.fail("entered a run whose device is locked")
        manifest = read_json(tmp_path / "second" / "manifest.json")
        assert manifest["status"] == "failed"
        # The audio lock taken before the failure was released again.
        DeviceLock(lock_dir, "audio", run_id="third", job="capture").acquire().release()
        # Other devices are free.
        with DeviceLock(lock_dir, "webcam", run_id="third", job="capture") as lock:
            assert lock.held
    finally:
        finish(proc, signal.SIGKILL)
    # The kernel released the dead holder's lock.
    with DeviceLock(lock_dir, "screen", run_id="after", job="capture") as lock:
        assert read_json(lock.path)["pid"] == os.getpid()
    assert (lock_dir / "screen_capture.lock").read_text() == ""


def test_unknown_device_is_refused(tmp_path: Path) -> None:
    from aiconfig import CaptureDeviceError

    with pytest.raises(CaptureDeviceError, match="unknown device 'microphone'"):
        DeviceLock(tmp_path, "microphone", run_id="x", job="capture")
