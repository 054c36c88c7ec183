"""Public surface of aiconfig.harness (its layer: tests/test_layering.py); CLI output discipline
under --log-json."""

from __future__ import annotations

import json
from pathlib import Path

from aiconfig import harness

from .sessions import make_session
from .util import child_env, run_cli, write_sessions_manifest


def test_all_matches_public_names() -> None:
    public = {n for n in vars(harness) if not n.startswith("_")}
    modules = {n for n in public if type(vars(harness)[n]).__name__ == "module"}
    assert set(harness.__all__) == public - modules - {"annotations"}


def test_failed_run_with_log_json_keeps_stdout_pure(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_session(data, "session_20261121_170000", seconds=1.0)
    (data / "session_20261121_170000" / "metadata.json").write_text("{not json")
    manifest = write_sessions_manifest(tmp_path / "m.json", [data / "session_20261121_170000"])
    res = run_cli(
        ["pipeline", "--manifest", str(manifest), "--out", str(tmp_path / "o"), "--log-json"],
        env=child_env(tmp_path, AP_RUN_ID="lj"),
        cwd=tmp_path,
    )
    assert res.returncode == 1
    records = [json.loads(line) for line in res.stdout.splitlines()]
    assert records[-1]["event"] == "run.finished"
    assert records[-1]["fields"]["status"] == "failed"
    assert "1 of 1 sessions invalid" in records[-1]["fields"]["error"]
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "metadata.json: unreadable" in lines[0]


def test_human_mode_success_prints_one_result_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_session(data, "session_20261121_170000", seconds=1.0)
    manifest = write_sessions_manifest(tmp_path / "m.json", ["session_20261121_170000"])
    res = run_cli(
        ["pipeline", "--manifest", str(manifest), "--out", str(tmp_path / "o"),
         "--data-root", str(data)],
        env=child_env(tmp_path),
        cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    assert res.stdout.splitlines() == [
        f"1/1 sessions valid (0 degraded); report: {tmp_path / 'o' / 'fixture_report.json'}"
    ]
