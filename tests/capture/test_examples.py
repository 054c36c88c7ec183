"""Examples a newcomer copies, run as written on a real X server: the README's orchestrator
walk-through (capture, manifest check, pipeline twice) and the example plugin distribution in
``examples/hello-plugin`` with the commands docs/harness.md gives for it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.capture.capture_helpers import REPO, XWindow, open_window

pytestmark = [pytest.mark.x11, pytest.mark.slow]


def _bash_blocks(doc: str, start: str, count: int) -> str:
    text = (REPO / doc).read_text(encoding="utf-8")
    first = text.rindex("```bash\n", 0, text.index(start))  # the block that holds ``start``
    blocks = re.findall(r"```bash\n(.*?)```", text[first:], re.S)
    assert len(blocks) >= count
    return "\n".join(blocks[:count])


def _shell_env(tmp: Path, **extra: str) -> dict[str, str]:
    """A user's shell with this checkout's `aiconfig`/`python3` first on PATH; `mktemp -d`
    makes its directories under the test's temp dir."""
    bindir = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AP_", "HYPERVISOR_"))}
    env.update(PATH=f"{bindir}{os.pathsep}{env['PATH']}", PYTHONPATH=str(REPO), TMPDIR=str(tmp))
    env.update(extra)
    return env


def _json_events(stdout: str, event: str) -> list[dict[str, object]]:
    records = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [r for r in records if r["event"] == event]


@pytest.fixture
def game_window(xvfb: str) -> Iterator[XWindow]:
    win = open_window("League of Legends", (100, 100, 640, 360))
    try:
        yield win
    finally:
        win.close()


def test_readme_orchestrator_example(game_window: XWindow, tmp_path: Path) -> None:
    script = _bash_blocks("README.md", "RUN_DIR=$(mktemp -d)", 2)
    assert "--duration 5" in script
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=REPO, env=_shell_env(tmp_path),
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    finished = _json_events(proc.stdout, "run.finished")
    assert [(r["run_id"], r["fields"]["status"]) for r in finished] == [  # type: ignore[index]
        ("cap-7", "succeeded"),
        ("pipe-7", "succeeded"),
        ("fixture-1", "succeeded"),
    ]
    assert re.search(r"^ok: \d+ artifacts verified in ", proc.stdout, re.M)
    reports = _json_events(proc.stdout, "pipeline.report")
    assert [r["fields"]["valid"] for r in reports] == [1, 1]  # type: ignore[index]


def test_example_plugin_as_documented(xvfb: str, tmp_path: Path) -> None:
    site = tmp_path / "site"
    # docs: `pip install ./examples/hello-plugin` into the venv; here into a private target
    # directory, so the suite's own environment never sees the plugin
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-warn-script-location",
         "--target", str(site), str(REPO / "examples" / "hello-plugin")],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    block = _bash_blocks("docs/harness.md", "pip install ./examples/hello-plugin", 1)
    lines = block.splitlines()
    assert lines[0].startswith("pip install ./examples/hello-plugin")
    assert lines[-1].startswith("pip uninstall -y hello-plugin")
    script = "\n".join(lines[1:-1])
    env = _shell_env(tmp_path, PYTHONPATH=f"{REPO}{os.pathsep}{site}")
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=work, env=env,
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # the output the doc shows, line for line
    for shown in (ln.lstrip("# ") for ln in lines if ln.startswith("# ")):
        if shown.startswith(("frame_count", "null_stream")):
            assert shown in proc.stdout
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    assert record["fps"] == 30 and record["duration_s"] == pytest.approx(2.0, abs=0.1)
    assert record["session_id"].startswith("session_")

    # the pipeline step of the same distribution, over that session
    (session,) = Path(str(next(work.parent.glob("tmp.*")))).glob("session_*")
    (tmp_path / "allowlist.txt").write_text("frame_count\n")
    manifest = tmp_path / "sessions.json"
    manifest.write_text(json.dumps({"sessions": [str(session)]}))
    out = tmp_path / "pipeline"
    step_env = {**env, "AP_PLUGIN_LOCK": str(work / "plugins.lock"),
                "AP_PLUGINS_ALLOWLIST": str(tmp_path / "allowlist.txt")}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "aiconfig", "pipeline", "--manifest", str(manifest),
         "--out", str(out), "--run-id", "hello-1", "--step", "frame_count"],
        env=step_env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "fixture_report.json").read_text())
    (entry,) = report["sessions"]
    assert entry["steps"]["frame_count"] == {"frames": 60}
    (count,) = out.glob("steps/frame_count/*/count.txt")
    assert count.read_text() == "60\n"
