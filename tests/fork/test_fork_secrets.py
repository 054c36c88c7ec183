"""``fork --set`` refuses literal secrets by the schema, not by the key's name."""

from __future__ import annotations

import pytest

from aiconfig.cli import main
from tests.fork.conftest import Project


def test_fork_sets_max_tokens_but_refuses_a_literal_api_key(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    base = str(project.baseline)
    ok = project.cli("fork", base, "--name", "long-answers", "--dry-run",
                     "--set", "inference.vllm.max_tokens=4096")  # fmt: skip
    assert main(ok) == 0
    assert "inference.vllm.max_tokens: 4096" in capsys.readouterr().out
    bad = project.cli("fork", base, "--name", "leaky", "--dry-run",
                      "--set", "inference.vllm.api_key=sk-123")  # fmt: skip
    assert main(bad) == 1
    err = capsys.readouterr().err
    assert "secrets never go into config files" in err and "sk-123" not in err
