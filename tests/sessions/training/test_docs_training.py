"""The examples of docs/training.md run as written (blocks marked ``<!-- test: training-... -->``),
in a folder like a user's: ./sessions holding real recorded sessions, the project's experiments/
and keys/, and ``aiconfig`` on PATH running this checkout."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

from .conftest import TimedRoot

pytestmark = [
    pytest.mark.x11,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray"),
]

MARK = re.compile(r"<!-- test: (training-[\w-]+) -->\n```(\w+)\n(.*?)```", re.S)
BLOCKS = {
    name: (lang, body)
    for name, lang, body in MARK.findall((REPO / "docs" / "training.md").read_text())
}


def test_the_documented_examples_are_marked() -> None:
    assert set(BLOCKS) == {"training-python", "training-export", "training-ray"}


@pytest.fixture
def workdir(timed: TimedRoot, tmp_path: Path) -> Path:
    for session in sorted(timed.root.rglob("session_*")):
        shutil.copytree(session, tmp_path / "sessions" / session.name)
    for name in ("experiments", "keys"):
        shutil.copytree(REPO / name, tmp_path / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "aiconfig"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m aiconfig "$@"\n')
    script.chmod(0o755)
    return tmp_path


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_example_runs_as_written(name: str, workdir: Path) -> None:
    lang, body = BLOCKS[name]
    env = {
        **os.environ,
        "PATH": f"{workdir / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
        "AP_DATA_ROOT": str(workdir / "state"),
    }
    if lang == "bash":
        lines = [ln for ln in body.splitlines() if ln.strip()]
        *ok, last = lines
        script = "\n".join(ok)
        res = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=workdir, env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr[-3000:]
        again = subprocess.run(["bash", "-c", last], cwd=workdir, env=env, capture_output=True,
                               text=True, timeout=300, check=False)  # fmt: skip
        assert again.returncode == 1 and "already exists" in again.stderr  # as documented
        assert json.loads((workdir / "export.json").read_text())["fps"] == 15
        assert (workdir / "lerobot-out" / "meta" / "info.json").is_file()
        return
    res = subprocess.run([sys.executable, "-c", body], cwd=workdir, env=env,
                         capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    if name == "training-python":
        assert res.stdout.startswith("180 {}\ntorch.Size([4, 3, 144, 256]) torch.uint8\n")
    if name == "training-ray":
        assert res.stdout.startswith("2 sessions")
