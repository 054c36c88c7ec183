"""The README's "Errors that explain themselves" example runs as written: the file it shows is
``examples/broken.yaml``, and the command prints exactly the lines shown."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
SECTION = README[README.index("`examples/broken.yaml` has one mistake") :]


def test_the_shown_file_is_the_shipped_file() -> None:
    shown = re.search(r"```yaml\n(.*?)```", SECTION, re.S)
    assert shown is not None
    assert shown.group(1) == (REPO / "examples" / "broken.yaml").read_text(encoding="utf-8")


def test_the_command_prints_what_is_shown() -> None:
    console = re.search(r"```console\n\$ (.*?)\n(.*?)```", SECTION, re.S)
    assert console is not None
    command, expected = console.group(1), console.group(2).splitlines()
    assert expected.pop() == "[exit 1]"  # the doc-example convention: the exit status shown
    env_part, _, argv = command.partition(" aiconfig ")
    assert env_part == "CONC=many"
    env = {**os.environ, "CONC": "many", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "aiconfig", *argv.split()],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == expected
    assert proc.stdout == ""
