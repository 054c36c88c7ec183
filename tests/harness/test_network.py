"""Offline mode blocks real non-loopback connection attempts while loopback keeps working.

Attempts to non-loopback addresses run only inside a fresh network namespace (``unshare -n``,
loopback up, no route out), so even a broken guard could not send a packet off this machine. The
control run without offline mode shows what the kernel says there (``Network is unreachable``),
which proves the denial seen with offline mode comes from the guard, before any system call.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from aiconfig._network import is_loopback_host

from .util import PY, child_env, needs_private_network

PROBE = r"""
import _socket, http.server, json, socket, threading, urllib.request
from aiconfig.harness import RunContext

class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"hello")
    def log_message(self, *a):
        pass

def attempt(fn):
    try:
        fn()
        return "connected"
    except BaseException as exc:
        return f"{type(exc).__name__}: {exc}"

ATTEMPTS = {
    "tcp": lambda: socket.create_connection(("192.0.2.1", 80), timeout=2),
    "http": lambda: urllib.request.urlopen("http://192.0.2.1/", timeout=2),
    "dns": lambda: socket.getaddrinfo("example.com", 443),
    "udp": lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("192.0.2.1", 53)),
    "ipv6": lambda: socket.socket(socket.AF_INET6).connect(("2001:db8::1", 80)),
    "raw_socket": lambda: _socket.socket().connect(("192.0.2.1", 80)),
    "connect_ex": lambda: socket.socket().connect_ex(("192.0.2.1", 80)),
    "unspecified": lambda: socket.create_connection(("0.0.0.0", 9), timeout=2),
    "hosts_alias_dns": lambda: socket.getaddrinfo("localhost.localdomain", 80),
}
result = {}
with RunContext.from_env("pipeline") as run:
    server = http.server.HTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    result["loopback"] = urllib.request.urlopen(url, timeout=5).read().decode()
    result["localhost"] = urllib.request.urlopen(
        url.replace("127.0.0.1", "localhost"), timeout=5).read().decode()
    for name, fn in ATTEMPTS.items():
        result[name] = attempt(fn)
    server.shutdown()
print(json.dumps(result))
"""


def _probe(tmp_path: Path, **env: str) -> dict[str, str]:
    e = child_env(tmp_path, AP_OUT_DIR=str(tmp_path / "out"), AP_RUN_ID="net", **env)
    res = subprocess.run(
        ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" -c "$1"', PY, PROBE],
        env=e,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    out: dict[str, str] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


@needs_private_network
def test_offline_blocks_egress_and_keeps_loopback(tmp_path: Path) -> None:
    result = _probe(tmp_path, AP_NO_NETWORK="1")
    assert result.pop("loopback") == "hello"
    assert result.pop("localhost") == "hello"
    for name, outcome in result.items():
        assert outcome.startswith("NetworkDeniedError: refused"), (name, outcome)
        assert "--no-network" in outcome and "AP_NO_NETWORK=1" in outcome


@needs_private_network
def test_control_without_offline_reaches_the_kernel(tmp_path: Path) -> None:
    result = _probe(tmp_path)
    assert result["loopback"] == "hello"
    assert "Network is unreachable" in result["tcp"]
    assert "NetworkDeniedError" not in json.dumps(result)


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("127.5.6.7", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        (
            "api.localhost",
            False,
        ),  # RFC 6761 is not enforced by resolvers: /etc/hosts may say anything
        ("localhost.", True),
        ("LocalHost", True),
        ("127.0.0.1%lo", True),
        # Decided in aiconfig/_network.py: hosts-file aliases and the unspecified address are not
        # loopback (the two offline checks used to disagree on each of these).
        ("localhost.localdomain", False),
        ("ip6-localhost", False),
        ("0.0.0.0", False),  # noqa: S104 - the unspecified address, not a loopback target
        ("::", False),
        ("", False),
        ("::ffff:10.0.0.1", False),
        ("10.0.0.1", False),
        ("192.168.1.1", False),
        ("8.8.8.8", False),
        ("2001:db8::1", False),
        ("localhost.example.com", False),
        ("example.com", False),
    ],
)
def test_loopback_classification(host: str, local: bool) -> None:
    assert is_loopback_host(host) is local
