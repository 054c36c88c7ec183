"""The Torch example in docs/inference.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "inference.md"


def test_torch_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    example = next(b for b in blocks if "TorchModelInterface.from_config" in b)
    monkeypatch.chdir(tmp_path)
    exec(compile(example, str(DOC), "exec"), {"__name__": "__doc_example__"})  # noqa: S102
    out = capsys.readouterr().out
    assert "over budget in the compute phase" in out
    assert "6 refused at once" in out
    assert (tmp_path / "telemetry.jsonl").stat().st_size > 0
