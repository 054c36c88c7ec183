"""The examples of docs/editors-and-trackers.md and the README's tracker blocks that need more
than the generic documentation runner checks: blocks marked ``<!-- test: NAME -->`` run here,
once, in a documentation sandbox (tests/docs), and what they write and print is checked.

The MLflow server example talks to a real ``mlflow server`` on loopback; W&B runs offline.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from aiconfig._json_schema import shipped_schema_text
from tests.docs.examples import REPO, Example, dedicated, fenced
from tests.docs.runner import run_bash, run_python, sandbox_for
from tests.docs.setups import Sandbox

DOC = REPO / "docs" / "editors-and-trackers.md"
README = REPO / "README.md"


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    """The documentation sandbox with the shipped schemas and .vscode/ (``setup=schemas``)."""
    sandbox = sandbox_for(tmp_path / "repo", "schemas")
    sandbox.env["WANDB_SILENT"] = "true"
    return sandbox


def test_vscode_settings_block_is_the_committed_file() -> None:
    block = json.loads(fenced(DOC, "json", '"yaml.schemas"'))
    committed = json.loads((REPO / ".vscode" / "settings.json").read_text(encoding="utf-8"))
    assert block == committed
    for schema in committed["yaml.schemas"]:
        assert (REPO / schema).is_file()


def test_modeline_example_points_at_the_schema(box: Sandbox) -> None:
    example = fenced(DOC, "yaml", "yaml-language-server: $schema=")
    target = re.search(r"\$schema=(\S+)", example)
    assert target is not None
    new = box.root / "experiments" / "my-experiment.yaml"
    new.write_text(example, encoding="utf-8")
    assert (new.parent / target.group(1)).resolve().is_file()
    proc = subprocess.run(
        ["check-jsonschema", "--schemafile", target.group(1), new.name],
        cwd=new.parent,
        env=box.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout


def test_schema_commands(box: Sandbox) -> None:
    """``<!-- test: schema-commands -->``: the copies are the shipped schemas, byte for byte."""
    run_bash(dedicated(DOC, "schema-commands"), box)
    written = box.root / ".aiconfig" / "aiconfig.schema.json"
    assert written.read_text(encoding="utf-8") == shipped_schema_text("any")
    fork = box.root / ".aiconfig" / "fork.schema.json"
    assert fork.read_text(encoding="utf-8") == shipped_schema_text("fork")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """``mlflow server`` on loopback with a SQLite store; its URL once /health answers."""
    port = _free_port()
    argv = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", "1", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}"]
    argv += ["--default-artifact-root", str(tmp_path / "server-artifacts")]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:  # noqa: S310
                    if reply.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("mlflow server did not start") from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_track_commands(box: Sandbox, mlflow_server: str) -> None:
    """``<!-- test: track-commands -->`` prints what its comment shows; ``<!-- test:
    track-mlflow-server -->`` logs into a run a real MLflow server holds."""
    server = MlflowClient(tracking_uri=mlflow_server)
    run_id = server.create_run(server.create_experiment("training")).info.run_id
    box.env["MLFLOW_TRACKING_URI"] = mlflow_server
    box.env["MLFLOW_RUN_ID"] = run_id
    box.env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    block = dedicated(DOC, "track-commands")
    (proc,) = run_bash(block, box)
    run_bash(dedicated(DOC, "track-mlflow-server"), box)
    documented = [
        line.removeprefix("# ") for line in block.code.splitlines() if line.startswith("# ")
    ]
    first_run = proc.stdout.splitlines()[:2]
    # The run id differs, and the param count grows with the schema (a new field is a param).
    pattern = re.escape(documented[0]).replace(re.escape("6f1c..."), r"[0-9a-f]{32}")
    pattern = re.sub(r"\d+\\ params", r"\\d+\\ params", pattern)
    assert re.fullmatch(pattern, first_run[0]), (first_run[0], documented[0])
    assert first_run[1] == documented[1]
    local = local_store(box.root)
    (exp,) = [e for e in local.search_experiments() if e.name == "lol-bc-baseline"]
    (run,) = local.search_runs([exp.experiment_id])
    assert run.data.params["training.lr"] == "0.001"
    remote = server.get_run(run_id)
    assert remote.data.params["training.warmup_steps"] == "2000"
    assert remote.data.tags["aiconfig.digest"] == run.data.tags["aiconfig.digest"]


def reported(example: Example, box: Sandbox, report: str) -> Any:
    """Run the block as written, then ``report`` (an expression over the block's names) in the
    same interpreter; its JSON value comes back."""
    after = f"\nimport json as _json\nprint(_json.dumps({report}, default=str))\n"
    proc = run_python(example, box, after=after)
    return json.loads(proc.stdout.splitlines()[-1])


def local_store(root: Path) -> MlflowClient:
    # An absolute URI: MLflow caches stores per URI string, and every test has its own file.
    return MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")


def test_mlflow_library_example(box: Sandbox) -> None:
    """``<!-- test: mlflow-library -->``: the run holds what the block logged, and the count
    and first artifact are those its last comment shows."""
    example = dedicated(DOC, "mlflow-library")
    got = reported(example, box, '{"params": tracked.params, "first": tracked.artifacts[0]}')
    (run,) = local_store(box.root).search_runs(
        ["0"], filter_string="attributes.run_name = 'lr-1e-3'"
    )
    assert run.data.metrics["loss"] == 0.42
    assert run.data.tags["aiconfig.name"] == "lr-1e-3"
    assert len(run.data.params) == got["params"]
    comment = example.code.strip().splitlines()[-1].split("# ", 1)[1]
    assert re.sub(r"^\d+", "N", f"{got['params']} params; {got['first']}") == re.sub(
        r"^\d+", "N", comment
    )


def test_wandb_example(box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """``<!-- test: wandb-flatten -->``: the W&B run's config is ``flatten(cfg)``."""
    from aiconfig import flatten, load

    monkeypatch.setenv("AP_DATA_ROOT", box.env["AP_DATA_ROOT"])  # where the block loaded it
    got = reported(dedicated(DOC, "wandb-flatten"), box, "dict(run.config)")
    assert got == flatten(load(box.root / "experiments" / "lr-1e-3.yaml"))
    (record,) = (box.root / "wandb").glob("offline-run-*/run-*.wandb")  # ready for `wandb sync`
    assert record.stat().st_size > 0


def test_readme_tracker_example(box: Sandbox) -> None:
    """``<!-- test: readme-tracker -->``: logged into the local store, flattened for others."""
    got = reported(dedicated(README, "readme-tracker"), box, "params")
    assert got["training.lr"] == 0.001
    (run,) = local_store(box.root).search_runs(["0"])
    assert run.data.params["training.lr"] == "0.001"


def test_readme_editor_blocks() -> None:
    settings = json.loads(fenced(README, "json", '"yaml.schemas"'))
    committed = json.loads((REPO / ".vscode" / "settings.json").read_text(encoding="utf-8"))
    assert settings["yaml.schemas"] == committed["yaml.schemas"]
    modeline = fenced(README, "yaml", "yaml-language-server")
    assert modeline.strip() in fenced(DOC, "yaml", "yaml-language-server")
