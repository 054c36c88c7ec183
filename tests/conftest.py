"""Shared fixtures: a private trust store and anti-rollback state per test, and the suite's
one PulseAudio daemon."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from aiconfig._trust.signing import allowed_signers_line, generate_keypair, sign_file


@dataclass
class Keyring:
    """A trust root in a temp dir: ``root/keys/{allowed_signers,policy.yaml}`` + private keys."""

    root: Path
    keys: dict[str, Path] = field(default_factory=dict)

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    def add(self, principal: str, *, trusted: bool = True, options: str = "") -> Path:
        key = self.root / "private" / principal.replace("@", "_")
        pub = generate_keypair(key, comment=principal)
        self.keys[principal] = key
        if trusted:
            line = allowed_signers_line(principal, pub)
            if options:
                name, rest = line.split(" ", 1)
                rest = rest.replace('namespaces="aiconfig" ', "")
                line = f"{name} {options} {rest}"
            with (self.keys_dir / "allowed_signers").open("a", encoding="utf-8") as out:
                out.write(line + "\n")
        return key

    def policy(self, text: str) -> None:
        (self.keys_dir / "policy.yaml").write_text(text, encoding="utf-8")

    def sign(self, config: Path, *principals: str) -> None:
        for p in principals:
            sign_file(config, self.keys[p])

    def write(self, rel: str, text: str, *signers: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.sign(path, *signers)
        return path


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    ring = Keyring(tmp_path / "repo")
    ring.keys_dir.mkdir(parents=True)
    (ring.keys_dir / "allowed_signers").write_text("", encoding="utf-8")
    return ring


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Anti-rollback state and key lookup never touch the user's home or the repo's keys."""
    monkeypatch.setenv("AP_DATA_ROOT", str(tmp_path / "data-root"))
    monkeypatch.delenv("AICONFIG_KEYS", raising=False)
    monkeypatch.delenv("AICONFIG_KEY_PASSPHRASE", raising=False)
    yield


MINIMAL = "meta:\n  name: demo\n  version: 1\n"

# A config with one of each schema error at a known line: a typo'd key (5), a wrong type (8),
# values out of range (10, 14); the date (4) and the interpolation (12) are valid.
BROKEN_CONFIG = """\
meta:
  name: broken
  version: 1
  expires: 2027-06-30
trainig:
  epochs: 3
training:
  epochs: many
  optimizer:
    betas: [0.9, 1.5]
  dataset:
    num_workers: ${oc.env:NUM_WORKERS,4}
capture:
  fps: 0
"""

Writer = Callable[[str], Path]


@pytest.fixture
def write_config(tmp_path: Path) -> Writer:
    counter = iter(range(10_000))

    def _write(text: str) -> Path:
        path = tmp_path / f"cfg{next(counter)}.yaml"
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return path

    return _write


@pytest.fixture(scope="session")
def pulse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A private PulseAudio daemon with a null sink ``capsink`` (its monitor stands in for the
    system output). Runtime dir and HOME point into a temp dir: nothing touches the real home.

    Defined here, once, for the capture and the session tests: a session fixture imported into
    two conftests is two fixtures, and would start two daemons in one run."""
    root = tmp_path_factory.mktemp("pulse")
    runtime = root / "run"
    runtime.mkdir(mode=0o700)
    env = {"XDG_RUNTIME_DIR": str(runtime), "HOME": str(root), "PULSE_COOKIE": str(root / "c")}
    full = {**os.environ, **env}
    proc = subprocess.Popen(
        [
            "pulseaudio",
            "-n",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--disallow-exit",
            "--log-target=stderr",
            "--load=module-native-protocol-unix",
            "--load=module-null-sink sink_name=capsink",
        ],
        env=full,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while (
        subprocess.run(["pactl", "info"], env=full, capture_output=True, check=False).returncode
        != 0
    ):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("PulseAudio did not start (are pulseaudio and pulseaudio-utils installed?)")
        time.sleep(0.1)
    try:
        yield env
    finally:
        proc.terminate()
        proc.wait(timeout=10)


REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("PYTHONHASHSEED", "0")
