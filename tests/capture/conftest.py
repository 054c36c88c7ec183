"""Fixtures for the capture tests: a real Xvfb server, test windows, XTEST input injection."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.capture.capture_helpers import Injector


@pytest.fixture(scope="session")
def xvfb() -> Iterator[str]:
    """A private Xvfb (display number chosen by the server via -displayfd); sets DISPLAY."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [
            "Xvfb",
            "-displayfd",
            str(write_fd),
            "-screen",
            "0",
            "1920x1080x24",
            "-nolisten",
            "tcp",
            "-noreset",
        ],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as fh:
        number = fh.readline().strip()
    if not number:
        proc.kill()
        pytest.fail("Xvfb did not start (is the xvfb package installed?)")
    name = f":{number}"
    patch = pytest.MonkeyPatch()
    patch.setenv("DISPLAY", name)
    patch.delenv("WAYLAND_DISPLAY", raising=False)
    try:
        yield name
    finally:
        patch.undo()
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def injector(xvfb: str) -> Iterator[Injector]:
    inj = Injector()
    try:
        yield inj
    finally:
        inj.close()


@pytest.fixture(scope="session")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
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
    patch = pytest.MonkeyPatch()
    for key, value in env.items():
        patch.setenv(key, value)
    try:
        yield env
    finally:
        patch.undo()
        proc.terminate()
        proc.wait(timeout=10)
