"""A command that fails writes nothing: every input (keys too) is checked before the first
write, so a rerun never meets a half-done result ("refusing to overwrite")."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiconfig._trust.signing import generate_keypair
from aiconfig.cli import main
from tests.fork.conftest import Project


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("sweep", [False, True], ids=["fork", "sweep"])
def test_fork_with_a_missing_sign_key_writes_nothing(
    project: Project, capsys: pytest.CaptureFixture[str], tmp_path: Path, sweep: bool
) -> None:
    before = _files(project.exp)
    change = ["--sweep", "training.batch_size=32,64"] if sweep else ["--set", "training.lr=1e-3"]
    argv = project.cli("fork", str(project.baseline), "--name", "exp", *change)
    missing = str(tmp_path / "no-such-key")
    assert main([*argv, "--sign-key", missing]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no-such-key" in err and "cannot read key" in err
    assert _files(project.exp) == before
    # the same command with a real key then just works
    assert main([*argv, "--sign-key", str(project.lead)]) == 0
    assert "refusing" not in capsys.readouterr().err


def test_fork_with_an_agent_key_that_is_not_loaded_writes_nothing(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A ``.pub`` whose private half is in no ssh-agent: ssh-keygen fails for real."""
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    generate_keypair(tmp_path / "k")
    pub = tmp_path / "k.pub"
    (tmp_path / "k").unlink()
    before = _files(project.exp)
    argv = project.cli("fork", str(project.baseline), "--name", "exp",
                       "--sweep", "model.dropout=0.0,0.2", "--sign-key", str(pub))  # fmt: skip
    assert main(argv) == 1
    assert "ssh-keygen could not sign" in capsys.readouterr().err
    assert _files(project.exp) == before


def test_sign_for_an_unlisted_principal_leaves_the_signature_file_alone(
    project: Project, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sig = project.baseline.with_name("baseline.yaml.sig")
    before = sig.read_bytes()
    keys = str(project.root / "keys")
    # the research key is listed, but for research@test, not lead@test
    argv = ["sign", str(project.baseline), "--key", str(project.research),
            "--principal", "lead@test", "--keys", keys]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "is not listed for principal 'lead@test'; nothing was signed" in err
    assert sig.read_bytes() == before
    # a key nobody lists, on a file that has no signature yet: no .sig appears
    stranger = tmp_path / "stranger"
    generate_keypair(stranger)
    fresh = project.exp / "fresh.yaml"
    fresh.write_text("meta:\n  name: fresh\n  version: 1\n")
    assert main(["sign", str(fresh), "--key", str(stranger), "--principal", "lead@test",
                 "--keys", keys]) == 1  # fmt: skip
    assert not fresh.with_name("fresh.yaml.sig").exists()
    # the right key for the principal signs
    assert main([*argv[:3], str(project.lead), *argv[4:]]) == 0
    assert sig.read_bytes() != before
