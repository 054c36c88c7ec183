"""Fixtures for the capture tests: a real Xvfb server, test windows, XTEST input injection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.capture.capture_helpers import Injector, start_xvfb


@pytest.fixture(scope="session")
def xvfb_server() -> Iterator[str]:
    """The suite's private Xvfb (the server picks a free display number: -displayfd)."""
    try:
        proc, display = start_xvfb()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield display
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def xvfb(xvfb_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """DISPLAY set to the suite's Xvfb for this test only."""
    monkeypatch.setenv("DISPLAY", xvfb_server)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    return xvfb_server


@pytest.fixture
def injector(xvfb: str) -> Iterator[Injector]:
    inj = Injector()
    try:
        yield inj
    finally:
        inj.close()


@pytest.fixture
def pulse(pulse_server: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The suite's PulseAudio daemon (``pulse_server``, tests/conftest.py), its environment set
    for this test only."""
    for key, value in pulse_server.items():
        monkeypatch.setenv(key, value)
    return pulse_server
