"""One network policy: one predicate and one error for harness, inference and monitoring."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from aiconfig import NetworkDeniedError, VLLMConfig, _network
from aiconfig.cli import main
from aiconfig.harness import offline
from aiconfig.inference import (
    OfflineModeError,
    SidecarDiagnosis,
    VLLMClient,
    check_network_allowed,
    offline_mode,
)
from tests.conftest import REPO

OFF = {"AP_NO_NETWORK": "1"}


def test_one_error_type_for_urls_and_sockets() -> None:
    assert OfflineModeError is NetworkDeniedError
    with pytest.raises(NetworkDeniedError, match=r"the vLLM sidecar at http://10\.1\.2\.3"):
        VLLMClient(VLLMConfig(base_url="http://10.1.2.3:8000"), environ=OFF)
    with offline(), socket.socket() as sock, pytest.raises(NetworkDeniedError, match="refused"):
        sock.connect(("192.0.2.1", 80))  # refused by the guard before the system call


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://[::1]:8000/v1", True),
        ("http://[::ffff:127.0.0.1]:8000", True),
        ("http://localhost:4318", True),
        ("http://localhost.localdomain:8000", False),
        ("http://ip6-localhost:8000", False),
        ("http://0.0.0.0:8000", False),  # what vLLM prints when it listens everywhere
        ("http://collector.example:4318", False),
    ],
)
def test_url_check_uses_the_same_predicate(url: str, allowed: bool) -> None:
    assert _network.is_loopback_url(url) is allowed
    if allowed:
        check_network_allowed(url, purpose="x", environ=OFF)
    else:
        with pytest.raises(NetworkDeniedError, match="not a loopback address") as info:
            check_network_allowed(url, purpose="x", key_path="a.b", environ=OFF)
        assert info.value.problems[0].path == "a.b"
    check_network_allowed(url, purpose="x", environ={"AP_NO_NETWORK": "0"})


def test_address_judgement_is_separate_from_names() -> None:
    """What a later check of the connected address needs: IP literals only, never names."""
    assert _network.is_loopback_ip("127.0.0.2") and _network.is_loopback_ip("::ffff:127.0.0.1")
    assert not _network.is_loopback_ip("localhost")
    assert not _network.is_loopback_ip("0.0.0.0")  # noqa: S104


def test_guard_and_variable_are_one_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AP_NO_NETWORK", raising=False)
    assert not _network.is_offline() and not offline_mode()
    with offline():
        assert os.environ["AP_NO_NETWORK"] == "1"
        assert _network.is_offline() and offline_mode()
        assert not _network.is_offline({})  # an explicit mapping is all that is consulted
    assert "AP_NO_NETWORK" not in os.environ and not _network.is_offline()


def test_check_sidecar_no_network_leaves_no_trace(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--no-network`` goes through the policy (guard on during the check), not os.environ."""
    monkeypatch.delenv("AP_NO_NETWORK", raising=False)
    rc = main(["check-sidecar", "--base-url", "http://10.1.2.3:8000", "--no-network", "--json"])
    assert rc == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["checks"][0]["name"] == "offline policy" and not doc["checks"][0]["ok"]
    assert "AP_NO_NETWORK" not in os.environ and not _network.is_offline()


def test_check_sidecar_no_network_installs_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """During the check, a connection the URL check did not see is refused too."""
    seen: list[bool] = []

    async def preflight_then_connect(cfg: VLLMConfig, *, wait_s: float) -> SidecarDiagnosis:
        seen.append(_network.is_offline())
        with socket.socket() as sock, pytest.raises(NetworkDeniedError):
            sock.connect(("192.0.2.1", 80))
        return SidecarDiagnosis(cfg.base_url, cfg.model, False, ())

    monkeypatch.delenv("AP_NO_NETWORK", raising=False)
    monkeypatch.setattr("aiconfig.inference.sidecar.preflight", preflight_then_connect)
    assert main(["check-sidecar", "--no-network"]) == 1
    assert seen == [True] and not _network.is_offline()


def test_monitoring_imports_neither_inference_nor_httpx() -> None:
    code = (
        "import sys, aiconfig.monitoring\n"
        "print([m for m in ('httpx', 'aiconfig.inference', 'capture', 'aiconfig.harness')"
        " if m in sys.modules])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert proc.stdout.strip() == "[]"
