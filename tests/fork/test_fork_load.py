"""Loading fork files through the trusted pipeline."""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path

import pytest
from pydantic import ValidationError

from aiconfig import (
    BadSignatureError,
    ConfigValidationError,
    ForkError,
    UnsignedConfigError,
    load,
)
from aiconfig._fork import fork_for_experiment, render_fork
from tests.fork.conftest import Project


def write_fork(
    p: Project, name: str, overrides: dict[str, object], base: Path | None = None
) -> Path:
    base = base or p.baseline
    data = render_fork(
        base_rel=base.name,
        base_sha256=hashlib.sha256(base.read_bytes()).hexdigest(),
        name=name,
        version=1,
        description="",
        overrides=overrides,
    )
    path = p.exp / f"{name}.yaml"
    path.write_bytes(data)
    p.sign(path)
    return path


def test_fork_loads_merged_and_lineage(project: Project) -> None:
    path = write_fork(project, "hi-lr", {"training.lr": 1e-3, "model.dropout": 0.2})
    cfg = project.load(path)
    base = project.load(project.baseline)
    assert cfg.training.lr == 1e-3
    assert cfg.model.dropout == 0.2
    assert cfg.training.batch_size == base.training.batch_size
    assert cfg.meta.name == "hi-lr"
    assert cfg.meta.locked == base.meta.locked  # locks are inherited
    lineage = cfg.provenance.lineage
    assert [s["name"] for s in lineage] == ["lol-bc-baseline", "hi-lr"]
    assert lineage[0]["sha256"] == hashlib.sha256(project.baseline.read_bytes()).hexdigest()
    assert lineage[0]["signers"] == ["lead@test", "research@test"]
    assert lineage[1]["signers"] == ["lead@test"]
    assert lineage[1]["overrides"] == {"training.lr": 1e-3, "model.dropout": 0.2}
    assert cfg.provenance.signed
    assert cfg.provenance.sources["training.lr"] == str(path)


def test_fork_of_fork(project: Project) -> None:
    first = write_fork(project, "a", {"training.lr": 1e-3})
    second = write_fork(project, "b", {"training.batch_size": 128}, base=first)
    cfg = project.load(second)
    assert (cfg.training.lr, cfg.training.batch_size) == (1e-3, 128)
    assert [s["name"] for s in cfg.provenance.lineage] == ["lol-bc-baseline", "a", "b"]


def test_stale_base_names_both_digests_and_refork_command(project: Project) -> None:
    path = write_fork(project, "x", {"training.lr": 1e-3})
    old = hashlib.sha256(project.baseline.read_bytes()).hexdigest()
    project.baseline.write_bytes(project.baseline.read_bytes() + b"# edited\n")
    new = hashlib.sha256(project.baseline.read_bytes()).hexdigest()
    with pytest.raises(ForkError) as err:
        project.load(path)
    text = str(err.value)
    assert old in text and new in text
    assert "aiconfig fork" in text and "--set training.lr=0.001" in text and "--force" in text
    assert len(text.splitlines()) == 1
    # the printed command really re-forks (after the base change is reviewed and re-signed)
    from aiconfig.cli import main

    project.sign(project.baseline, project.lead, project.research)
    command = text.split("re-fork: ", 1)[1].split(" (and re-sign", maxsplit=1)[0]
    argv = shlex.split(command)[1:]
    assert main(project.cli(*argv, "--sign-key", str(project.lead))) == 0
    cfg = project.load(path)
    assert cfg.training.lr == 1e-3 and cfg.meta.version == 2


def test_locked_path_refused_at_load(project: Project) -> None:
    path = write_fork(project, "x", {"capture.fps": 60, "training.seed": 1})
    with pytest.raises(ForkError, match="locked") as err:
        project.load(path)
    assert len(err.value.problems) == 2


def test_unknown_path_did_you_mean(project: Project) -> None:
    path = write_fork(project, "x", {"training.optimzer.lr": 1})
    with pytest.raises(ForkError, match=r"did you mean 'training\.optimizer'"):
        project.load(path)


def test_invalid_value_names_fork_line(project: Project) -> None:
    path = write_fork(project, "x", {"training.lr": -1})
    with pytest.raises(ConfigValidationError, match=r"x\.yaml:\d+: training\.lr"):
        project.load(path)


def test_fork_and_base_both_verified(project: Project) -> None:
    path = write_fork(project, "x", {"training.lr": 1e-3})
    path.with_name(path.name + ".sig").unlink()
    with pytest.raises(UnsignedConfigError):
        project.load(path)
    project.sign(path)
    (project.exp / "baseline.yaml.sig").unlink()
    with pytest.raises(UnsignedConfigError, match=r"baseline\.yaml"):
        project.load(path)


def test_tampered_fork_refused(project: Project) -> None:
    path = write_fork(project, "x", {"training.lr": 1e-3})
    path.write_bytes(path.read_bytes().replace(b"0.001", b"0.002"))
    with pytest.raises(BadSignatureError):
        project.load(path)


def test_malformed_fork_file(project: Project) -> None:
    path = project.exp / "bad.yaml"
    path.write_text("fork:\n  base: baseline.yaml\nmeta: {name: bad, version: 1}\n")
    with pytest.raises(ForkError, match="malformed fork file"):
        project.load(path, allow_unsigned=True)


def test_fork_for_experiment_is_new_immutable_object(project: Project) -> None:
    base = project.load(project.baseline)
    fork = fork_for_experiment(base, "exp1", {"training.lr": "3e-4", "training.epochs": 3})
    assert isinstance(fork.training.lr, float) and fork.training.epochs == 3
    assert base.training.epochs == 20 and fork is not base
    assert fork.provenance.lineage[-1]["overrides"]["training.epochs"] == 3
    with pytest.raises(ValidationError):
        fork.training.epochs = 5  # type: ignore[misc]
    with pytest.raises(ForkError, match="locked"):
        fork_for_experiment(base, "e", {"capture.window_title": "x"})
    with pytest.raises(ForkError, match="meta"):
        fork_for_experiment(base, "e", {"meta.version": 9})
    with pytest.raises(ForkError, match="section"):
        fork_for_experiment(base, "e", {"training.optimizer": {"name": "sgd"}})


def test_library_load_matches_cli_verify(project: Project) -> None:
    from aiconfig.cli import main

    path = write_fork(project, "x", {"training.lr": 1e-3})
    assert main(["verify", str(path), "--keys", str(project.root / "keys")]) == 0
    assert load(path, data_root=project.data_root, env={}).training.lr == 1e-3
