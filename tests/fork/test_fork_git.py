"""``aiconfig diff --git``: real git repositories in temporary directories."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from aiconfig.cli import main
from tests.fork.conftest import Project


@pytest.fixture
def repo(project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{var}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{var}_EMAIL", "test@example.invalid")
    git(project, "init", "-q", "-b", "main")
    commit(project, "baseline")
    return project


def git(p: Project, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(p.root), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def commit(p: Project, message: str) -> str:
    git(p, "add", "-A")
    git(p, "commit", "-q", "-m", message)
    return git(p, "rev-parse", "HEAD")


def gitdiff(
    p: Project, capsys: pytest.CaptureFixture[str], *revs: str, fmt: str = "json"
) -> tuple[int, str]:
    code = main(["diff", "--git", *revs, "--repo", str(p.root), "--format", fmt])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out


def files(out: str) -> dict[str, dict[str, Any]]:
    return {f["label"]: f for f in json.loads(out)["files"]}


def fork(p: Project, name: str, *sets: str) -> None:
    argv = ["fork", str(p.baseline), "--name", name, "--sign-key", str(p.lead)]
    for s in sets:
        argv += ["--set", s]
    assert main(p.cli(*argv)) == 0


def test_added_fork_is_compared_with_its_base(
    repo: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    first = git(repo, "rev-parse", "HEAD")
    fork(repo, "hi-lr", "training.lr=1e-3")
    second = commit(repo, "fork")
    capsys.readouterr()
    code, out = gitdiff(repo, capsys, first, second)
    assert code == 1
    entry = files(out)["experiments/hi-lr.yaml"]
    assert entry["status"] == "added"
    assert [c["path"] for c in entry["changes"]] == ["training.lr"]
    code, out = gitdiff(repo, capsys, second, second)
    assert code == 0 and files(out) == {}


def test_changed_baseline_flags_its_forks_as_stale(
    repo: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    fork(repo, "hi-lr", "training.lr=1e-3")
    commit(repo, "fork")
    text = repo.baseline.read_text()
    text = text.replace("version: 1 ", "version: 2 ").replace("epochs: 20", "epochs: 30")
    repo.baseline.write_text(text)
    repo.sign(repo.baseline, repo.lead, repo.research)
    (repo.exp / "new.yaml").write_text("not: a config\n")  # untracked, not a config: ignored
    capsys.readouterr()
    code, out = gitdiff(repo, capsys, "HEAD")
    assert code == 1
    report = files(out)
    assert set(report) == {"experiments/baseline.yaml", "experiments/hi-lr.yaml"}
    base = report["experiments/baseline.yaml"]
    assert base["status"] == "modified"
    assert [c["path"] for c in base["changes"]] == ["training.epochs"]
    assert {"path": "meta.version", "kind": "changed", "old": 1, "new": 2} in base["meta_changes"]
    stale = report["experiments/hi-lr.yaml"]
    assert stale["status"] == "base-changed"
    assert "stale fork" in str(stale["note"]) and "aiconfig fork" in str(stale["note"])
    code, md = gitdiff(repo, capsys, "HEAD", fmt="markdown")
    assert "### ⚠️ `experiments/hi-lr.yaml` — base-changed" in md
    assert re.search(r"\| `training.epochs` \| changed \| `20` \| `30` \|", md)


def test_signature_and_removal(repo: Project, capsys: pytest.CaptureFixture[str]) -> None:
    fork(repo, "a", "training.epochs=2")
    fork(repo, "b", "training.epochs=3")
    before = commit(repo, "forks")
    repo.sign(repo.exp / "a.yaml", repo.research)  # a second reviewer signs
    (repo.exp / "b.yaml").unlink()
    (repo.exp / "b.yaml.sig").unlink()
    after = commit(repo, "review")
    capsys.readouterr()
    code, out = gitdiff(repo, capsys, before, after)
    assert code == 1
    report = files(out)
    assert report["experiments/a.yaml"]["signers"] == {"added": ["research@test"], "removed": []}
    assert report["experiments/a.yaml"]["changes"] == []
    assert report["experiments/b.yaml"]["status"] == "removed"


def test_bad_revision_exits_2(repo: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["diff", "--git", "no-such-rev", "--repo", str(repo.root)])
    _, err = capsys.readouterr()
    assert code == 2 and err.startswith("error:") and len(err.splitlines()) == 1


def test_missing_revisions_are_named(
    repo: Project, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    git(repo, "tag", "v1.2")
    code = main(["diff", "--git", "v1.2", "v9.9", "--repo", str(repo.root)])
    err = capsys.readouterr().err
    assert code == 2
    (line,) = err.splitlines()  # v1.2 exists: only v9.9 is named
    assert "unknown revision 'v9.9'" in line and "git repository" not in line
    code = main(["diff", "--git", "v0.1", "v9.9", "--repo", str(repo.root)])
    lines = capsys.readouterr().err.splitlines()
    assert code == 2 and ["v0.1" in lines[0], "v9.9" in lines[1]] == [True, True]
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    assert main(["diff", "--git", "HEAD", "--repo", str(outside)]) == 2
    assert f"{outside}: not inside a git repository" in capsys.readouterr().err


def test_identical_is_labelled_identical(repo: Project, capsys: pytest.CaptureFixture[str]) -> None:
    base = str(repo.baseline)
    for fmt, label in (("text", f"{base} [identical]"), ("markdown", "— identical")):
        assert main(["diff", base, base, "--format", fmt, "--keys", str(repo.root / "keys")]) == 0
        out = capsys.readouterr().out
        assert label in out and "modified" not in out
