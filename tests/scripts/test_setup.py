"""The README's two commands on a stock Debian interpreter: ``scripts/setup.sh`` creates and
fills a project venv from Debian's own ``python3``, which refuses pip installs (PEP 668), and
``scripts/demo.sh`` runs end to end from that venv.

These run the real scripts against the real Debian interpreter (``/usr/bin/python3`` with its
``EXTERNALLY-MANAGED`` marker; setup.sh installs ``python3-venv``, which brings it) into a
fresh venv directory, from a clean state: nothing of the test run's own environment is reused.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEBIAN_PYTHON = Path("/usr/bin/python3")
pytestmark = pytest.mark.slow


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of a new shell: none of this test run's venv or import path."""
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(sys.prefix)
    )
    env.update(extra)
    return env


def _stdlib_of(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Path(out)


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``PYTHON=/usr/bin/python3 AICONFIG_VENV=<new dir> bash scripts/setup.sh``."""
    venv = tmp_path_factory.mktemp("setup") / "venv"
    proc = subprocess.run(
        ["bash", "scripts/setup.sh"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env=_clean_env(PYTHON=str(DEBIAN_PYTHON), AICONFIG_VENV=str(venv)),
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert f"creating the virtual environment {venv}" in proc.stderr
    return venv


def test_the_interpreter_is_externally_managed() -> None:
    """The premise: Debian's python3 carries the PEP 668 marker and pip refuses to install into
    it (pip checks the target interpreter's marker, so this holds with or without python3-pip)."""
    assert (_stdlib_of(DEBIAN_PYTHON) / "EXTERNALLY-MANAGED").is_file()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(DEBIAN_PYTHON),
            "install",
            "--dry-run",
            "--no-index",
            "pyyaml",
        ],
        capture_output=True,
        text=True,
        check=False,
        env=_clean_env(),
    )
    assert proc.returncode != 0
    assert "externally-managed-environment" in proc.stderr


def test_setup_fills_a_venv_made_from_the_debian_interpreter(fresh_venv: Path) -> None:
    py = fresh_venv / "bin" / "python"
    base = subprocess.run(
        [str(py), "-c", "import sys; print(sys.base_prefix, sys.prefix != sys.base_prefix)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert base == ["/usr", "True"]
    # torch pinned, every extra's packages, the package itself editable from this checkout
    probe = (
        "import importlib.metadata as m, aiconfig, capture, torch, av, mss, Xlib, pytest, "
        "opentelemetry.sdk; print(m.version('torch'), aiconfig.__file__)"
    )
    out = subprocess.run(
        [str(py), "-I", "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0].split("+")[0] == "2.13.0"
    assert Path(out[1]).is_relative_to(REPO)
    # nothing went into Debian's interpreter
    proc = subprocess.run(
        [str(DEBIAN_PYTHON), "-I", "-c", "import aiconfig"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "No module named 'aiconfig'" in proc.stderr


def test_documented_commands_work_from_the_venv(fresh_venv: Path, tmp_path: Path) -> None:
    """With the venv activated (its bin/ first on PATH), as the README says."""
    env = _clean_env(
        PATH=f"{fresh_venv / 'bin'}{os.pathsep}{_clean_env()['PATH']}",
        VIRTUAL_ENV=str(fresh_venv),
        AP_DATA_ROOT=str(tmp_path),
    )
    for argv in (
        ["aiconfig", "--version"],
        ["aiconfig", "verify", "experiments/baseline.yaml"],
        ["python", "-m", "aiconfig", "lineage", "experiments/lr-1e-3.yaml"],
        ["python", "-m", "capture", "--help"],
        ["python3", "tools/run_fixture_pipeline.py", "--help"],
    ):
        proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, (argv, proc.stderr)


def test_a_second_setup_installs_nothing(fresh_venv: Path) -> None:
    proc = subprocess.run(
        ["bash", "scripts/setup.sh"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env=_clean_env(PYTHON=str(DEBIAN_PYTHON), AICONFIG_VENV=str(fresh_venv)),
    )
    assert proc.returncode == 0, proc.stderr
    assert "setup:" not in proc.stderr


@pytest.mark.x11
def test_demo_runs_from_the_venv_and_stops_its_own_xvfb(fresh_venv: Path, tmp_path: Path) -> None:
    env = _clean_env(AICONFIG_VENV=str(fresh_venv), OUT=str(tmp_path / "demo"), DURATION="2")
    env.pop("DISPLAY", None)
    proc = subprocess.run(
        ["bash", "scripts/demo.sh"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert re.search(r"session_\d{8}_\d{6}: valid", proc.stdout)
    m = re.search(r"Xvfb pid (\d+) on DISPLAY=:(\d+)", proc.stdout)
    assert m, proc.stdout
    # the server it started (and only that one) is gone, reaped, once the demo exits
    with pytest.raises(ProcessLookupError):
        os.kill(int(m.group(1)), 0)
    assert "pgrep" not in (REPO / "scripts" / "demo.sh").read_text(encoding="utf-8")
