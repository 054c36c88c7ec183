"""The seed's harness tests: tiny-budget smoke run, parallel runs, memory budget as a hard limit."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from aiconfig.harness import verify_manifest

from .sessions import make_session
from .util import PY, child_env, read_json, write_sessions_manifest

MIB = 1024 * 1024


def _pipeline_cmd(manifest: Path, out: Path, run_id: str) -> list[str]:
    return [PY, "-m", "aiconfig", "pipeline", "--manifest", str(manifest), "--out", str(out),
            "--run-id", run_id, "--no-network", "--log-json", "--ready-file",
            str(out / "ready.json")]  # fmt: skip


def test_smoke_under_one_cpu_and_512_mb(tmp_path: Path, data_root: Path) -> None:
    manifest = write_sessions_manifest(
        tmp_path / "m.json", sorted(p.name for p in data_root.iterdir())
    )
    env = child_env(tmp_path, AP_CPU_LIMIT="1", AP_MEM_LIMIT_MB="512",
                    AP_DATA_ROOT=str(data_root))  # fmt: skip
    limits = ["taskset", "-c", "0", "prlimit", f"--as={512 * MIB}", "--"]
    res = subprocess.run(
        [*limits, *_pipeline_cmd(manifest, tmp_path / "out", "smoke")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    started = json.loads(res.stdout.splitlines()[0])
    assert started["event"] == "run.started"
    assert started["fields"]["cpus"] == 1.0 and started["fields"]["mem_limit_mb"] == 512
    report = read_json(tmp_path / "out" / "fixture_report.json")
    assert report["budget"] == {"cpus": 1.0, "mem_limit_mb": 512}
    assert report["totals"]["valid"] == 2
    assert verify_manifest(tmp_path / "out").ok


def test_parallel_runs_do_not_collide(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_session(data, "session_20261121_140000", seconds=1.0, seed=1)
    make_session(data, "session_20261121_150000", seconds=1.0, seed=2, inputs=12)
    manifest = write_sessions_manifest(tmp_path / "m.json", sorted(p for p in data.iterdir()))
    runs = tmp_path / "runs"  # both runs share RUN_DIR = runs/, hence runs/tmp/pipeline/
    env = child_env(tmp_path, AP_CPU_LIMIT="1", AP_MEM_LIMIT_MB="512")
    procs = {
        rid: subprocess.Popen(
            _pipeline_cmd(manifest, runs / rid, rid),
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rid in ("run-a", "run-b")
    }
    for rid, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert all(json.loads(line)["run_id"] == rid for line in out.splitlines())
    reports = {}
    for rid in procs:
        doc = read_json(runs / rid / "manifest.json")
        assert doc["run_id"] == rid and doc["status"] == "succeeded"
        assert verify_manifest(runs / rid).ok
        reports[rid] = read_json(runs / rid / "fixture_report.json")
        assert reports[rid]["run_id"] == rid
        assert reports[rid]["totals"]["valid"] == 2
        assert sorted(p.name for p in (runs / rid).iterdir()) == [
            ".aiconfig-run.lock",
            "fixture_report.json",
            "manifest.json",
        ]
    strip = [{k: v for k, v in s.items()} for s in reports["run-a"]["sessions"]]
    assert strip == reports["run-b"]["sessions"]  # same input, same statistics
    assert sorted(p.name for p in runs.iterdir()) == ["run-a", "run-b"]  # tmp/ cleaned


CHILD_ALLOC = """
import json, os, sys
from aiconfig.harness import RunContext
with RunContext.from_env("capture") as run:
    threads = os.environ["OMP_NUM_THREADS"]
    try:
        blob = bytearray(1024 * 1024 * 1024)
    except MemoryError:
        print(json.dumps({"memory_error": True, "threads": threads}))
        raise
"""


def test_memory_budget_fails_clearly_instead_of_oom(tmp_path: Path) -> None:
    env = child_env(tmp_path, AP_MEM_LIMIT_MB="256", AP_CPU_LIMIT="1",
                    AP_OUT_DIR=str(tmp_path / "out"), AP_RUN_ID="mem")  # fmt: skip
    res = subprocess.run([PY, "-c", CHILD_ALLOC], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=60, check=False)  # fmt: skip
    assert res.returncode == 1
    assert json.loads(res.stdout.splitlines()[0]) == {"memory_error": True, "threads": "1"}
    doc = read_json(tmp_path / "out" / "manifest.json")
    assert doc["status"] == "failed" and doc["error"] == "MemoryError"


def test_budget_below_the_baseline_is_refused_before_work(tmp_path: Path, data_root: Path) -> None:
    manifest = write_sessions_manifest(tmp_path / "m.json", sorted(data_root.iterdir()))
    env = child_env(tmp_path, AP_MEM_LIMIT_MB="64")
    res = subprocess.run(
        _pipeline_cmd(manifest, tmp_path / "out", "tiny"),
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and "AP_MEM_LIMIT_MB" in lines[0] and "leaves no room" in lines[0]
    finished = json.loads(res.stdout.splitlines()[-1])
    assert finished["event"] == "run.finished" and finished["fields"]["status"] == "failed"
    assert not (tmp_path / "out" / "manifest.json").exists()
