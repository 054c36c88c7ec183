"""SIGTERM is one behaviour for every job: the docs' own RunContext example, which catches
nothing, ends like the CLIs do: exit 143, no traceback, manifest ``interrupted``, no ready file."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

from .util import PY, REPO, child_env

DOC = (REPO / "docs" / "harness.md").read_text(encoding="utf-8")


def _api_example() -> str:
    section = DOC[DOC.index("## Using it from a job (Python API)") :]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    # once ready, the job works until it is terminated
    line = "    run.mark_ready()  # ready file once devices are open\n"
    assert line in block.group(1)
    return block.group(1).replace(line, line + "    time.sleep(60)\n")


def test_the_documented_runcontext_job_ends_like_the_cli_on_sigterm(tmp_path: Path) -> None:
    code = "import time\n" + _api_example()
    ready = tmp_path / "ready.json"
    out = tmp_path / "run" / "capture"
    proc = subprocess.Popen(
        [PY, "-c", code, "--out", str(out), "--ready-file", str(ready)],
        env=child_env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert not ready.exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert manifest["error"] == "terminated by signal 15"
