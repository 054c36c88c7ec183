"""The processing pipeline, driven by the seed's exact command line on real sessions."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aiconfig.harness import RunContext, verify_manifest
from aiconfig.sessions import INPUT_EVENT_TYPES

from .plugin_dist import install_frame_tools
from .sessions import make_session
from .util import (
    PY,
    REPO,
    child_env,
    pin_plugins,
    read_json,
    run_cli,
    write_sessions_manifest,
)

LOG_KEYS = {"ts", "level", "run_id", "job", "event", "fields"}


def _git_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout


def test_seed_command_line(tmp_path: Path, data_root: Path) -> None:
    run_dir = tmp_path / "hv-run"
    manifest = write_sessions_manifest(
        tmp_path / "hv" / "manifest.json",
        ["session_20261121_100000", "session_20261121_110000"],  # resolved via --data-root
    )
    out = run_dir / "autocapture_prime"
    env = child_env(tmp_path, HYPERVISOR_RUN_DIR=str(run_dir), AP_RUN_ID="fixture-1")
    before = _git_status()
    cmd = [
        PY, "tools/run_fixture_pipeline.py",
        "--manifest", str(manifest),
        "--out", str(out),
        "--run-id", env["AP_RUN_ID"],
        "--data-root", str(data_root),
        "--no-network",
        "--ready-file", str(out / "ready.json"),
        "--log-json",
        "--config-template", "tools/fixture_config_template.json",
        "--force-idle",
    ]  # fmt: skip
    res = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    records = [json.loads(line) for line in res.stdout.splitlines()]  # nothing but JSON
    assert all(set(r) == LOG_KEYS and r["run_id"] == "fixture-1" for r in records)
    events = [r["event"] for r in records]
    assert events[0] == "run.started" and events[-1] == "run.finished"
    assert {"run.ready", "pipeline.report"} <= set(events)
    assert records[-1]["fields"]["status"] == "succeeded"

    report = read_json(out / "fixture_report.json")
    assert report["run_id"] == "fixture-1" and report["force_idle"] is True
    assert report["offline"] is True
    assert report["config_template"]["sha256"]
    assert report["totals"]["sessions"] == 2 and report["totals"]["valid"] == 2
    first, second = report["sessions"]
    assert first["quality"] == "good", first["warnings"]
    s = first["stats"]
    assert s["video_frames"] == 60 and s["fps_achieved"] == 30.0
    assert s["input_events"] == 40 and s["actions"] == 20
    assert s["actions_per_minute"] == 600.0
    assert s["pts_equal_frame_indices"] is True
    assert s["timing"]["frame_ref_mismatches"] == 0
    assert second["stats"]["duplicate_frames"] == 2 and second["stats"]["webcam_frames"] == 30
    assert second["stats"]["audio"] == {"sample_rate": 44100, "channels": 2, "duration_s": 1.0}

    assert not (out / "ready.json").exists()  # removed on exit
    assert not (run_dir / "tmp").exists()  # temp removed on success
    assert list((tmp_path / "systmp").iterdir()) == []  # nothing in the global TMPDIR
    assert _git_status() == before  # nothing written to the working tree
    doc = read_json(out / "manifest.json")
    assert doc["status"] == "succeeded"
    assert [a["path"] for a in doc["artifacts"]] == ["fixture_report.json"]
    assert doc["config"]["sha256"] == report["config_template"]["sha256"]
    assert verify_manifest(out).ok


def _break_schema(session: Path) -> None:
    table = pq.read_table(session / "events.parquet")
    i = table.schema.get_field_index("mouse_x")
    table = table.set_column(
        i, pa.field("mouse_x", pa.float64()), table.column(i).cast(pa.float64())
    )
    pq.write_table(table, session / "events.parquet")


def test_invalid_sessions_fail_clearly_with_a_report(tmp_path: Path, data_root: Path) -> None:
    _break_schema(data_root / "session_20261121_100000")
    video = data_root / "session_20261121_110000" / "frames.mp4"
    video.write_bytes(video.read_bytes()[:300])  # truncated
    manifest = write_sessions_manifest(
        tmp_path / "m.json",
        [
            data_root / "session_20261121_100000",
            data_root / "session_20261121_110000",
            tmp_path / "nowhere",
        ],
    )
    out = tmp_path / "out"
    res = run_cli(
        ["pipeline", "--manifest", str(manifest), "--out", str(out), "--run-id", "bad"],
        env=child_env(tmp_path),
        cwd=tmp_path,
    )
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    err = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "3 of 3 sessions invalid" in err[0]
    report = read_json(out / "fixture_report.json")
    problems = [s["problems"] for s in report["sessions"]]
    assert "mouse_x: double != float" in problems[0][0]
    assert any("frames.mp4" in p for p in problems[1])
    assert problems[2] == ["session directory does not exist"]
    doc = read_json(out / "manifest.json")
    assert doc["status"] == "failed" and "sessions invalid" in doc["error"]
    assert verify_manifest(out).ok


def test_a_capture_run_manifest_is_accepted_as_input(tmp_path: Path) -> None:
    capture_out = tmp_path / "capture-run"
    with RunContext.from_env("capture", env={"AP_OUT_DIR": str(capture_out)}) as run:
        make_session(run.out_dir, "session_20261121_130000", seconds=1.0, inputs=10)
    res = run_cli(
        ["pipeline", "--manifest", str(capture_out / "manifest.json"),
         "--out", str(tmp_path / "p"), "--run-id", "p1"],
        env=child_env(tmp_path),
        cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("1/1 sessions valid")
    report = read_json(tmp_path / "p" / "fixture_report.json")
    assert report["sessions"][0]["session_id"] == "session_20261121_130000"


def _pipeline_with_template(
    tmp_path: Path, data_root: Path, template: dict[str, object]
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``aiconfig pipeline`` over one fixture session with ``template`` as its config template."""
    path = tmp_path / "t.json"
    path.write_text(json.dumps(template))
    manifest = write_sessions_manifest(tmp_path / "m.json", [data_root / "session_20261121_100000"])
    res = run_cli(
        ["pipeline", "--manifest", str(manifest), "--out", str(tmp_path / "o"),
         "--config-template", str(path)],
        env=child_env(tmp_path),
        cwd=tmp_path,
    )  # fmt: skip
    return res, path


def test_template_with_unknown_key_is_refused(tmp_path: Path, data_root: Path) -> None:
    res, _ = _pipeline_with_template(tmp_path, data_root, {"max_drop_rate": 0.1, "max_dorp": 1})
    assert res.returncode == 1
    assert "unknown key 'max_dorp'" in res.stderr and "Traceback" not in res.stderr


# Every input event type the recorder writes (tests/capture/test_capture_e2e.py holds the list
# equal to what a real recording writes).
RECORDED_INPUTS = INPUT_EVENT_TYPES


def test_actions_count_the_recorders_presses_and_scrolls(tmp_path: Path) -> None:
    from aiconfig.harness.pipeline import load_template
    from aiconfig.harness.sessions import Thresholds, analyze_session

    session = make_session(tmp_path, inputs=60, input_kinds=RECORDED_INPUTS)  # 10 of each
    shipped, _ = load_template(REPO / "tools" / "fixture_config_template.json")
    for thresholds in (Thresholds(), shipped):
        stats = analyze_session(session, thresholds=thresholds).stats
        assert stats["input_counts"] == dict.fromkeys(RECORDED_INPUTS, 10)
        # a press or a scroll is an action; a release or a move is not
        assert stats["actions"] == 30 and stats["actions_per_minute"] == 900.0
        assert set(thresholds.action_event_types) <= set(stats["input_counts"])


def test_template_naming_an_event_type_the_recorder_never_writes_is_refused(
    tmp_path: Path, data_root: Path
) -> None:
    res, template = _pipeline_with_template(
        tmp_path, data_root, {"action_event_types": ["key_press", "scroll"]}
    )
    assert res.returncode == 1 and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert str(template) in lines[0] and "action_event_types: 'scroll'" in lines[0]
    assert "use: " + ", ".join(RECORDED_INPUTS) in lines[0]
    assert not (tmp_path / "o" / "fixture_report.json").exists()


def test_analyze_session_takes_no_threads(tmp_path: Path) -> None:
    from aiconfig.harness.sessions import Thresholds, analyze_session

    session = make_session(tmp_path, seconds=1.0)
    assert analyze_session(session, thresholds=Thresholds(), batch_rows=1024).valid
    with pytest.raises(TypeError, match="threads"):
        analyze_session(session, thresholds=Thresholds(), threads=4)  # type: ignore[call-arg]


def test_session_with_its_own_manifest_is_rehashed(tmp_path: Path) -> None:
    from aiconfig.harness.pipeline import load_template
    from aiconfig.harness.sessions import analyze_session

    session = make_session(tmp_path, "session_20261121_180000", seconds=1.0, manifest=False)
    with RunContext.from_env("capture", env={"AP_OUT_DIR": str(session)}):
        pass  # the session directory is the run's output: manifest.json lists its files
    thresholds, _ = load_template(None)
    assert analyze_session(session, thresholds=thresholds).problems == []
    with (session / "metadata.json").open("a") as fh:
        fh.write(" ")
    problems = analyze_session(session, thresholds=thresholds).problems
    assert all(p.startswith("manifest.json: ") for p in problems)
    assert any("metadata.json" in p and "sha256 differs" in p for p in problems)


def test_pipeline_step_plugins(tmp_path: Path, data_root: Path) -> None:
    """Steps from a pinned entry-point plugin run on every session; their files are artifacts;
    a failing step makes its sessions invalid with the step's error; unpinned ones are refused."""
    site = tmp_path / "site"
    install_frame_tools(site)
    env = child_env(tmp_path, PYTHONPATH=f"{REPO}:{site}")
    pin_plugins(tmp_path, env, "frame-tools", ["frame_count", "failing_step", "ticker"])
    manifest = write_sessions_manifest(tmp_path / "m.json", sorted(data_root.iterdir()))

    def pipeline(out: str, *steps: str) -> subprocess.CompletedProcess[str]:
        args = ["pipeline", "--manifest", str(manifest), "--out", str(tmp_path / out)]
        args += ["--run-id", out, "--no-network"]
        for step in steps:
            args += ["--step", step]
        return run_cli(args, env=env, cwd=tmp_path)

    ok = pipeline("ok", "frame_count")
    assert ok.returncode == 0, ok.stderr
    report = read_json(tmp_path / "ok" / "fixture_report.json")
    assert report["steps"] == ["frame_count"]
    for session in report["sessions"]:
        result = session["steps"]["frame_count"]
        assert result["frames"] == session["stats"]["video_frames"] > 0
        assert result["session_id"] == session["session_id"]
        written = tmp_path / "ok" / "steps" / "frame_count" / session["session_id"] / "count.txt"
        assert written.read_text() == str(result["frames"])
    listed = {a["path"] for a in read_json(tmp_path / "ok" / "manifest.json")["artifacts"]}
    assert "steps/frame_count/session_20261121_100000/count.txt" in listed
    assert verify_manifest(tmp_path / "ok").ok

    bad = pipeline("bad", "frame_count", "failing_step")
    assert bad.returncode == 1 and "step 'failing_step' failed" in bad.stderr
    assert "model weights missing" in bad.stderr and "Traceback" not in bad.stderr
    report = read_json(tmp_path / "bad" / "fixture_report.json")
    assert report["totals"]["invalid"] == 2
    assert all("frame_count" in s["steps"] for s in report["sessions"])  # the others still ran

    refused = pipeline("refused", "ticker")  # a capture stream, not a step
    assert refused.returncode == 1 and "is not a pipeline step" in refused.stderr
    refused = pipeline("refused-2", "cloud_ticker")
    assert refused.returncode == 1 and "not in the allowlist" in refused.stderr
    assert not (tmp_path / "refused" / "fixture_report.json").exists()
