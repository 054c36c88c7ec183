"""Shared fixtures: a private trust store and anti-rollback state per test."""

from __future__ import annotations

import os
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

Writer = Callable[[str], Path]


@pytest.fixture
def write_config(tmp_path: Path) -> Writer:
    counter = iter(range(10_000))

    def _write(text: str) -> Path:
        path = tmp_path / f"cfg{next(counter)}.yaml"
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return path

    return _write


REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("PYTHONHASHSEED", "0")
