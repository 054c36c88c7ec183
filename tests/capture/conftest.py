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
