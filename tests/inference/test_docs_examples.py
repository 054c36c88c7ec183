"""The Torch examples in docs/inference.md run as written and print what the text says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "inference.md"


def _example(marker: str) -> str:
    blocks: list[str] = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    return next(b for b in blocks if marker in b)


def test_torch_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    example = _example("TorchModelInterface.from_config(\n            net,")
    monkeypatch.chdir(tmp_path)
    exec(compile(example, str(DOC), "exec"), {"__name__": "__doc_example__"})  # noqa: S102
    out = capsys.readouterr().out
    assert "over budget in the admission phase" in out
    assert "6 refused at once" in out
    assert (tmp_path / "telemetry.jsonl").stat().st_size > 0


def test_batching_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    example = _example("max_batch_size=8")
    monkeypatch.chdir(tmp_path)
    exec(compile(example, str(DOC), "exec"), {"__name__": "__doc_example__"})  # noqa: S102
    out = capsys.readouterr().out
    assert "3 batches for 17 calls" in out
    assert "identical alone and batched: True" in out


def test_infer_job_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    example = _example("run_infer_job(cfg, settings")
    repo = DOC.parents[1]
    for name in ("experiments", "keys"):
        shutil.copytree(repo / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AP_DATA_ROOT", str(tmp_path / "data"))
    for var in ("AP_OUT_DIR", "AP_RUN_ID", "HYPERVISOR_RUN_DIR"):
        monkeypatch.delenv(var, raising=False)
    exec(compile(example, str(DOC), "exec"), {"__name__": "__doc_example__"})  # noqa: S102
    assert "3 of 3 calls ok" in capsys.readouterr().out
    (run,) = (tmp_path / "runs" / "infer").iterdir()
    assert (run / "manifest.json").is_file() and (run / "calls.jsonl").is_file()
