"""What `aiconfig validate` imports on its hot path (no timings here: see benchmarks/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from aiconfig import _fork, _loader
from aiconfig._trust.store import TrustStore
from tests.conftest import REPO, Keyring

NOT_ON_THE_HOT_PATH = [
    "aiconfig._fork",  # a baseline is not a fork
    "aiconfig._diff",
    "aiconfig._overrides",
    "aiconfig._explain",  # only when something is invalid
    "omegaconf",  # common ${oc.env:...} forms are resolved without it
    "deepdiff",
    "httpx",
    "opentelemetry",
    "cryptography.hazmat.primitives.asymmetric.rsa",  # Ed25519 keys need neither
    "cryptography.hazmat.primitives.asymmetric.ec",
    "capture",
    "aiconfig.harness",
    "aiconfig.inference",
    "aiconfig.monitoring",
]


def test_validate_of_the_signed_baseline_imports_only_what_it_needs(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "from aiconfig.cli import main\n"
        f"code = main(['validate', {str(REPO / 'experiments' / 'baseline.yaml')!r}])\n"
        f"print(json.dumps([code, [m for m in {NOT_ON_THE_HOT_PATH!r} if m in sys.modules]]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "AP_DATA_ROOT": str(tmp_path), "PYTHONPATH": str(REPO)},
    )
    code_, loaded = json.loads(out.stdout.splitlines()[-1])
    assert code_ == 0, out.stderr
    assert loaded == []


def test_the_loader_knows_a_fork_by_the_fork_modules_own_key() -> None:
    assert _loader._FORK_KEY == _fork.FORK_KEY


def test_a_reused_trust_store_follows_the_files(keyring: Keyring) -> None:
    """Parsed stores are reused by content: a changed file is never served stale."""
    keyring.add("alice@x")
    first = TrustStore.load(keyring.keys_dir)
    assert TrustStore.load(keyring.keys_dir) is first
    keyring.add("bob@x")
    second = TrustStore.load(keyring.keys_dir)
    assert second is not first and len(second.signers) == 2
    keyring.policy("threshold: 2\n")
    assert TrustStore.load(keyring.keys_dir).policy.threshold == 2
    (keyring.keys_dir / "policy.yaml").unlink()
    assert TrustStore.load(keyring.keys_dir).policy.threshold == 1
