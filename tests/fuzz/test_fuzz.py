"""Every fuzz target runs briefly under atheris on its committed corpus (CI); long runs are
``scripts/fuzz.sh``. The contract: a result or an AiconfigError, no other exception, no input
over 1 s, no RSS growth over 256 MB."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.run import HANG_S
from tests.fuzz.targets import CORPUS, TARGETS

REPO = Path(__file__).resolve().parents[2]
RUNS = int(os.environ.get("AICONFIG_FUZZ_RUNS", "400"))


def _fuzz(target: str, corpus: Path, tmp: Path, runs: int) -> subprocess.CompletedProcess[str]:
    work = tmp / "corpus"
    shutil.copytree(corpus, work)
    (tmp / "crashes").mkdir()
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fuzz.run",
            target,
            str(work),
            f"-runs={runs}",
            "-seed=1",  # reproducible in CI; scripts/fuzz.sh varies it
            f"-artifact_prefix={tmp / 'crashes'}/",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        errors="replace",
        timeout=600,
        check=False,
    )


def _replay_s(target: str, unit: Path) -> float:
    """The best of three timings of ``unit`` in a fresh, quiet process."""
    code = "\n".join(
        [
            "import sys, time",
            "from tests.fuzz import targets",
            "data = open(sys.argv[2], 'rb').read()",
            "targets.call(sys.argv[1], data)  # imports and caches, as the fuzzer's warm-up",
            "times = []",
            "for _ in range(3):",
            "    t = time.perf_counter()",
            "    targets.call(sys.argv[1], data)",
            "    times.append(time.perf_counter() - t)",
            "print(min(times))",
        ]
    )
    out = subprocess.run(
        [sys.executable, "-c", code, target, str(unit)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return float(out.stdout.strip())


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_target_holds_its_contract(target: str, tmp_path: Path) -> None:
    proc = _fuzz(target, CORPUS / target, tmp_path, RUNS)
    crashes = sorted((tmp_path / "crashes").iterdir())
    # On a shared machine a scheduling stall can push one input past 1 s: a real hang is one
    # that is still slow when replayed alone.
    if proc.returncode != 0 and crashes and all(c.name.startswith("timeout-") for c in crashes):
        slow = {c.name: _replay_s(target, c) for c in crashes}
        assert all(t < HANG_S for t in slow.values()), f"{target}: hangs {slow}"
        return
    assert proc.returncode == 0 and not crashes, proc.stderr[-4000:]
    assert f"Done {RUNS} runs" in proc.stderr


def test_a_planted_bug_is_caught(tmp_path: Path) -> None:
    """The runner really reports an exception that is not an AiconfigError, with its input."""
    corpus = tmp_path / "seed"
    corpus.mkdir()
    (corpus / "bug").write_bytes(b"PLANTED-BUG")
    proc = _fuzz("_planted_bug", corpus, tmp_path, 50)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "Uncaught Python exception" in out and "KeyError" in out
    crashes = list((tmp_path / "crashes").iterdir())
    assert crashes and crashes[0].read_bytes().startswith(b"PLANTED")


def test_every_target_has_a_seed_corpus() -> None:
    for name in TARGETS:
        assert any((CORPUS / name).iterdir()), name
