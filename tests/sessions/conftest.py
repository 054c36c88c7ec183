"""Fixtures for the session-library tests: sessions recorded for real, once per test run."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.capture.capture_helpers import start_xvfb

from .recording import (
    record_killed_session,
    record_plain_session,
    record_played_session,
    write_tone,
)
from .replicate import replicate


@dataclass(frozen=True)
class Recorded:
    root: Path
    injected: dict[str, int]
    killed: Path

    def __iter__(self) -> Iterator[Any]:
        return iter((self.root, self.injected))


@pytest.fixture(scope="session")
def recorded(
    tmp_path_factory: pytest.TempPathFactory,
    pulse_server: dict[str, str],
) -> Iterator[Recorded]:
    """A root with two real sessions: ``played/`` (window, keys, clicks, audio tone) and
    ``plain/`` (whole screen, no input, no audio), plus a recording SIGKILLed mid-session
    (outside the root). Tests copy them before changing anything."""
    root = tmp_path_factory.mktemp("recorded") / "sessions"
    tone = root.parent / "tone.wav"
    write_tone(tone)
    proc, display = start_xvfb("1024x768x24")
    saved = dict(os.environ)
    os.environ.update(pulse_server)
    os.environ["DISPLAY"] = display
    os.environ.pop("WAYLAND_DISPLAY", None)
    try:
        injected = record_played_session(root / "played", tone)
        record_plain_session(root / "plain")
        killed = record_killed_session(root.parent / "killed")
    finally:
        os.environ.clear()
        os.environ.update(saved)
        proc.terminate()
        proc.wait(timeout=10)
    yield Recorded(root, injected, killed)


@pytest.fixture
def sessions_root(recorded: Recorded, tmp_path: Path) -> Path:
    """A private copy of the recorded root (safe to corrupt)."""
    root = tmp_path / "sessions"
    shutil.copytree(recorded.root, root)
    return root


def session_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("session_*") if p.is_dir())


def copy_session(src: Path, root: Path, name: str) -> Path:
    """A valid copy of ``src`` as session ``name`` under ``root/bad/``."""
    return replicate(src, root / "bad" / name)


@pytest.fixture
def broken_root(sessions_root: Path, recorded: Recorded) -> Path:
    """Two good sessions plus one of each kind of damage (the unreadable one is made by the
    test that needs it)."""
    played = session_dirs(sessions_root / "played")[0]
    shutil.copytree(recorded.killed, sessions_root / "bad" / "session_20990101_000001")
    trunc = copy_session(played, sessions_root, "session_20990101_000002")
    data = (trunc / "events.parquet").read_bytes()
    (trunc / "events.parquet").write_bytes(data[: len(data) // 2])
    corrupt = copy_session(played, sessions_root, "session_20990101_000003")
    (corrupt / "metadata.json").write_text('{"format_version": "1.0.0", "fps": 3')
    future = copy_session(played, sessions_root, "session_20990101_000004")
    meta = json.loads((future / "metadata.json").read_text())
    meta["format_version"] = "9.0.0"
    (future / "metadata.json").write_text(json.dumps(meta))
    return sessions_root
