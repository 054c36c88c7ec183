"""The examples of docs/emergency.md, the README's emergency block and docs/experiments.md's
list-item block run as written, in a temp copy of the repository with fresh ssh-keygen keys."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aiconfig._trust.signing import allowed_signers_line, generate_keypair, sign_file
from aiconfig._trust.store import EmergencyPolicy
from tests.conftest import REPO

DOC = REPO / "docs" / "emergency.md"
README = REPO / "README.md"
EXPERIMENTS = REPO / "docs" / "experiments.md"


def block_with(doc: Path, lang: str, needle: str) -> str:
    blocks = re.findall(rf"```{lang}\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
    found = [b for b in blocks if needle in b]
    assert len(found) == 1, f"{len(found)} {lang} blocks of {doc.name} hold {needle!r}"
    return str(found[0])


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This repository's experiments and policy; the baseline lists the documented emergency
    paths and is signed by fresh keys for lead@ (on call) and research@aiconfig.dev."""
    root = tmp_path / "repo"
    shutil.copytree(REPO / "experiments", root / "experiments")
    shutil.copytree(REPO / "keys", root / "keys")
    keys = tmp_path / "home" / ".ssh"
    lines = []
    for who in ("lead", "research"):
        pub = generate_keypair(keys / who, comment=f"{who}@aiconfig.dev")
        lines.append(allowed_signers_line(f"{who}@aiconfig.dev", pub))
    shutil.copy(keys / "lead", keys / "oncall")
    (root / "keys" / "allowed_signers").write_text("\n".join(lines) + "\n", encoding="utf-8")
    listed = yaml.safe_load(block_with(DOC, "yaml", "emergency:                     #"))
    entries = "".join(f"    - {p}\n" for p in listed["meta"]["emergency"])
    baseline = root / "experiments" / "baseline.yaml"
    text = baseline.read_text(encoding="utf-8").replace(
        "  locked:", "  emergency:\n" + entries + "  locked:", 1
    )
    baseline.write_text(text, encoding="utf-8")
    for sig in (root / "experiments").glob("*.sig"):
        sig.unlink()
    sign_file(baseline, keys / "lead")
    sign_file(baseline, keys / "research")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "aiconfig"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m aiconfig "$@"\n', encoding="utf-8")
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ONCALL_KEY", str(keys / "oncall"))
    monkeypatch.setenv("AP_DATA_ROOT", str(tmp_path / "state"))
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


def test_policy_block_is_a_valid_policy_and_the_committed_one_agrees() -> None:
    doc = yaml.safe_load(block_with(DOC, "yaml", "principals:"))["emergency"]
    EmergencyPolicy.model_validate(doc)
    committed = yaml.safe_load((REPO / "keys" / "policy.yaml").read_text(encoding="utf-8"))
    assert committed["emergency"]["principals"] == doc["principals"]


def test_incident_commands(repo: Path) -> None:
    proc = bash(block_with(DOC, "bash", "aiconfig emergency experiments/baseline.yaml"), repo)
    assert proc.returncode == 0, proc.stderr
    assert "wrote experiments/emergency/baseline@" in proc.stdout
    assert re.search(
        r"^ACTIVE +experiments/emergency/baseline@\d{8}T\d{6}Z\.yaml", proc.stdout, re.M
    )
    shown = "WARNING: EMERGENCY OVERRIDE ACTIVE on experiments/baseline.yaml: "
    shown += "inference.latency_budget_ms = 120.0"
    assert shown in proc.stderr
    (written,) = (repo / "experiments" / "emergency").glob("baseline@*.yaml")
    documented = yaml.safe_load(block_with(DOC, "yaml", "EMERGENCY OVERRIDE written by"))
    actual = yaml.safe_load(written.read_text(encoding="utf-8"))
    assert set(actual["emergency"]) == set(documented["emergency"])
    assert actual["overrides"] == documented["overrides"]
    assert actual["emergency"]["reason"] == documented["emergency"]["reason"]


def test_refusal_line_is_as_documented(repo: Path) -> None:
    documented = block_with(DOC, "text", "emergency override refused: signed by").strip()
    proc = bash(
        "aiconfig emergency experiments/baseline.yaml --set inference.latency_budget_ms=120 "
        '--reason "p99" --sign-key ~/.ssh/research',
        repo,
    )
    assert proc.returncode == 1
    pattern = re.escape(documented).replace("20261201T091200Z", r"\d{8}T\d{6}Z")
    assert re.fullmatch(pattern, proc.stderr.strip()), proc.stderr
    assert not list((repo / "experiments" / "emergency").glob("*.yaml"))


def test_readme_block(repo: Path) -> None:
    proc = bash(block_with(README, "bash", "aiconfig emergency experiments/baseline.yaml"), repo)
    assert proc.returncode == 0, proc.stderr
    proc = bash("aiconfig show experiments/baseline.yaml --resolved --format json", repo)
    assert proc.returncode == 0 and '"latency_budget_ms": 120.0' in proc.stdout


def test_list_item_fork_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/experiments.md: the dry run prints the fork file with the documented overrides."""
    monkeypatch.setenv("AP_DATA_ROOT", str(tmp_path / "state"))
    script = block_with(EXPERIMENTS, "bash", "model.action_space[+]=recall").replace(
        "aiconfig ", f"{sys.executable} -m aiconfig ", 1
    )
    proc = bash(script, REPO)
    assert proc.returncode == 0, proc.stderr
    documented = block_with(EXPERIMENTS, "yaml", "~model.action_space[0]: move")
    assert documented in proc.stdout
    assert not Path("/tmp/forks/items.yaml").exists()
