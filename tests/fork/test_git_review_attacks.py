"""``aiconfig diff --git`` under attack: a hostile pull request in a real git repository."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from aiconfig._trust.signing import allowed_signers_line, generate_keypair
from aiconfig.cli import main
from tests.fork.conftest import Project
from tests.fork.test_fork_git import commit, files, fork, git, gitdiff, repo  # noqa: F401

SECRET = "hunter2-ci-secret-value"  # noqa: S105 - a planted value the test must never see


def _attacker_key(tmp_path: Path) -> tuple[Path, str]:
    key = tmp_path / "attacker"
    return key, generate_keypair(key, comment="mallory")


def test_pr_that_trusts_its_own_key_is_not_trusted(
    repo: Project,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "pr")
    key, pub = _attacker_key(tmp_path)
    # the PR gives the reviewers' names to a key the attacker holds...
    (repo.root / "keys" / "allowed_signers").write_text(
        allowed_signers_line("lead@test,research@test", pub) + "\n"
    )
    # ...changes the baseline and signs it with that key only
    text = repo.baseline.read_text().replace("version: 1 ", "version: 2 ")
    repo.baseline.write_text(text.replace("epochs: 20", "epochs: 999"))
    repo.baseline.with_name("baseline.yaml.sig").unlink()
    repo.sign(repo.baseline, key)
    head = commit(repo, "innocent tweak")
    capsys.readouterr()
    code, out = gitdiff(repo, capsys, base, head)
    assert code == 1
    listed = json.loads(out)["files"]
    assert listed[0]["label"] == "keys/allowed_signers"  # first, prominently
    assert listed[0]["status"] == "trust-store-changed"
    entry = files(out)["experiments/baseline.yaml"]
    assert entry["new"]["signers"] == []  # the attacker's key is not a reviewer
    assert "not in allowed_signers" in entry["new"]["trust_problem"]
    assert entry["old"]["signers"] == ["lead@test", "research@test"]
    code, md = gitdiff(repo, capsys, base, head, fmt="markdown")
    assert "TRUST STORE CHANGED: `keys/allowed_signers`" in md
    assert md.index("TRUST STORE CHANGED") < md.index("experiments/baseline.yaml")
    assert "`UNSIGNED`" in md
    code, text_out = gitdiff(repo, capsys, base, head, fmt="text")
    assert text_out.startswith("WARNING: trust store file keys/allowed_signers changed")
    # the working tree (no REV2) is judged the same way
    code, out = gitdiff(repo, capsys, base)
    assert files(out)["experiments/baseline.yaml"]["new"]["signers"] == []


def test_keys_option_is_honoured_with_git(
    repo: Project,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = git(repo, "rev-parse", "HEAD")
    fork(repo, "a", "training.epochs=2")
    head = commit(repo, "fork")
    other = tmp_path / "other-keys"
    other.mkdir()
    _, pub = _attacker_key(tmp_path)
    (other / "allowed_signers").write_text(allowed_signers_line("nobody@x", pub) + "\n")
    capsys.readouterr()
    code = main(["diff", "--git", base, head, "--repo", str(repo.root), "--format", "json",
                 "--keys", str(other)])  # fmt: skip
    out = capsys.readouterr().out
    entry = files(out)["experiments/a.yaml"]
    assert (
        entry["new"]["signers"] == [] and "not in allowed_signers" in entry["new"]["trust_problem"]
    )
    assert code == 1


@pytest.mark.parametrize("default", [",x", ""])
def test_review_never_prints_the_environment(
    repo: Project,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    default: str,
) -> None:
    base = git(repo, "rev-parse", "HEAD")
    monkeypatch.setenv("SUPER_SECRET_VALUE", SECRET)
    monkeypatch.setenv("GITHUB_TOKEN", SECRET)
    fork(repo, "leak", f"model.name=${{oc.env:SUPER_SECRET_VALUE{default}}}")
    head = commit(repo, "fork")
    capsys.readouterr()
    for fmt in ("markdown", "json", "text"):
        code = main(["diff", "--git", base, head, "--repo", str(repo.root), "--format", fmt])
        out, err = capsys.readouterr()
        assert SECRET not in out + err
        assert code == 1
    entry = files(gitdiff(repo, capsys, base, head)[1])["experiments/leak.yaml"]
    [change] = entry["changes"]
    shown = "x" if default else "<from env:SUPER_SECRET_VALUE>"
    assert change["path"] == "model.name" and change["new"] == shown


def _plant_hooks(repo_root: Path, tmp_path: Path) -> Path:
    """A repository config that runs commands: fsmonitor, hooks, clean/smudge filters."""
    marker = tmp_path / "PWNED"
    script = tmp_path / "evil.sh"
    script.write_text(f'#!/bin/sh\necho "$0 $*" >> {marker}\ncat\n')
    script.chmod(0o755)
    cfg = ["-C", str(repo_root), "config"]
    subprocess.run(["git", *cfg, "core.fsmonitor", str(script)], check=True)
    subprocess.run(["git", *cfg, "filter.evil.smudge", str(script)], check=True)
    subprocess.run(["git", *cfg, "filter.evil.clean", str(script)], check=True)
    subprocess.run(["git", *cfg, "filter.evil.process", str(script)], check=True)
    hooks = repo_root / ".git" / "hooks"
    for hook in ("post-checkout", "pre-commit", "reference-transaction"):
        (hooks / hook).write_text(f"#!/bin/sh\necho hook >> {marker}\n")
        (hooks / hook).chmod(0o755)
    return marker


def test_repository_commands_never_run(
    repo: Project,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (repo.root / ".gitattributes").write_text("*.yaml filter=evil\n*.sig filter=evil\n")
    base = commit(repo, "attributes")
    fork(repo, "a", "training.epochs=2")
    head = commit(repo, "fork")
    (repo.exp / "a.yaml").touch()  # stat-dirty: git diff would run the clean filter
    marker = _plant_hooks(repo.root, tmp_path)
    # the attack is real: plain git runs the repository's commands
    subprocess.run(["git", "-C", str(repo.root), "status"], capture_output=True, check=True)
    subprocess.run(["git", "-C", str(repo.root), "archive", head], capture_output=True, check=True)
    assert marker.exists()
    marker.unlink()
    capsys.readouterr()
    for revs in ((base, head), (base,), (head,)):
        gitdiff(repo, capsys, *revs)
    assert not marker.exists()


@pytest.mark.parametrize("target", ["/etc/passwd", "../../../../../../etc/passwd", "/dev/zero"])
def test_committed_symlink_leaving_the_tree(
    repo: Project,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    target: str,
) -> None:
    base = git(repo, "rev-parse", "HEAD")
    os.symlink(target, repo.exp / "evil.yaml")
    os.symlink(target, repo.exp / "baseline.yaml.sig.extra.sig")
    head = commit(repo, "links")
    capsys.readouterr()
    for revs in ((base, head), (head, base), (base,)):
        code, out = gitdiff(repo, capsys, *revs)
        assert code in (0, 1)
    code, out = gitdiff(repo, capsys, base, head)
    skipped = files(out)["experiments/evil.yaml"]
    assert skipped["status"] == "skipped" and "leaves the repository" in skipped["note"]


def test_symlink_inside_the_tree_is_followed(
    repo: Project,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = git(repo, "rev-parse", "HEAD")
    fork(repo, "a", "training.epochs=2")
    os.symlink("a.yaml", repo.exp / "alias.yaml")
    head = commit(repo, "alias")
    capsys.readouterr()
    code, out = gitdiff(repo, capsys, base, head)
    assert code == 1 and "experiments/a.yaml" in files(out)


def test_a_committed_huge_config_is_skipped_unread(
    repo: Project,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 5 MiB "config" in the PR is listed as skipped, and git is never asked for its bytes."""
    from aiconfig import _gitdiff

    base = git(repo, "rev-parse", "HEAD")
    (repo.exp / "huge.yaml").write_text("a: " + "x" * (5 << 20) + "\n")
    head = commit(repo, "huge")
    read: list[int] = []  # bytes git handed over for each cat-file
    real = _gitdiff._git

    def git_call(top: Path, *args: str, stdin: bytes | None = None) -> bytes:
        got = real(top, *args, stdin=stdin)
        if args[0] == "cat-file":
            read.append(len(got))
        return got

    monkeypatch.setattr(_gitdiff, "_git", git_call)
    capsys.readouterr()
    code, out = gitdiff(repo, capsys, base, head)
    assert code in (0, 1)
    skipped = files(out)["experiments/huge.yaml"]
    assert skipped["status"] == "skipped" and "larger than 4 MiB" in skipped["note"]
    assert read and max(read) < 1 << 20  # only the real configs were read
