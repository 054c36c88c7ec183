"""The session examples of README.md and docs/sessions.md run as written (blocks marked
``<!-- test: sessions-... -->``), against real recorded sessions in ``./sessions``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

from .conftest import Recorded, session_dirs

pytestmark = [pytest.mark.x11, pytest.mark.audio, pytest.mark.slow]

# The docs runner's marker for a block a dedicated test runs (these need recordings).
MARK = re.compile(r"<!-- test: (sessions-[\w-]+) -->\n```(\w+)\n(.*?)```", re.S)


def _blocks() -> dict[str, tuple[str, str]]:
    found = {}
    for doc in (REPO / "README.md", REPO / "docs" / "sessions.md"):
        for name, lang, body in MARK.findall(doc.read_text(encoding="utf-8")):
            found[name] = (lang, body)
    return found


BLOCKS = _blocks()


def test_the_documented_examples_are_marked() -> None:
    assert set(BLOCKS) == {"sessions-readme", "sessions-python", "sessions-cli", "sessions-queries"}


@pytest.fixture
def workdir(recorded: Recorded, tmp_path: Path) -> Path:
    """A folder like a user's: ./sessions holding the recorded sessions, and ``aiconfig`` on
    PATH running this checkout."""
    for session in session_dirs(recorded.root):
        shutil.copytree(session, tmp_path / "sessions" / session.name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "aiconfig"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m aiconfig "$@"\n')
    script.chmod(0o755)
    return tmp_path


def _env(workdir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{workdir / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
    }


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_example_runs_as_written(name: str, workdir: Path) -> None:
    lang, body = BLOCKS[name]
    argv = (
        ["bash", "-euo", "pipefail", "-c", body] if lang == "bash" else [sys.executable, "-c", body]
    )
    res = subprocess.run(
        argv, cwd=workdir, env=_env(workdir), capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert res.returncode == 0, f"{name}: {res.stderr[-3000:]}"
    assert "Traceback" not in res.stderr
    if name in ("sessions-readme", "sessions-queries"):
        assert "key_presses_per_min" in res.stdout and "padded_pct" in res.stdout
        per_min = re.findall(r"^(session_\S+)\s+([\d.]+)$", res.stdout, re.M)
        assert len(per_min) == 1 and float(per_min[0][1]) > 0  # the session with key presses
    if name == "sessions-readme":
        assert (workdir / "sessions-report.html").is_file()
    if name == "sessions-cli":
        assert (workdir / "last-session.html").is_file() and (
            workdir / "all-sessions.html"
        ).is_file()
        assert "2/2 sessions valid" in res.stdout
    if name == "sessions-queries":
        assert (workdir / "clicks.parquet").is_file()
    if name == "sessions-python":
        assert "complete 1.0.0" in res.stdout and "True []" in res.stdout
