"""Fixtures for the session-library tests: sessions recorded for real, once per test run."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.capture.capture_helpers import start_xvfb
from tests.capture.conftest import pulse_server  # noqa: F401 - a fixture used below

from .recording import (
    record_killed_session,
    record_plain_session,
    record_played_session,
    write_tone,
)


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
    pulse_server: dict[str, str],  # noqa: F811 - the imported fixture
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
