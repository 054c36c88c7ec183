"""One validator: ``python -m capture validate``, ``aiconfig sessions validate`` and the pipeline
give the same verdict on the same sessions; and the pipeline calls a session degraded only when
a documented threshold says so (a recorded session is "good")."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from aiconfig.sessions import build_manifest
from tests.conftest import REPO

from .conftest import copy_session, session_dirs
from .test_catalog import cli

pytestmark = [pytest.mark.x11, pytest.mark.audio, pytest.mark.slow]


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def _pipeline(tmp: Path, sessions: list[Path], *extra: str) -> dict[str, dict[str, object]]:
    manifest = tmp / "input.json"
    manifest.write_text(json.dumps({"sessions": [str(s) for s in sessions]}))
    out = tmp / f"out{len(list(tmp.glob('out*')))}"
    res = _run("-m", "aiconfig", "pipeline", "--manifest", str(manifest), "--out", str(out),
               "--run-id", out.name, *extra)  # fmt: skip
    assert "Traceback" not in res.stderr
    report = json.loads((out / "fixture_report.json").read_text())
    return {Path(str(s["path"])).name: s for s in report["sessions"]}


def test_the_three_entry_points_agree(broken_root: Path, tmp_path: Path) -> None:
    played = session_dirs(broken_root / "played")[0]
    tampered = copy_session(played, broken_root, "session_20990101_000005")
    data = bytearray((tampered / "frames.mp4").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tampered / "frames.mp4").write_bytes(bytes(data))
    sessions = session_dirs(broken_root)
    assert len(sessions) == 7

    catalog = json.loads(cli("validate", "--json", str(broken_root)).stdout)["results"]
    by_catalog = {Path(v["path"]).name: v["problems"] for v in catalog}
    by_pipeline = {k: v["problems"] for k, v in _pipeline(tmp_path, sessions).items()}
    for session in sessions:
        res = _run("-m", "capture", "validate", str(session))
        problems = [line.removeprefix("invalid: ") for line in res.stderr.splitlines()]
        assert res.returncode == (1 if problems else 0), res.stderr
        assert by_catalog[session.name] == problems == by_pipeline[session.name], session.name
    valid = sorted(name for name, p in by_catalog.items() if not p)
    assert valid == sorted(s.name for s in session_dirs(broken_root / "played") +
                           session_dirs(broken_root / "plain"))  # fmt: skip
    assert any("sha256 differs" in p for p in by_catalog[tampered.name])


def test_recorded_sessions_are_good_not_degraded(sessions_root: Path, tmp_path: Path) -> None:
    sessions = session_dirs(sessions_root)
    played = session_dirs(sessions_root / "played")[0]
    # A note (the validator's observation) is reported but is not a degradation.
    meta = json.loads((played / "metadata.json").read_text())
    meta["end_t_ns"] += 5 * 10**9
    (played / "metadata.json").write_text(json.dumps(meta))
    old = json.loads((played / "manifest.json").read_text())
    (played / "manifest.json").write_text(json.dumps(build_manifest(played, old["status"])))
    default = _pipeline(tmp_path, sessions)
    for name, entry in default.items():
        # Only a documented threshold degrades (a loaded machine may really break one).
        degraded = entry["degraded_by"]
        assert isinstance(degraded, list) and entry["valid"], (name, entry)
        assert entry["quality"] == ("degraded" if degraded else "good")
        assert all(re.search(r"> (max_drop_rate|max_capture_jitter_ms|max_capture_lag_ms) ", d)
                   for d in degraded), degraded  # fmt: skip
    lenient = tmp_path / "lenient.json"
    lenient.write_text(json.dumps({"max_capture_lag_ms": 1e6, "max_capture_jitter_ms": 1e6,
                                   "max_drop_rate": 1.0}))  # fmt: skip
    report = _pipeline(tmp_path, sessions, "--config-template", str(lenient))
    for name, entry in report.items():
        assert entry["valid"] and entry["quality"] == "good", (name, entry)
        assert entry["degraded_by"] == []
    assert report[played.name]["warnings"] == ["duration_s disagrees with end_t_ns - start_t_ns"]

    template = tmp_path / "strict.json"
    # Only the lag threshold is impossible to meet; the others are the lenient ones, so a frame
    # a loaded machine dropped (the default max_drop_rate is 1%) does not add a second reason.
    template.write_text(json.dumps({**json.loads(lenient.read_text()), "max_capture_lag_ms": 0.0}))
    strict = _pipeline(tmp_path, sessions, "--config-template", str(template))
    for entry in strict.values():
        assert entry["quality"] == "degraded"
        degraded = entry["degraded_by"]
        assert isinstance(degraded, list) and len(degraded) == 1
        assert "max_capture_lag_ms 0.0" in degraded[0]
