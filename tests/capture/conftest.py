"""Fixtures for the capture tests: a real Xvfb server, test windows, XTEST input injection."""

from __future__ import annotations

import os
import subprocess
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


@pytest.fixture(scope="session")
def pulse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A private PulseAudio daemon with a null sink ``capsink`` (its monitor stands in for the
    system output). Runtime dir and HOME point into a temp dir: nothing touches the real home."""
    import time

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


@pytest.fixture
def pulse(pulse_server: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The suite's PulseAudio daemon, its environment set for this test only."""
    for key, value in pulse_server.items():
        monkeypatch.setenv(key, value)
    return pulse_server
