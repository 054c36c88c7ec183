"""The examples of docs/emergency.md, the README's emergency block and docs/experiments.md's
list-item block, run once each (blocks marked ``<!-- test: NAME -->``) in a documentation
sandbox with fresh ssh-keygen keys, checked against what the pages say they write and print."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from aiconfig._trust.store import EmergencyPolicy
from tests.docs.examples import REPO, dedicated, fenced
from tests.docs.runner import run_bash, sandbox_for
from tests.docs.setups import Sandbox

DOC = REPO / "docs" / "emergency.md"
README = REPO / "README.md"
EXPERIMENTS = REPO / "docs" / "experiments.md"


def aiconfig(box: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["aiconfig", *args],
        cwd=box.root,
        env=box.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_policy_block_is_a_valid_policy_and_the_committed_one_agrees() -> None:
    doc = yaml.safe_load(fenced(DOC, "yaml", "principals:"))["emergency"]
    EmergencyPolicy.model_validate(doc)
    committed = yaml.safe_load((REPO / "keys" / "policy.yaml").read_text(encoding="utf-8"))
    assert committed["emergency"]["principals"] == doc["principals"]


def test_incident_commands(tmp_path: Path) -> None:
    """``<!-- test: emergency-incident -->``: the override is written, active and applied."""
    box = sandbox_for(tmp_path, "oncall")
    write, status, validate = run_bash(dedicated(DOC, "emergency-incident"), box)
    assert "wrote experiments/emergency/baseline@" in write.stdout
    assert re.search(
        r"^ACTIVE +experiments/emergency/baseline@\d{8}T\d{6}Z\.yaml", status.stdout, re.M
    )
    shown = "WARNING: EMERGENCY OVERRIDE ACTIVE on experiments/baseline.yaml: "
    shown += "inference.latency_budget_ms = 120.0"
    assert shown in validate.stderr
    (written,) = (box.root / "experiments" / "emergency").glob("baseline@*.yaml")
    documented = yaml.safe_load(fenced(DOC, "yaml", "EMERGENCY OVERRIDE written by"))
    actual = yaml.safe_load(written.read_text(encoding="utf-8"))
    assert set(actual["emergency"]) == set(documented["emergency"])
    assert actual["overrides"] == documented["overrides"]
    assert actual["emergency"]["reason"] == documented["emergency"]["reason"]


def test_refusal_line_is_as_documented(tmp_path: Path) -> None:
    box = sandbox_for(tmp_path, "oncall")
    documented = fenced(DOC, "text", "emergency override refused: signed by").strip()
    proc = aiconfig(
        box,
        *("emergency", "experiments/baseline.yaml", "--set", "inference.latency_budget_ms=120"),
        *("--reason", "p99", "--sign-key", str(box.home / ".ssh" / "team-research")),
    )
    assert proc.returncode == 1
    pattern = re.escape(documented).replace("20261201T091200Z", r"\d{8}T\d{6}Z")
    assert re.fullmatch(pattern, proc.stderr.strip()), proc.stderr
    assert not list((box.root / "experiments" / "emergency").glob("*.yaml"))


def test_readme_block(tmp_path: Path) -> None:
    """``<!-- test: readme-emergency -->``: on a baseline that lists emergency paths."""
    box = sandbox_for(tmp_path, "oncall")
    run_bash(dedicated(README, "readme-emergency"), box)
    proc = aiconfig(box, "show", "experiments/baseline.yaml", "--resolved", "--format", "json")
    assert proc.returncode == 0 and '"latency_budget_ms": 120.0' in proc.stdout


def test_list_item_fork_block(tmp_path: Path) -> None:
    """``<!-- test: fork-list-items -->``: the dry run prints the fork file with the documented
    overrides and writes nothing."""
    box = sandbox_for(tmp_path)
    (proc,) = run_bash(dedicated(EXPERIMENTS, "fork-list-items"), box)
    documented = fenced(EXPERIMENTS, "yaml", "~model.action_space[0]: move")
    assert documented in proc.stdout
    assert not Path("/tmp/forks/items.yaml").exists()
