"""The review threshold belongs to the config, not to its file's path; one trust store per chain.

Every attack runs on a copy of the project (the real baseline and policy, fresh reviewer keys)
and signs with ``ssh-keygen -Y sign`` as a reviewer would.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from aiconfig import ForkError, RollbackError, ThresholdError, UntrustedKeyError, load
from aiconfig._fork import render_fork
from aiconfig._trust import sig_path
from aiconfig._trust.signing import allowed_signers_line, generate_keypair
from aiconfig.cli import main
from tests.fork.conftest import Project
from tests.trust.test_attacks import _sign, _ssh_keygen

STATE = Path("aiconfig-trust") / "versions.json"


def _state(p: Project) -> dict[str, object]:
    path = p.data_root / STATE
    return json.loads(path.read_text()) if path.exists() else {}


def _hotfix(p: Project, name: str = "hotfix.yaml") -> Path:
    """A copy of the baseline claiming version 99, signed by ONE reviewer."""
    text = p.baseline.read_text().replace("version: 1 ", "version: 99 ", 1)
    assert "version: 99" in text
    path = p.exp / name
    path.write_text(text)
    _sign(p.lead, path)
    return path


def _policy_without_names(p: Project) -> None:
    policy = p.root / "keys" / "policy.yaml"
    text = policy.read_text()
    policy.write_text(text.split("names:")[0] + "unmatched: refuse\nrevoked: []\n")


def test_one_reviewer_copy_of_the_baseline_is_refused(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    hotfix = _hotfix(project)
    with pytest.raises(ThresholdError, match=r"1 of 2 .*policy rule 'name: lol-bc-baseline'"):
        project.load(hotfix)
    assert _state(project) == {}  # nothing recorded: the baseline is not locked out
    assert project.load(project.baseline).meta.version == 1
    code = main(project.cli("validate", str(hotfix)))
    err = capsys.readouterr().err
    assert code == 1 and "name: lol-bc-baseline" in err and len(err.splitlines()) == 1


def test_strictest_threshold_ever_required_holds_for_the_name(project: Project) -> None:
    _policy_without_names(project)  # a policy written before name rules existed
    assert project.load(project.baseline).meta.version == 1  # needs 2, recorded
    assert _state(project)["lol-bc-baseline"] == {
        "version": 1,
        "sha256": hashlib.sha256(project.baseline.read_bytes()).hexdigest(),
        "threshold": 2,
    }
    hotfix = _hotfix(project)
    with pytest.raises(ThresholdError, match="accepted before with 2 reviewers required"):
        project.load(hotfix)
    assert _state(project)["lol-bc-baseline"]["version"] == 1  # type: ignore[index]
    assert project.load(project.baseline).meta.version == 1


def test_version_checks_run_before_anything_is_recorded(project: Project) -> None:
    project.load(project.baseline)
    older = project.exp / "baseline-old.yaml"
    older.write_text(project.baseline.read_text().replace("version: 1 ", "version: 0 ", 1))
    with pytest.raises(Exception, match="version"):
        project.load(older)
    assert _state(project)["lol-bc-baseline"]["version"] == 1  # type: ignore[index]


@pytest.mark.parametrize("how", ["--keys", "AICONFIG_KEYS"])
def test_trust_store_outside_the_tree_is_refused(
    project: Project,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    how: str,
) -> None:
    elsewhere = tmp_path / "elsewhere" / "keys"
    shutil.copytree(project.root / "keys", elsewhere)
    hotfix = _hotfix(project)
    argv = ["validate", str(hotfix), str(project.baseline), "--data-root", str(project.data_root)]
    if how == "--keys":
        argv += ["--keys", str(elsewhere)]
    else:
        monkeypatch.setenv("AICONFIG_KEYS", str(elsewhere))
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("lies outside the trust store's tree") == 2
    assert "policy rule 'unmatched: refuse'" in err
    assert _state(project) == {}


def test_unmatched_default_is_an_explicit_choice(project: Project, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "keys"
    shutil.copytree(project.root / "keys", elsewhere)
    policy = elsewhere / "policy.yaml"
    policy.write_text(policy.read_text().replace("unmatched: refuse", "unmatched: default"))
    # the name rule still holds outside the tree: one reviewer is not enough for the baseline
    with pytest.raises(ThresholdError, match="name: lol-bc-baseline"):
        project.load(_hotfix(project), keys=elsewhere)
    assert project.load(project.baseline, keys=elsewhere).meta.version == 1


def test_symlinked_configs_are_judged_by_their_real_path(project: Project, tmp_path: Path) -> None:
    # a link inside the tree: the baseline rule of the real file applies
    link = project.exp / "current.yaml"
    link.symlink_to("baseline.yaml")
    sig_path(link).symlink_to("baseline.yaml.sig")
    assert project.load(link).meta.name == "lol-bc-baseline"
    # a link to a file outside the tree is refused, whatever its name says
    outside = tmp_path / "outside.yaml"
    shutil.copy(project.baseline, outside)
    shutil.copy(sig_path(project.baseline), sig_path(outside))
    away = project.exp / "baseline2.yaml"
    away.symlink_to(outside)
    sig_path(away).symlink_to(sig_path(outside))
    with pytest.raises(ThresholdError, match=r"real path .*outside\.yaml lies outside"):
        project.load(away)


def test_config_matching_no_rule_is_refused(project: Project) -> None:
    stray = project.root / "configs" / "x.yaml"
    stray.parent.mkdir()
    stray.write_text("meta:\n  name: stray\n  version: 1\n")
    _sign(project.lead, stray)
    _sign(project.research, stray)
    with pytest.raises(ThresholdError, match=r"configs/x\.yaml matches no rule"):
        project.load(stray)


@pytest.mark.parametrize("command", ["show", "lineage", "verify", "check-sidecar"])
def test_read_only_commands_never_record(
    project: Project, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    argv = [command, str(project.baseline)]
    if command == "check-sidecar":
        argv.insert(1, "--config")
    if command == "check-sidecar":
        argv += ["--base-url", "http://127.0.0.1:9"]  # nothing listens: fails, still read-only
    main(project.cli(*argv))
    capsys.readouterr()
    assert not (project.data_root / STATE).exists()
    main(project.cli("validate", str(project.baseline)))  # validate records
    assert (project.data_root / STATE).exists()


def test_read_only_commands_still_refuse_a_rollback(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    newer = project.exp / "baseline-v2.yaml"
    newer.write_text(project.baseline.read_text().replace("version: 1 ", "version: 2 ", 1))
    project.sign(newer, project.lead, project.research)
    project.load(newer)
    for command in ("show", "lineage"):
        assert main(project.cli(command, str(project.baseline))) == 1
        assert "older than version 2" in capsys.readouterr().err
    with pytest.raises(RollbackError):
        project.load(project.baseline, record=False)


# ---------------------------------------------------------------- 9: one trust store per chain


def _evil_repo(base: Path) -> tuple[Path, Path]:
    """Another tree whose keys/ trusts the attacker's key under the lead's name."""
    evil = base / "evil"
    (evil / "keys").mkdir(parents=True)
    (evil / "experiments").mkdir()
    key = base / "attacker"
    pub = _ssh_keygen(key, "mallory")
    (evil / "keys" / "allowed_signers").write_text(allowed_signers_line("lead@test", pub) + "\n")
    target = evil / "experiments" / "base.yaml"
    target.write_text("meta:\n  name: evil-base\n  version: 1\ntraining:\n  lr: 0.5\n")
    _sign(key, target)
    return target, key


def _fork_of(p: Project, base_rel: str, base_file: Path, name: str = "f") -> Path:
    fork = p.exp / f"{name}.yaml"
    fork.write_bytes(
        render_fork(
            base_rel=base_rel,
            base_sha256=hashlib.sha256(base_file.read_bytes()).hexdigest(),
            name=name,
            version=1,
            description="",
            overrides={"training.epochs": 3},
        )
    )
    p.sign(fork, p.lead)
    return fork


def test_base_outside_the_tree_is_refused(
    project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evil_base, _ = _evil_repo(tmp_path)
    rel = os.path.relpath(evil_base, project.exp)
    assert rel.startswith("..")
    fork = _fork_of(project, rel, evil_base)
    with pytest.raises(ForkError, match="leaves the tree"):
        project.load(fork)
    assert main(project.cli("lineage", str(fork))) == 1
    err = capsys.readouterr().err
    assert "leaves the tree" in err and "lead@test" not in err and len(err.splitlines()) == 1


def test_base_linked_out_of_the_tree_is_refused(project: Project, tmp_path: Path) -> None:
    evil_base, _ = _evil_repo(tmp_path)
    link = project.exp / "vendored.yaml"
    link.symlink_to(evil_base)
    fork = _fork_of(project, "vendored.yaml", evil_base)
    with pytest.raises(ForkError, match="leaves the tree"):
        project.load(fork)


def test_base_with_its_own_keys_is_verified_with_the_forks(
    project: Project, tmp_path: Path
) -> None:
    # inside the tree, but beside a keys/ of its own that trusts the attacker
    evil_base, _ = _evil_repo(tmp_path)
    vendor = project.exp / "vendor"
    shutil.copytree(evil_base.parent.parent, vendor)
    base = vendor / "experiments" / "base.yaml"
    fork = _fork_of(project, "vendor/experiments/base.yaml", base)
    assert load(base, data_root=project.data_root).meta.name == "evil-base"  # its own keys/
    with pytest.raises(UntrustedKeyError, match="not in allowed_signers"):
        project.load(fork)


def test_deep_fork_chain_is_one_line(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    parent, parent_rel = project.baseline, "baseline.yaml"
    for i in range(400):  # the reported attack: 400 deep
        fork = _fork_of(project, parent_rel, parent, name=f"chain{i}")
        parent, parent_rel = fork, fork.name
    keys = ["--keys", str(project.root / "keys")]
    for argv in (
        project.cli("validate", str(parent)),
        project.cli("lineage", str(parent)),
        ["diff", str(project.baseline), str(parent), *keys],
    ):
        code = main(argv)
        err = capsys.readouterr().err
        assert code in (1, 2) and "Traceback" not in err
        assert "fork chain deeper than 16 steps" in err


def test_generate_keypair_keys_sign_like_ssh_keygen(project: Project, tmp_path: Path) -> None:
    # the reviewers' keys in these tests are ordinary OpenSSH keys: ssh-keygen signs with them
    pub = generate_keypair(tmp_path / "k", comment="k")
    cfg = project.exp / "lr.yaml"
    cfg.write_text("meta:\n  name: lr\n  version: 1\n")
    _sign(tmp_path / "k", cfg)
    with (project.root / "keys" / "allowed_signers").open("a") as out:
        out.write(allowed_signers_line("k@test", pub) + "\n")
    assert project.load(cfg).provenance.signers[0].principal == "k@test"
