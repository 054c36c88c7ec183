"""Files planted in a session, a lock directory or an output directory, attacked for real.

Symlinks to victim files, a hostile ``session_id``, a 3-million-row ``events.parquet``, deeply
nested manifests and a ``--ready-file`` naming someone's notes: each is refused with one line,
and no victim file changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aiconfig import CaptureDeviceError, RunStateError
from aiconfig.harness import DeviceLock, RunContext

from .plugin_dist import install_frame_tools
from .sessions import EVENT_SCHEMA, make_session
from .util import PY, REPO, child_env, pin_plugins, run_cli, write_sessions_manifest

PRECIOUS = "precious notes, not a capture file\n" * 10


def _victim(tmp_path: Path, name: str = "victim.txt") -> Path:
    victim = tmp_path / name
    victim.write_text(PRECIOUS)
    return victim


def _capture(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "capture", *args],
        env=child_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _killed_session(tmp_path: Path) -> Path:
    """A real session whose manifest still says 'recording' (what a SIGKILL leaves)."""
    session = make_session(tmp_path / "data", audio=True, webcam=True)
    (session / "manifest.json").write_text(json.dumps({"status": "recording"}))
    return session


@pytest.mark.parametrize(
    "planted",
    [
        "events.parquet.tmp",  # the temp name of the reported attack
        ".frames.mp4.recover.mp4",
        ".metadata.json.4242.tmp",
        "audio.wav",  # opened r+b to rebuild its header
        "frames.mp4",
        "events.parquet",
    ],
)
def test_recover_never_writes_through_a_planted_link(tmp_path: Path, planted: str) -> None:
    session = _killed_session(tmp_path)
    victim = _victim(tmp_path)
    target = session / planted
    if target.exists():
        target.unlink()
    target.symlink_to(victim)
    proc = _capture(["recover", str(session)], tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "symbolic links" in proc.stderr and planted in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert victim.read_text() == PRECIOUS


def test_validate_refuses_a_member_linked_to_dev_zero(tmp_path: Path) -> None:
    session = make_session(tmp_path / "data")
    (session / "events.parquet").unlink()
    (session / "events.parquet").symlink_to("/dev/zero")
    proc = _capture(["validate", str(session)], tmp_path)
    assert proc.returncode == 1 and "symbolic links" in proc.stdout + proc.stderr


def test_device_lock_symlinked_to_a_victim(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    locks.mkdir()
    victim = _victim(tmp_path)
    (locks / "screen_capture.lock").symlink_to(victim)
    with pytest.raises(CaptureDeviceError, match="symbolic link"):
        DeviceLock(locks, "screen", run_id="r", job="capture").acquire()
    assert victim.read_text() == PRECIOUS
    os.mkfifo(locks / "audio_capture.lock")  # a FIFO would block a plain open forever
    with pytest.raises(CaptureDeviceError, match="not a regular file"):
        DeviceLock(locks, "audio", run_id="r", job="capture").acquire()


def test_output_lock_symlinked_to_a_victim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    out.mkdir()
    victim = _victim(tmp_path)
    (out / ".aiconfig-run.lock").symlink_to(victim)
    monkeypatch.setenv("AP_OUT_DIR", str(out))
    monkeypatch.setenv("AP_RUN_ID", "r1")
    with pytest.raises(RunStateError, match="symbolic link"), RunContext.from_env("pipeline"):
        pass
    assert victim.read_text() == PRECIOUS


def test_ready_file_naming_an_unrelated_file(tmp_path: Path) -> None:
    notes = _victim(tmp_path, "notes.txt")
    env = child_env(tmp_path)
    # a run that fails before it is ready must not delete it
    failed = run_cli(
        ["pipeline", "--manifest", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o1"),
         "--run-id", "r1", "--ready-file", str(notes)],
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert failed.returncode == 1 and notes.read_text() == PRECIOUS
    # a run that would become ready refuses to replace it
    manifest = write_sessions_manifest(tmp_path / "m.json", [make_session(tmp_path / "data")])
    ready = run_cli(
        ["pipeline", "--manifest", str(manifest), "--out", str(tmp_path / "o2"),
         "--run-id", "r2", "--ready-file", str(notes)],
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert ready.returncode == 1, ready.stderr
    assert "is not a ready file; refusing to replace it" in ready.stderr
    assert "Traceback" not in ready.stderr and notes.read_text() == PRECIOUS


# ---------------------------------------------------------------- 7: session_id is not a path


def _set_session_id(session: Path, sid: str) -> None:
    meta = json.loads((session / "metadata.json").read_text())
    meta["session_id"] = sid
    (session / "metadata.json").write_text(json.dumps(meta))
    events = pq.read_table(session / "events.parquet")
    ids = pa.array([sid] * events.num_rows, pa.string())
    events = events.set_column(events.schema.get_field_index("session_id"), "session_id", ids)
    pq.write_table(events, session / "events.parquet")
    manifest = json.loads((session / "manifest.json").read_text())
    manifest["session_id"] = sid
    for artifact in manifest["artifacts"]:  # the attacker rewrites the hashes too
        data = (session / artifact["path"]).read_bytes()
        artifact.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    (session / "manifest.json").write_text(json.dumps(manifest))


def _pipeline_with_step(
    tmp_path: Path, session: Path, out: str
) -> subprocess.CompletedProcess[str]:
    site = tmp_path / "site"
    if not site.exists():
        install_frame_tools(site)
    env = child_env(tmp_path, PYTHONPATH=f"{REPO}:{site}")
    pin_plugins(tmp_path, env, "frame-tools", ["frame_count"])
    manifest = write_sessions_manifest(tmp_path / f"{out}.json", [session])
    return run_cli(
        ["pipeline", "--manifest", str(manifest), "--out", str(tmp_path / out),
         "--run-id", out, "--step", "frame_count"],
        env=env, cwd=tmp_path,
    )  # fmt: skip


def test_hostile_session_id_never_chooses_where_a_step_writes(tmp_path: Path) -> None:
    escape = tmp_path / "ESCAPED"
    session = make_session(tmp_path / "data")
    _set_session_id(session, os.path.relpath(escape, tmp_path / "out" / "steps" / "frame_count"))
    proc = _pipeline_with_step(tmp_path, session, "out")
    assert not escape.exists(), proc.stderr
    assert proc.returncode == 1  # the session is invalid: its id is not a session id
    report = json.loads((tmp_path / "out" / "fixture_report.json").read_text())
    [entry] = report["sessions"]
    assert any("is not a session id" in p for p in entry["problems"])


def test_step_output_is_named_from_the_directory(tmp_path: Path) -> None:
    session = make_session(tmp_path / "data")
    _set_session_id(session, "session_somebody_else")  # well-formed, but not this directory
    proc = _pipeline_with_step(tmp_path, session, "out")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "steps" / "frame_count" / session.name / "count.txt").exists()
    assert not (tmp_path / "out" / "steps" / "frame_count" / "session_somebody_else").exists()


# ---------------------------------------------------------------- 11: Parquet streamed


def test_capture_validate_streams_a_tiny_file_of_many_rows(tmp_path: Path) -> None:
    session = make_session(tmp_path / "data")
    rows = 3_000_000  # compresses to a few hundred KB: every column is one repeated value
    columns = {
        f.name: pa.nulls(rows, f.type)
        if f.name != "stream"
        else pa.repeat(pa.scalar("input"), rows)
        for f in EVENT_SCHEMA
    }
    columns["event_type"] = pa.repeat(pa.scalar("key_press"), rows)
    columns["t_ns"] = pa.repeat(pa.scalar(5, pa.int64()), rows)
    pq.write_table(pa.table(columns, schema=EVENT_SCHEMA), session / "events.parquet")
    assert (session / "events.parquet").stat().st_size < 2 << 20
    code = (
        "import sys\nfrom capture._validate import validate_session\n"
        "problems = validate_session(__import__('pathlib').Path(sys.argv[1]))\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(len(problems), hwm)\n"
    )
    proc = subprocess.run(
        [PY, "-c", code, str(session)],
        env=child_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    count, hwm_kib = map(int, proc.stdout.split())
    assert count >= 1  # the rows point at no frame
    assert hwm_kib < 400 * 1024  # reading the whole table as Python lists took 1 GB


# ---------------------------------------------------------------- 12: deep JSON


@pytest.mark.parametrize("command", ["manifest", "ready"])
def test_deeply_nested_json_is_one_line(tmp_path: Path, command: str) -> None:
    deep = "[" * 200_000 + "]" * 200_000
    if command == "manifest":
        out = tmp_path / "run"
        out.mkdir()
        (out / "manifest.json").write_text('{"schema_version": 1, "artifacts": ' + deep + "}")
        argv = ["manifest", "verify", str(out)]
    else:
        (tmp_path / "ready.json").write_text('{"pid": ' + deep + "}")
        argv = ["ready", "check", str(tmp_path / "ready.json")]
    proc = run_cli(argv, env=child_env(tmp_path), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "RecursionError" not in proc.stderr
    text = proc.stdout + proc.stderr
    assert len(text.strip().splitlines()) == 1
