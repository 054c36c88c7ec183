"""Sessions recorded for real for the dataset, export and Ray tests (once per test run)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.capture.capture_helpers import start_xvfb

from .timed import Injected, record_timed_session


@dataclass(frozen=True)
class TimedRoot:
    root: Path
    injected: list[Injected]


@pytest.fixture(scope="session")
def timed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TimedRoot]:
    """A root with two 3-second sessions of the stand-in window, each with every key of
    :data:`TAP_KEYS` tapped at a known frame, a right-click, a scroll and a pointer move; the
    second recorded by ``aiconfig capture`` from the signed baseline (with its provenance)."""
    root = tmp_path_factory.mktemp("timed") / "sessions"
    proc, display = start_xvfb("1024x768x24")
    saved = dict(os.environ)
    os.environ["DISPLAY"] = display
    os.environ.pop("WAYLAND_DISPLAY", None)
    try:
        injected = [
            record_timed_session(root / "take0"),
            record_timed_session(root / "take1", config_state=root.parent / "state"),
        ]
    finally:
        os.environ.clear()
        os.environ.update(saved)
        proc.terminate()
        proc.wait(timeout=10)
    yield TimedRoot(root, injected)
