"""Each benchmark starts both ways the docs run them: ``python -m benchmarks.bench_x`` and
``python benchmarks/bench_x.py`` (which once failed with ``No module named 'tests'``), from a
shell with no PYTHONPATH, importing this checkout's code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = sorted(p.name for p in (REPO / "benchmarks").glob("bench_*.py"))
# Loads the file as ``python benchmarks/X.py`` would (no package), without running main().
AS_SCRIPT = (
    "import runpy, sys; g = runpy.run_path(sys.argv[1], run_name='as_script'); "
    "import aiconfig; print(aiconfig.__file__)"
)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_file_imports_as_a_script(name: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", AS_SCRIPT, str(REPO / "benchmarks" / name)],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.split()[-1]).is_relative_to(REPO)


@pytest.mark.parametrize("argv", [["benchmarks/bench_capture.py", "--help"],
                                  ["-m", "benchmarks.bench_capture", "--help"]])  # fmt: skip
def test_bench_capture_help_both_ways(argv: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, *argv], cwd=REPO, env=_env(), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout
