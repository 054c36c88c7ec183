"""The committed example forks in experiments/ verify, validate and diff as documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiconfig import load
from aiconfig.cli import main
from tests.fork.conftest import PROJECT

EXAMPLES = sorted(p for p in (PROJECT / "experiments").glob("*.yaml") if p.name != "baseline.yaml")


def test_there_is_a_sweep() -> None:
    assert len([p for p in EXAMPLES if "-sweep-" in p.name]) >= 2


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_verifies_and_validates(path: Path, tmp_path: Path) -> None:
    keys = str(PROJECT / "keys")
    assert main(["verify", str(path), "--keys", keys, "--data-root", str(tmp_path)]) == 0
    assert main(["validate", str(path), "--keys", keys, "--data-root", str(tmp_path)]) == 0
    cfg = load(path, keys=keys, data_root=tmp_path, env={})
    assert cfg.provenance.lineage[0]["path"].endswith("baseline.yaml")
    assert cfg.meta.locked  # the baseline's locks carry over


def test_example_diff_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    base = str(PROJECT / "experiments" / "baseline.yaml")
    fork = str(PROJECT / "experiments" / "lr-1e-3.yaml")
    assert main(["diff", base, fork]) == 1
    out = capsys.readouterr().out
    assert "training.lr: 0.0003 -> 0.001" in out and "training.warmup_steps" in out
