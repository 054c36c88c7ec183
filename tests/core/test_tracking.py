"""Experiment-tracker logging against a real MLflow store (SQLite), read back with its client."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import mlflow  # the mlflow extra: scripts/setup.sh installs it, so CI runs these tests
import pytest
from mlflow.tracking import MlflowClient

from aiconfig import TrackingError, load
from aiconfig._overrides import target_of
from aiconfig._tracking import MLFLOW_LIMITS, flatten, log_to_mlflow
from aiconfig.cli import main
from tests.conftest import REPO

logging.getLogger("mlflow").setLevel(logging.WARNING)  # the store's first-use INFO lines

KEYS = str(REPO / "keys")
BASELINE = REPO / "experiments" / "baseline.yaml"
FORK = REPO / "experiments" / "lr-1e-3.yaml"
SWEEP = REPO / "experiments" / "lr-1e-3-sweep-batch_size32-dropout0.0.yaml"
MLFLOW_KEY = re.compile(r"^[/\w.\- :]*$")  # mlflow.utils.validation, non-Windows


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One SQLite store for the module (creating one runs MLflow's migrations: seconds)."""
    yield f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def _track(*argv: str, data_root: Path) -> int:
    return main(["track", *argv, "--keys", KEYS, "--data-root", str(data_root)])


def test_track_a_fork_and_read_it_back(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _track(str(SWEEP), "--mlflow", store, "--json", data_root=tmp_path / "state") == 0
    report = json.loads(capsys.readouterr().out)
    client = MlflowClient(tracking_uri=store)
    run = client.get_run(report["run_id"])
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "lol-bc-baseline"
    # The artifacts of a new experiment sit beside the database, not in the working directory.
    db_dir = Path(store.removeprefix("sqlite:///")).parent
    assert run.info.artifact_uri.startswith((db_dir / "mlartifacts").as_uri())

    cfg = load(SWEEP, keys=KEYS, data_root=tmp_path / "state2")  # the environment the CLI saw
    flat = flatten(cfg)
    params = run.data.params
    rewritten = report["rewritten_keys"]
    assert len(params) == len(flat) == report["params"]
    for key, value in flat.items():
        logged = params[rewritten.get(key, key)]
        assert logged == (value if isinstance(value, str) else json.dumps(value))
    assert params["training.lr"] == "0.001" and params["training.batch_size"] == "32"
    assert params["model.action_space"] == json.dumps(list(cfg.model.action_space))
    assert rewritten == {
        'monitoring.latency_thresholds_ms."Qwen/Qwen2.5-0.5B-Instruct"': (
            "monitoring.latency_thresholds_ms.Qwen/Qwen2.5-0.5B-Instruct"
        )
    }

    tags = run.data.tags
    assert tags["aiconfig.digest"] == hashlib.sha256(SWEEP.read_bytes()).hexdigest()
    assert tags["aiconfig.signed"] == "true"
    assert cfg.provenance.signers[0].principal in tags["aiconfig.signers"]
    assert cfg.provenance.signers[0].fingerprint in tags["aiconfig.signers"]
    lineage = json.loads(tags["aiconfig.lineage"])
    assert [s["name"] for s in lineage] == [
        "lol-bc-baseline",
        "lr-1e-3",
        "lr-1e-3-sweep-batch_size32-dropout0.0",
    ]
    assert json.loads(tags["aiconfig.fork_overrides"]) == {
        "training.lr": 0.001,
        "training.warmup_steps": 2000,
        "training.batch_size": 32,
        "model.dropout": 0.0,
    }
    assert tags["aiconfig.version"] == __import__("aiconfig").__version__
    assert json.loads(tags["aiconfig.emergency"]) == []

    names = {a.path for a in client.list_artifacts(run.info.run_id, "aiconfig")}
    assert {
        f"aiconfig/{SWEEP.name}",
        f"aiconfig/{SWEEP.name}.sig",
        "aiconfig/resolved.json",
        "aiconfig/params.json",
        "aiconfig/provenance.json",
        "aiconfig/bases",
    } <= names
    got = Path(client.download_artifacts(run.info.run_id, "aiconfig", str(tmp_path / "dl")))
    assert (got / SWEEP.name).read_bytes() == SWEEP.read_bytes()
    sig = REPO / "experiments" / f"{SWEEP.name}.sig"
    assert (got / sig.name).read_bytes() == sig.read_bytes()
    assert (got / "bases" / "0" / "baseline.yaml").read_bytes() == BASELINE.read_bytes()
    assert (got / "bases" / "1" / "lr-1e-3.yaml").read_bytes() == FORK.read_bytes()
    assert json.loads((got / "params.json").read_text(encoding="utf-8")) == flat
    assert (
        json.loads((got / "provenance.json").read_text(encoding="utf-8"))["sha256"]
        == (tags["aiconfig.digest"])
    )


def test_track_into_an_existing_run(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = MlflowClient(tracking_uri=store)
    exp = client.create_experiment("existing", artifact_location=(tmp_path / "art").as_uri())
    run_id = client.create_run(exp).info.run_id
    state = tmp_path / "state"
    assert _track(str(FORK), "--mlflow", store, "--run-id", run_id, data_root=state) == 0
    assert f"logged {FORK} to MLflow run {run_id}" in capsys.readouterr().out
    run = client.get_run(run_id)
    assert run.info.status == "RUNNING"  # a run we did not start is left to its owner
    assert run.data.params["training.warmup_steps"] == "2000"
    # The same config again is fine; another config into the same run is refused clearly.
    assert _track(str(FORK), "--mlflow", store, "--run-id", run_id, data_root=state) == 0
    capsys.readouterr()
    assert _track(str(BASELINE), "--mlflow", store, "--run-id", run_id, data_root=state) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "MLflow refused: Changing param values is not allowed" in err
    assert "already holds another config" in err


def test_unknown_run_is_one_clear_line(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = _track(str(FORK), "--mlflow", store, "--run-id", "0" * 32, data_root=tmp_path / "s")
    assert rc == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"no run {'0' * 32}" in err and "--run-id" in err


def test_missing_mlflow_flag_is_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["track", str(FORK)])
    assert exc.value.code == 2
    assert "--mlflow" in capsys.readouterr().err


def test_mlflow_limits_on_keys_and_values(store: str, tmp_path: Path) -> None:
    long_key = "k" * 300
    config = tmp_path / "limits.yaml"
    config.write_text(
        "meta:\n  name: limits\n  version: 1\n"
        f"  description: {'d' * 10_000}\n"
        "model:\n"
        f"  action_space: [{', '.join(f'action{i}' for i in range(1500))}]\n"
        "monitoring:\n  resource_attributes:\n"
        f"    {long_key}: long\n"
        f"    {long_key[:-1]}x: other\n"
        '    "a [weird] key, with \\"quotes\\"": w\n'
        "    a//b/./c/: slashes\n",
        encoding="utf-8",
    )
    cfg = load(config, allow_unsigned=True, env={})
    tracked = log_to_mlflow(cfg, tracking_uri=store, experiment="limits")
    params = MlflowClient(tracking_uri=store).get_run(tracked.run_id).data.params
    assert len(params) == len(flatten(cfg))
    for key, value in params.items():
        assert MLFLOW_KEY.match(key) and len(key) <= MLFLOW_LIMITS["key"], key
        assert len(value) <= MLFLOW_LIMITS["param_value"], key
    assert set(tracked.truncated) == {"meta.description", "model.action_space"}
    assert params["meta.description"].startswith("d" * 5000)
    assert params["meta.description"].endswith("full value in aiconfig/params.json]")
    # Two long keys that share their first 250 characters stay two params.
    long_keys = [k for k in params if k.startswith("monitoring.resource_attributes.kkk")]
    assert len(long_keys) == 2 and {params[k] for k in long_keys} == {"long", "other"}
    assert params["monitoring.resource_attributes.a _weird_ key_ with _quotes_"] == "w"
    assert params["monitoring.resource_attributes.a/b/_/c"] == "slashes"  # a normalized path


def test_library_call_logs_into_the_active_run(store: str, tmp_path: Path) -> None:
    cfg = load(FORK, keys=KEYS, data_root=tmp_path / "state", env={})
    mlflow.set_tracking_uri(store)
    try:
        exp = mlflow.create_experiment("train", artifact_location=(tmp_path / "a").as_uri())
        with mlflow.start_run(experiment_id=exp) as run:
            tracked = log_to_mlflow(cfg)
            mlflow.log_metric("loss", 0.5)
    finally:
        mlflow.set_tracking_uri("")
    assert tracked.run_id == run.info.run_id
    data = MlflowClient(tracking_uri=store).get_run(run.info.run_id).data
    assert data.params["training.lr"] == "0.001" and data.metrics["loss"] == 0.5


def test_unreachable_server_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load(FORK, keys=KEYS, data_root=tmp_path / "state", env={})
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TrackingError) as exc:
        log_to_mlflow(cfg, tracking_uri=f"http://127.0.0.1:{port}")
    assert len(exc.value.problems) == 1
    assert f"cannot reach the MLflow tracking server at http://127.0.0.1:{port}" in str(exc.value)


def test_flatten_keys_are_set_paths_and_secrets_are_redacted(tmp_path: Path) -> None:
    cfg = load(BASELINE, keys=KEYS, data_root=tmp_path, env={"VLLM_API_KEY": "sk-secret"})
    flat = flatten(cfg)
    assert flat["inference.vllm.api_key"] == "**********"
    assert "sk-secret" not in json.dumps(flat)
    assert flat["training.optimizer.betas"] == [0.9, 0.999]
    assert flat["monitoring.resource_attributes.team"] == "agents"
    for key in flat:
        if not key.startswith("meta."):
            target_of(key)  # every key is a path `aiconfig fork --set` accepts
    assert flatten({"a": {"b": 1, "c": {}}}) == {"a.b": 1, "a.c": {}}
