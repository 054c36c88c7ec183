"""Capture jobs under the orchestrator contract, on the suite's real Xvfb.

Ready file while recording, device locks against a second job, JSON logs only on stdout, the run
manifest re-verified, budgets sizing the encoder, settings refused before any work, stream
plugins under the plugin policy, and the signed-config job (``aiconfig capture``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aiconfig.harness import verify_manifest
from tests.capture.capture_helpers import REPO, capture_cmd, open_window, run_env
from tests.harness.plugin_dist import install_frame_tools
from tests.harness.util import pin_plugins

pytestmark = pytest.mark.usefixtures("xvfb")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in run_env().items() if not k.startswith(("AP_", "HYPERVISOR_"))}
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _wait_ready(path: Path, proc: subprocess.Popen[Any], timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"capture exited {proc.returncode} before ready")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("no ready file")
        time.sleep(0.02)
    info: dict[str, Any] = json.loads(path.read_text())
    return info


def test_orchestrated_capture_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    out = run_dir / "capture"
    ready = out / "ready.json"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = _env(
        HYPERVISOR_RUN_DIR=str(run_dir), AP_RUN_ID="cap-1", AP_OUT_DIR=str(out), AP_LOG_JSON="1"
    )
    proc = subprocess.Popen(
        capture_cmd("--allow-any", "--no-input", "--duration", "5", "--ready-file", str(ready)),
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        info = _wait_ready(ready, proc)
        assert info["pid"] == proc.pid and info["run_id"] == "cap-1" and info["job"] == "capture"
        assert info["streams"]["screen"] == "recording" and info["streams"]["input"] == "off"
        # Ready means recording: the session and its metadata exist already.
        assert (out / info["session"] / "metadata.json").is_file()

        # A second capture job wants the screen: it fails fast, naming the holder.
        second_out = run_dir / "capture-2"
        t0 = time.monotonic()
        second = _run(
            capture_cmd("--allow-any", "--no-input", "--duration", "1", "--run-id", "cap-2",
                        "--out", str(second_out)),
            {**env, "AP_LOG_JSON": "0"}, cwd,
        )  # fmt: skip
        assert time.monotonic() - t0 < 20
        assert second.returncode == 1
        assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr
        assert "screen is in use by run 'cap-1'" in second.stderr
        assert "screen_capture.lock" in second.stderr
        assert not list(second_out.glob("session_*"))
        failed = json.loads((second_out / "manifest.json").read_text())
        assert failed["status"] == "failed" and "in use" in failed["error"]
    finally:
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert not ready.exists()

    # --log-json: stdout is JSON lines and nothing else.
    records = [json.loads(line) for line in stdout.splitlines()]
    assert records and all(
        set(r) == {"ts", "level", "run_id", "job", "event", "fields"} and r["run_id"] == "cap-1"
        for r in records
    )
    events = [r["event"] for r in records]
    for event in ("run.started", "lock.acquired", "run.ready", "capture.finished"):
        assert event in events
    assert events[-1] == "run.finished" and records[-1]["fields"]["status"] == "succeeded"

    doc = json.loads((out / "manifest.json").read_text())
    assert doc["status"] == "succeeded" and doc["run_id"] == "cap-1"
    assert doc["capture"]["session"] == info["session"] and doc["capture"]["valid"] is True
    video = next(a for a in doc["artifacts"] if a["path"] == f"{info['session']}/frames.mp4")
    assert video["kind"] == "video" and len(video["sha256"]) == 64
    assert video["capture"]["start_t_ns"] > 0 and video["capture"]["duration_s"] == 5.0
    assert "scope" not in doc  # the output directory is this run's alone
    assert verify_manifest(out).ok
    # Temp space RUN_DIR/tmp/capture/<run id> removed on success (the failed run's is kept for
    # diagnosis); the working tree untouched.
    assert sorted(p.name for p in (run_dir / "tmp" / "capture").iterdir()) == ["cap-2"]
    assert list(cwd.iterdir()) == []
    # The lock is free again (and its file kept: deleting it could let two holders in).
    again = _run(
        capture_cmd("--allow-any", "--no-input", "--quiet", "--duration", "0.5", "--run-id",
                    "cap-3", "--out", str(run_dir / "capture-3")),
        {**env, "AP_LOG_JSON": "0"}, cwd,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert (run_dir / "shared" / "locks" / "screen_capture.lock").exists()


def test_capture_under_one_cpu_and_512_mb(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = _env(AP_CPU_LIMIT="1", AP_MEM_LIMIT_MB="512", AP_RUN_ID="small", AP_OUT_DIR=str(out))
    proc = _run(
        ["taskset", "-c", "0", *capture_cmd("--allow-any", "--quiet", "--duration", "3")],
        env,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    session = next(out.glob("session_*"))
    meta = json.loads((session / "metadata.json").read_text())
    assert meta["resources"]["encoder_threads"] == 1 and meta["resources"]["cpus"] == 1.0
    assert meta["resources"]["mem_limit_mb"] == 512 and meta["resources"]["frame_queue"] >= 2
    assert meta["validation"]["ok"] and meta["frame_count"] == 90
    doc = json.loads((out / "manifest.json").read_text())
    assert doc["status"] == "succeeded" and doc["settings"]["mem_limit_mb"] == 512


@pytest.mark.parametrize(
    ("extra_env", "args", "needle"),
    [
        ({"AP_MEM_LIMIT_MB": "lots"}, [], "AP_MEM_LIMIT_MB: invalid memory limit"),
        ({"AP_CPU_LIMIT": "-2"}, [], "AP_CPU_LIMIT: invalid CPU limit"),
        ({}, ["--run-id", "../escape"], "--run-id: invalid run id"),
        ({"AP_MEM_LIMIT_MB": "100"}, [], "AP_MEM_LIMIT_MB: a memory budget of 100 MiB"),
    ],
)
def test_bad_run_settings_refused_before_any_work(
    tmp_path: Path, extra_env: dict[str, str], args: list[str], needle: str
) -> None:
    out = tmp_path / "out"
    proc = _run(
        capture_cmd("--allow-any", "--quiet", "--duration", "1", "--out", str(out), *args),
        _env(**extra_env),
        tmp_path,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: {needle}"), proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not out.exists()


def test_standalone_runs_share_the_sessions_directory(tmp_path: Path) -> None:
    """No run id from an orchestrator: ./sessions collects sessions; each run's manifest lists
    its own session only."""
    for _ in range(2):
        proc = _run(
            capture_cmd("--allow-any", "--no-input", "--quiet", "--duration", "0.5"),
            _env(),
            tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip().startswith(str(tmp_path / "sessions" / "session_"))
    sessions = sorted(p.name for p in (tmp_path / "sessions").glob("session_*"))
    assert len(sessions) == 2
    doc = json.loads((tmp_path / "sessions" / "manifest.json").read_text())
    assert doc["scope"] == [Path(proc.stdout.strip()).name]
    assert {a["path"].split("/")[0] for a in doc["artifacts"]} == {doc["scope"][0]}
    assert verify_manifest(tmp_path / "sessions").ok
    (tmp_path / "sessions" / doc["scope"][0] / "stray.txt").write_text("x")
    assert not verify_manifest(tmp_path / "sessions").ok  # unlisted file inside the scope


def _plugin_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    site = tmp_path / "site"
    install_frame_tools(site)
    env = _env(**extra)
    env["PYTHONPATH"] = f"{REPO}{os.pathsep}{site}"
    return env


def test_stream_plugins_record_beside_the_builtin_streams(tmp_path: Path) -> None:
    env = _plugin_env(tmp_path)
    pin_plugins(tmp_path, env, "frame-tools", ["ticker", "exploding"])
    out = tmp_path / "out"
    proc = _run(
        capture_cmd("--allow-any", "--no-input", "--quiet", "--duration", "2", "--run-id", "p1",
                    "--out", str(out), "--plugin", "ticker", "--plugin", "exploding"),
        env, tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    session = next(out.glob("session_*"))
    meta = json.loads((session / "metadata.json").read_text())
    ticker = meta["streams"]["ticker"]
    assert ticker["status"] == "complete" and ticker["plugin"] is True
    lines = (session / "ticker.jsonl").read_text().splitlines()
    ticks = [json.loads(line)["t_ns"] for line in lines]
    assert ticker["info"]["ticks"] == len(ticks) >= 20
    assert 0 < ticks[0] < 200_000_000 and ticks == sorted(ticks)  # timed from frame 0
    # A plugin that fails degrades alone: the session is valid without it.
    assert meta["streams"]["exploding"]["status"] == "failed"
    assert "sensor unplugged" in meta["streams"]["exploding"]["error"]
    assert meta["validation"]["ok"] and meta["streams"]["screen"]["status"] == "complete"
    doc = json.loads((out / "manifest.json").read_text())
    assert f"{session.name}/ticker.jsonl" in {a["path"] for a in doc["artifacts"]}
    assert verify_manifest(out).ok


def test_stream_plugins_refused_by_policy(tmp_path: Path) -> None:
    env = _plugin_env(tmp_path)
    pin_plugins(tmp_path, env, "frame-tools", ["ticker", "cloud_ticker", "frame_count"])
    cases = [
        (["--plugin", "frame_count"], "is not a capture stream"),
        (["--plugin", "exploding"], "not in the allowlist"),
        (["--plugin", "cloud_ticker", "--no-network"], "offline mode"),
        (["--plugin", "screen"], "is a built-in stream"),
    ]
    for args, needle in cases:
        out = tmp_path / f"out-{args[1]}"
        proc = _run(
            capture_cmd("--allow-any", "--quiet", "--duration", "1", "--run-id", "x", "--out",
                        str(out), *args),
            env, tmp_path,
        )  # fmt: skip
        assert proc.returncode == 1 and needle in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert not list(out.glob("session_*"))
    # The installed files change after pinning: refused before the plugin is imported.
    module = tmp_path / "site" / "frame_tools" / "__init__.py"
    module.write_text(module.read_text() + "\nimport os  # changed\n")
    out = tmp_path / "out-changed"
    proc = _run(
        capture_cmd("--allow-any", "--quiet", "--duration", "1", "--run-id", "x", "--out",
                    str(out), "--plugin", "ticker"),
        env, tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1 and "its files changed" in proc.stderr
    assert json.loads((out / "manifest.json").read_text())["status"] == "failed"


def test_signed_config_capture_records_config_in_the_run_manifest(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = _env(AP_DATA_ROOT=str(tmp_path / "state"))
    win = open_window("League of Legends", (50, 50, 640, 360))  # the baseline's target window
    try:
        proc = _run(
            [sys.executable, "-m", "aiconfig", "capture", "--config",
             str(REPO / "experiments" / "baseline.yaml"), "--quiet", "--duration", "1",
             "--run-id", "cfg-1", "--out", str(out)],
            env, tmp_path,
        )  # fmt: skip
    finally:
        win.close()
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "manifest.json").read_text())
    assert doc["config"]["path"].endswith("baseline.yaml") and len(doc["config"]["sha256"]) == 64
    assert doc["config"]["signers"] == ["lead@aiconfig.dev", "research@aiconfig.dev"]
    session = next(out.glob("session_*"))
    meta = json.loads((session / "metadata.json").read_text())
    assert meta["provenance"]["sha256"] == doc["config"]["sha256"]
    assert meta["run_id"] == "cfg-1" and meta["window_id"] == "League of Legends"
    assert verify_manifest(out).ok


def test_killed_capture_leaves_no_ready_claim_and_frees_its_locks(tmp_path: Path) -> None:
    from aiconfig.harness.ready import ready_state

    ready = tmp_path / "ready.json"
    locks = tmp_path / "locks"
    common = ["--allow-any", "--no-input", "--quiet", "--lock-dir", str(locks)]
    proc = subprocess.Popen(
        capture_cmd(*common, "--run-id", "k1", "--out", str(tmp_path / "k1"), "--ready-file",
                    str(ready)),
        env=_env(), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _wait_ready(ready, proc)
    assert ready_state(ready).is_ready
    proc.kill()
    proc.wait(timeout=10)
    state = ready_state(ready)
    assert state.state == "stale" and not state.is_ready
    # The kernel released the screen lock with the process: the next job records at once.
    after = _run(
        capture_cmd(*common, "--duration", "0.5", "--run-id", "k2", "--out", str(tmp_path / "k2")),
        _env(),
        tmp_path,
    )
    assert after.returncode == 0, after.stderr
    # The killed session stays for 'capture recover' (crash safety: test_capture_crash).
    assert list((tmp_path / "k1").glob("session_*/metadata.json"))
    assert not (tmp_path / "k1" / "manifest.json").exists()  # no run manifest claims success


def test_ready_file_of_another_live_run_stops_the_capture_cleanly(tmp_path: Path) -> None:
    from aiconfig.harness.ready import write_ready_file

    ready = tmp_path / "ready.json"
    write_ready_file(ready, run_id="other", job="capture", started_at="2026-11-21T00:00:00Z")
    proc = _run(
        capture_cmd("--allow-any", "--quiet", "--duration", "30", "--run-id", "r2", "--out",
                    str(tmp_path / "out"), "--ready-file", str(ready)),
        _env(), tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1 and "ready file is held by live run 'other'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert json.loads(ready.read_text())["run_id"] == "other"  # not replaced, not removed
    doc = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert doc["status"] == "failed" and "held by live run" in doc["error"]


def test_sigterm_at_any_moment_of_start_up_is_clean(tmp_path: Path) -> None:
    """SIGTERM while libraries load, devices open or frames flow: never a traceback, and one
    outcome, as for every job (docs/harness.md): exit 143, the run 'interrupted'; once recording,
    the session is finalized first, kept and valid."""
    outcomes: set[int | str] = set()
    for i, delay in enumerate((0.2, 0.5, None)):  # None: once it records
        out = tmp_path / f"out-{i}"
        proc = subprocess.Popen(
            capture_cmd("--allow-any", "--no-input", "--quiet", "--run-id", f"t{i}", "--out",
                        str(out)),
            env=_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        if delay is None:
            deadline = time.monotonic() + 60
            while not list(out.glob("session_*/metadata.json")):
                assert time.monotonic() < deadline and proc.poll() is None, "did not record"
                time.sleep(0.05)
            time.sleep(0.5)
        else:
            time.sleep(delay)
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        assert "Traceback" not in err, err
        assert proc.returncode in (143, -15), (proc.returncode, err)
        if proc.returncode == 143:
            assert err.strip().endswith("terminated (SIGTERM)")
            doc = json.loads((out / "manifest.json").read_text())
            assert doc["status"] == "interrupted"
            if "capture" in doc:  # it was recording: the session was finalized first
                assert doc["capture"]["valid"] is True
                outcomes.add("recorded")
        outcomes.add(proc.returncode)
    assert "recorded" in outcomes  # the last stops a recording session


def test_heavy_libraries_load_inside_the_run(tmp_path: Path) -> None:
    """numpy, PyAV, pyarrow, mss and OpenCV load on entering the run (under its thread and
    allocator settings, before its memory limit), never earlier in the job."""
    code = (
        "import sys\n"
        "import aiconfig.harness.context as c\n"
        "enter = c.RunContext.__enter__\n"
        "def spy(self):\n"
        "    heavy = ('numpy', 'av', 'pyarrow', 'mss', 'cv2')\n"
        "    print('before run:', sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
        "    return enter(self)\n"
        "c.RunContext.__enter__ = spy\n"
        "from capture.__main__ import main\n"
        "raise SystemExit(main(sys.argv[1:]))\n"
    )
    proc = _run(
        [sys.executable, "-c", code, "--allow-any", "--no-input", "--quiet", "--duration", "0.3",
         "--out", str(tmp_path / "out")],
        _env(), tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "before run: []" in proc.stderr.splitlines()
