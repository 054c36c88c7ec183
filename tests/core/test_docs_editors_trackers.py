"""Every example in docs/editors-and-trackers.md runs as written, in a copy of this repository.

Shell blocks run in bash with ``aiconfig`` on PATH; Python blocks run with ``exec``; the MLflow
server example talks to a real ``mlflow server`` on loopback; W&B runs offline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
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
from tests.conftest import REPO

DOC = REPO / "docs" / "editors-and-trackers.md"
README = REPO / "README.md"


def block_with(lang: str, needle: str, doc: Path = DOC) -> str:
    blocks = re.findall(rf"```{lang}\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
    found = [b for b in blocks if needle in b]
    assert len(found) == 1, f"{len(found)} {lang} blocks hold {needle!r} in {doc.name}"
    return str(found[0])


@pytest.fixture
def repo_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """experiments/, keys/, the schemas and .vscode/ in a temp dir; ``aiconfig`` on PATH."""
    root = tmp_path / "repo"
    for rel in ("experiments", "keys", "aiconfig/schemas", ".vscode"):
        shutil.copytree(REPO / rel, root / rel)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "aiconfig"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m aiconfig "$@"\n', encoding="utf-8")
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{Path(sys.executable).parent}:{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("AP_DATA_ROOT", str(tmp_path / "state"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("AICONFIG_KEYS", raising=False)
    monkeypatch.chdir(root)
    return root


def bash(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_vscode_settings_block_is_the_committed_file() -> None:
    block = json.loads(block_with("json", '"yaml.schemas"'))
    committed = json.loads((REPO / ".vscode" / "settings.json").read_text(encoding="utf-8"))
    assert block == committed
    for schema in committed["yaml.schemas"]:
        assert (REPO / schema).is_file()


def test_modeline_example_points_at_the_schema(repo_copy: Path) -> None:
    example = block_with("yaml", "yaml-language-server: $schema=")
    target = re.search(r"\$schema=(\S+)", example)
    assert target is not None
    new = repo_copy / "experiments" / "my-experiment.yaml"
    new.write_text(example, encoding="utf-8")
    assert (new.parent / target.group(1)).resolve().is_file()
    proc = bash(f"check-jsonschema --schemafile {target.group(1)} my-experiment.yaml", new.parent)
    assert proc.returncode == 0, proc.stdout


def test_schema_commands(repo_copy: Path) -> None:
    proc = bash(block_with("bash", "aiconfig schema --any -o"), repo_copy)
    assert proc.returncode == 0, proc.stderr
    written = repo_copy / ".aiconfig" / "aiconfig.schema.json"
    assert written.read_text(encoding="utf-8") == shipped_schema_text("any")
    fork = repo_copy / ".aiconfig" / "fork.schema.json"
    assert fork.read_text(encoding="utf-8") == shipped_schema_text("fork")


def test_check_jsonschema_ok_and_broken(repo_copy: Path) -> None:
    ok = block_with("bash", "check-jsonschema --schemafile")
    proc = bash(ok, repo_copy)
    assert proc.returncode == 0 and "ok -- validation done" in proc.stdout, proc.stdout
    (repo_copy / "broken.yaml").write_text(block_with("yaml", "trainig:"), encoding="utf-8")
    console = block_with("console", "broken.yaml::").splitlines()
    proc = bash(console[0].removeprefix("$ "), repo_copy)
    assert console[-1] == "[exit 1]" and proc.returncode == 1
    assert proc.stdout.splitlines() == console[1:-1]


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


def test_track_commands(
    repo_copy: Path, mlflow_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = MlflowClient(tracking_uri=mlflow_server)
    run_id = server.create_run(server.create_experiment("training")).info.run_id
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    block = block_with("bash", "aiconfig track experiments/lr-1e-3.yaml --mlflow sqlite")
    proc = bash(block, repo_copy)
    assert proc.returncode == 0, proc.stderr
    server_line = bash(block_with("bash", '--run-id "$MLFLOW_RUN_ID"'), repo_copy)
    assert server_line.returncode == 0, server_line.stderr
    documented = [line.removeprefix("# ") for line in block.splitlines() if line.startswith("# ")]
    first_run = proc.stdout.splitlines()[:2]
    # The run id differs, and the param count grows with the schema (a new field is a param).
    pattern = re.escape(documented[0]).replace(re.escape("6f1c..."), r"[0-9a-f]{32}")
    pattern = re.sub(r"\d+\\ params", r"\\d+\\ params", pattern)
    assert re.fullmatch(pattern, first_run[0]), (first_run[0], documented[0])
    assert first_run[1] == documented[1]
    local = local_store(repo_copy)
    (exp,) = [e for e in local.search_experiments() if e.name == "lol-bc-baseline"]
    (run,) = local.search_runs([exp.experiment_id])
    assert run.data.params["training.lr"] == "0.001"
    remote = server.get_run(run_id)
    assert remote.data.params["training.warmup_steps"] == "2000"
    assert remote.data.tags["aiconfig.digest"] == run.data.tags["aiconfig.digest"]


def run_python(example: str, report: str, cwd: Path) -> dict[str, Any]:
    """Run ``example`` as a script in a fresh interpreter (as a user would), then ``report``:
    an expression over the example's names whose JSON value comes back."""
    script = f"{example}\nimport json as _json\nprint(_json.dumps({report}, default=str))\n"
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return result


def local_store(root: Path) -> MlflowClient:
    # An absolute URI: MLflow caches stores per URI string, and every test has its own file.
    return MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")


def test_mlflow_library_example(repo_copy: Path) -> None:
    example = block_with("python", "log_to_mlflow")
    got = run_python(
        example, '{"params": tracked.params, "first": tracked.artifacts[0]}', repo_copy
    )
    (run,) = local_store(repo_copy).search_runs(
        ["0"], filter_string="attributes.run_name = 'lr-1e-3'"
    )
    assert run.data.metrics["loss"] == 0.42
    assert run.data.tags["aiconfig.name"] == "lr-1e-3"
    assert len(run.data.params) == got["params"]
    comment = example.strip().splitlines()[-1].split("# ", 1)[1]
    assert re.sub(r"^\d+", "N", f"{got['params']} params; {got['first']}") == re.sub(
        r"^\d+", "N", comment
    )


def test_wandb_example(repo_copy: Path) -> None:
    from aiconfig import flatten, load

    example = block_with("python", "wandb.init")
    got = run_python(example, "dict(run.config)", repo_copy)
    assert got == flatten(load("experiments/lr-1e-3.yaml"))
    (record,) = (repo_copy / "wandb").glob("offline-run-*/run-*.wandb")  # ready for `wandb sync`
    assert record.stat().st_size > 0


def test_readme_tracker_example(repo_copy: Path) -> None:
    example = block_with("python", "log_to_mlflow", README)
    got = run_python(example, "params", repo_copy)
    assert got["training.lr"] == 0.001
    (run,) = local_store(repo_copy).search_runs(["0"])
    assert run.data.params["training.lr"] == "0.001"


def test_readme_editor_blocks() -> None:
    settings = json.loads(block_with("json", '"yaml.schemas"', README))
    committed = json.loads((REPO / ".vscode" / "settings.json").read_text(encoding="utf-8"))
    assert settings["yaml.schemas"] == committed["yaml.schemas"]
    modeline = block_with("yaml", "yaml-language-server", README)
    assert modeline.strip() in block_with("yaml", "yaml-language-server")
