"""A throwaway project per test: fresh reviewer keys, trust store, signed baseline."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aiconfig import AIConfig, load
from aiconfig._trust.signing import allowed_signers_line, generate_keypair, sign_file

PROJECT = Path(__file__).resolve().parents[2]
BASELINE = PROJECT / "experiments" / "baseline.yaml"
ENV: dict[str, str] = {}  # interpolation defaults only: tests never read the real environment


@dataclass(frozen=True)
class Project:
    root: Path
    lead: Path  # private keys live outside root
    research: Path
    data_root: Path

    @property
    def exp(self) -> Path:
        return self.root / "experiments"

    @property
    def baseline(self) -> Path:
        return self.exp / "baseline.yaml"

    def sign(self, path: Path, *keys: Path) -> None:
        for key in keys or (self.lead,):
            sign_file(path, key)

    def load(self, path: Path, **kw: object) -> AIConfig:
        kw.setdefault("keys", self.root / "keys")
        return load(path, data_root=self.data_root, env=ENV, **kw)  # type: ignore[arg-type]

    def cli(self, *argv: str) -> list[str]:
        """Common trust options for CLI calls inside this project."""
        return [*argv, "--keys", str(self.root / "keys"), "--data-root", str(self.data_root)]


def make_project(base: Path) -> Project:
    root = base / "proj"
    (root / "keys").mkdir(parents=True)
    (root / "experiments").mkdir()
    keydir = base / "private"
    lines = []
    for who in ("lead", "research"):
        pub = generate_keypair(keydir / who, comment=f"{who}@test")
        lines.append(allowed_signers_line(f"{who}@test", pub))
    (root / "keys" / "allowed_signers").write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.copy(PROJECT / "keys" / "policy.yaml", root / "keys" / "policy.yaml")
    shutil.copy(BASELINE, root / "experiments" / "baseline.yaml")
    project = Project(root, keydir / "lead", keydir / "research", base / "state")
    project.sign(project.baseline, project.lead, project.research)
    return project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    monkeypatch.delenv("AICONFIG_KEYS", raising=False)
    monkeypatch.setenv("AP_DATA_ROOT", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    yield make_project(tmp_path)
