"""Run manifest: written last and atomically, relative paths, hashes re-verified by the CLI."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from aiconfig import ManifestError, RunStateError
from aiconfig.harness import SCHEMA_VERSION, RunContext, verify_manifest

from .sessions import corrupt_byte, make_session
from .util import child_env, read_json, run_cli


def _run(tmp_path: Path, run_id: str = "m1") -> RunContext:
    return RunContext.from_env(
        "capture", env={"AP_OUT_DIR": str(tmp_path / "out"), "AP_RUN_ID": run_id}
    )


def test_manifest_lists_every_artifact(tmp_path: Path) -> None:
    with _run(tmp_path) as run:
        session = make_session(run.out_dir, "session_20261121_120000", seconds=1.0, audio=True)
        (run.out_dir / "notes").mkdir()
        (run.out_dir / "notes" / "a.txt").write_text("hello")
        run.add_artifact("notes/a.txt", kind="note")
        run.set_config(
            sha256="ab" * 32,
            signers=["bob@example.com", "alice@example.com"],
            path="experiments/baseline.yaml",
        )
        assert not (run.out_dir / "manifest.json").exists()  # only at the end
    doc = read_json(tmp_path / "out" / "manifest.json")
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["run_id"] == "m1" and doc["job"] == "capture" and doc["status"] == "succeeded"
    assert doc["started_at"] <= doc["ended_at"]
    assert doc["config"]["signers"] == ["alice@example.com", "bob@example.com"]
    arts = {a["path"]: a for a in doc["artifacts"]}
    assert sorted(arts) == [
        "notes/a.txt",
        "session_20261121_120000/audio.wav",
        "session_20261121_120000/events.parquet",
        "session_20261121_120000/frames.mp4",
        "session_20261121_120000/manifest.json",  # the session's own commit record
        "session_20261121_120000/metadata.json",
    ]
    frames = arts["session_20261121_120000/frames.mp4"]
    data = (session / "frames.mp4").read_bytes()
    assert frames["sha256"] == hashlib.sha256(data).hexdigest()
    assert frames["size"] == len(data) and frames["kind"] == "video"
    meta = read_json(session / "metadata.json")
    assert frames["capture"]["start_t_ns"] == meta["start_t_ns"]
    assert frames["capture"]["end_t_ns"] == meta["end_t_ns"]
    assert arts["notes/a.txt"]["kind"] == "note"
    assert verify_manifest(tmp_path / "out").ok


def test_failed_run_still_writes_manifest(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="boom"), _run(tmp_path):
        raise ValueError("boom")
    doc = read_json(tmp_path / "out" / "manifest.json")
    assert doc["status"] == "failed" and doc["error"] == "boom"


def test_cli_verify_detects_tampering(tmp_path: Path) -> None:
    with _run(tmp_path) as run:
        make_session(run.out_dir, "session_20261121_120000", seconds=1.0)
    out = tmp_path / "out"
    env = child_env(tmp_path)
    ok = run_cli(["manifest", "verify", str(out)], env=env, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("ok: 4 artifacts verified")

    corrupt_byte(out / "session_20261121_120000" / "frames.mp4")
    (out / "session_20261121_120000" / "metadata.json").unlink()
    (out / "extra.txt").write_text("not in the manifest")
    bad = run_cli(["manifest", "verify", str(out)], env=env, cwd=tmp_path)
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr
    lines = bad.stderr.splitlines()
    assert len(lines) == 3
    assert any("frames.mp4" in x and "sha256 differs" in x for x in lines)
    assert any("metadata.json" in x and "missing" in x for x in lines)
    assert any("extra.txt" in x and "not listed" in x for x in lines)

    js = run_cli(["manifest", "verify", "--json", "--allow-extra", str(out)], env=env, cwd=tmp_path)
    assert js.returncode == 1
    assert len(json.loads(js.stdout)["problems"]) == 2


def test_unsafe_paths_are_rejected(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "secret").write_text("x")
    doc = {
        "schema_version": SCHEMA_VERSION,
        "artifacts": [
            {"path": "../secret", "size": 1, "sha256": "0" * 64},
            {"path": "/etc/passwd", "size": 1, "sha256": "0" * 64},
        ],
    }
    (out / "manifest.json").write_text(json.dumps(doc))
    result = verify_manifest(out)
    assert [p.message for p in result.problems] == ["unsafe or missing path"] * 2


def test_not_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no manifest"):
        verify_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text('{"schema_version": "other/9", "artifacts": []}')
    with pytest.raises(ManifestError, match="unsupported schema version"):
        verify_manifest(tmp_path)


def test_output_dir_of_another_run_is_refused(tmp_path: Path) -> None:
    with _run(tmp_path, "first"):
        pass
    with pytest.raises(RunStateError, match="already holds run 'first'"), _run(tmp_path, "second"):
        pytest.fail("entered")
    with _run(tmp_path, "first"):  # the same run id may re-run into its own directory
        pass


def test_concurrent_writers_of_one_output_dir_are_refused(tmp_path: Path) -> None:
    with (
        _run(tmp_path, "a"),
        pytest.raises(RunStateError, match="another run is writing"),
        _run(tmp_path, "b"),
    ):
        pytest.fail("entered")


def test_temp_dir_is_namespaced_exported_and_removed(tmp_path: Path) -> None:
    import tempfile

    before = os.environ.get("TMPDIR")
    with _run(tmp_path, "t1") as run:
        assert run.tmp_dir == tmp_path / "tmp" / "capture" / "t1"
        assert os.environ["TMPDIR"] == str(run.tmp_dir)
        with tempfile.NamedTemporaryFile() as fh:
            assert Path(fh.name).parent == run.tmp_dir
        cache = run.cache_dir("thumbnails")
        assert cache.name == "t1"
    assert not (tmp_path / "tmp").exists()
    assert os.environ.get("TMPDIR") == before


def test_mark_ready_outside_the_run_is_refused(tmp_path: Path) -> None:
    run = _run(tmp_path)
    with pytest.raises(RunStateError, match="inside the run's with block"):
        run.mark_ready()
    with run:
        run.mark_ready()  # no --ready-file: only logged
    with pytest.raises(RunStateError, match="entered once"), run:
        pass
