"""Run settings: flags win over AP_* variables; invalid values are refused before any work."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from aiconfig import RunSettingError
from aiconfig.harness import Budget, RunSettings, add_run_arguments, resolve_settings

from .util import child_env, run_cli


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    return parser.parse_args(argv)


def test_flags_win_over_env(tmp_path: Path) -> None:
    env = {
        "AP_RUN_ID": "from-env",
        "AP_OUT_DIR": str(tmp_path / "env-out"),
        "AP_CPU_LIMIT": "3",
        "AP_MEM_LIMIT_MB": "1024",
        "AP_NO_NETWORK": "0",
        "AP_LOG_JSON": "yes",
    }
    args = parse(
        [
            "--run-id",
            "from-flag",
            "--out",
            str(tmp_path / "o"),
            "--no-network",
            "--cpu-limit",
            "1.5",
        ]
    )
    s = resolve_settings(args, "capture", env=env)
    assert s.run_id == "from-flag"
    assert s.out_dir == tmp_path / "o"
    assert s.no_network is True  # the flag wins over AP_NO_NETWORK=0
    assert s.cpu_limit == 1.5
    assert s.mem_limit_mb == 1024  # from the environment
    assert s.log_json is True
    assert s.sources["run_id"] == "--run-id"
    assert s.sources["mem_limit_mb"] == "AP_MEM_LIMIT_MB"
    assert s.tmp_dir == tmp_path / "tmp" / "capture" / "from-flag"


def test_env_only_and_hypervisor_defaults(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    env = {
        "AP_RUN_ID": "r-1",
        "AP_OUT_DIR": str(run_dir / "autocapture_prime"),
        "HYPERVISOR_RUN_DIR": str(run_dir),
        "AP_NO_NETWORK": "1",
    }
    s = resolve_settings(None, "pipeline", env=env)
    assert s.no_network and not s.log_json
    assert s.run_dir == run_dir
    assert s.lock_dir == run_dir / "shared" / "locks"
    assert s.tmp_dir == run_dir / "tmp" / "pipeline" / "r-1"


def test_generated_run_id_and_default_out(tmp_path: Path) -> None:
    s = resolve_settings(None, "capture", env={}, default_out=tmp_path / "sessions")
    assert s.run_id.startswith("capture-")
    assert s.sources["run_id"] == "generated"
    assert s.out_dir == tmp_path / "sessions"


def test_default_out_per_run(tmp_path: Path) -> None:
    base = tmp_path / "runs" / "infer"
    env = {"AP_RUN_ID": "r7"}
    s = resolve_settings(None, "infer", env=env, default_out=base, default_out_per_run=True)
    assert s.out_dir == base / "r7" and s.run_dir == base  # outside an orchestrator
    hyper = {**env, "HYPERVISOR_RUN_DIR": str(tmp_path / "hv")}
    s = resolve_settings(None, "infer", env=hyper, default_out=base, default_out_per_run=True)
    assert s.out_dir == base / "r7" and s.run_dir == tmp_path / "hv"
    given = {**env, "AP_OUT_DIR": str(tmp_path / "mine")}
    s = resolve_settings(None, "infer", env=given, default_out=base, default_out_per_run=True)
    assert s.out_dir == tmp_path / "mine"  # an explicit output directory is used as is


def test_every_invalid_value_is_reported_at_once(tmp_path: Path) -> None:
    env = {
        "AP_RUN_ID": "../escape",
        "AP_CPU_LIMIT": "lots",
        "AP_MEM_LIMIT_MB": "12",
        "AP_NO_NETWORK": "maybe",
        "AP_DATA_ROOT": str(tmp_path / "a-file"),
    }
    (tmp_path / "a-file").write_text("not a directory")
    with pytest.raises(RunSettingError) as info:
        resolve_settings(None, "capture", env=env)
    text = str(info.value)
    for name in (
        "AP_RUN_ID",
        "AP_CPU_LIMIT",
        "AP_MEM_LIMIT_MB",
        "AP_NO_NETWORK",
        "AP_DATA_ROOT",
        "--out",
    ):
        assert name in text, name
    assert len(info.value.problems) == 6


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "1e9"])
def test_cpu_limit_bounds(tmp_path: Path, value: str) -> None:
    with pytest.raises(RunSettingError, match="AP_CPU_LIMIT"):
        resolve_settings(None, "capture", env={"AP_CPU_LIMIT": value, "AP_OUT_DIR": str(tmp_path)})


def test_settings_are_immutable(tmp_path: Path) -> None:
    s = resolve_settings(None, "capture", env={"AP_OUT_DIR": str(tmp_path)})
    assert isinstance(s, RunSettings)
    with pytest.raises(AttributeError):
        s.run_id = "x"  # type: ignore[misc]


def test_cli_refuses_bad_values_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = child_env(tmp_path, AP_CPU_LIMIT="0", AP_MEM_LIMIT_MB="ten")
    res = run_cli(
        ["pipeline", "--manifest", str(tmp_path / "m.json"), "--out", str(out), "--run-id", "a/b"],
        env=env,
        cwd=tmp_path,
    )
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 3 and all(line.startswith("error: ") for line in lines)
    assert not out.exists()  # refused before any work
    assert res.stdout == ""


def test_budget_sizes() -> None:
    b = Budget(cpus=1.5, mem_limit_mb=512)
    assert (b.threads, b.encoder_threads, b.io_threads) == (1, 1, 2)
    assert b.buffer_bytes == 128 * 1024 * 1024
    frame = 1920 * 1080 * 4
    assert b.queue_size(frame, 64) == 16  # degraded from 64 to what fits
    assert Budget(cpus=8).queue_size(frame, 64) == 64  # unlimited memory
    assert b.thread_env()["OMP_NUM_THREADS"] == "1"
    assert b.chunk_bytes() == 8 * 1024 * 1024
    assert Budget(cpus=1, mem_limit_mb=64).chunk_bytes() == 1024 * 1024


def test_budget_fails_clearly_when_nothing_fits() -> None:
    from aiconfig import BudgetError

    with pytest.raises(BudgetError, match="AP_MEM_LIMIT_MB"):
        Budget(cpus=1, mem_limit_mb=64).queue_size(10 * 1024 * 1024, 8, what="frame queue")


def test_budget_defaults_to_affinity() -> None:
    import os

    b = Budget.from_limits(None, None)
    assert b.cpus == len(os.sched_getaffinity(0)) or b.cpu_source == "cgroup"
    assert Budget.from_limits(2, 256).cpu_source == "AP_CPU_LIMIT"
