"""Offline mode against names, raw sockets and wildcard binds, attacked for real.

Everything runs in a private network and mount namespace (``unshare -n -m``): ``10.77.0.1`` is
an address on that namespace's ``lo`` (non-loopback by the rules, but reachable, so a leak is
observable), ``/etc/hosts`` maps ``x.localhost`` to it, and ``/etc/resolv.conf`` names a DNS
"server" listening there, which records every query. The control run (offline mode off) shows
each attack reaching its target; the offline run must stop every one before it leaves.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .util import OUTSIDE, PY, REPO, child_env, needs_private_network

PROBE = r"""
import json, os, socket, subprocess, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OUT = "10.77.0.1"
seen = {"tcp": 0, "udp": 0, "dns": [], "http": []}

dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); dns.bind((OUT, 53))
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind((OUT, 9999))
tcp = socket.socket(); tcp.bind((OUT, 8765)); tcp.listen()
local = socket.socket(); local.bind(("127.0.0.1", 0)); local.listen()

class Sidecar(BaseHTTPRequestHandler):
    def do_GET(self):
        seen["http"].append([self.path, self.headers.get("authorization")])
        self.send_response(200); self.send_header("content-type", "application/json")
        self.end_headers(); self.wfile.write(b'{"data": []}')
    def log_message(self, *a):
        pass

http = ThreadingHTTPServer((OUT, 8000), Sidecar)

def serve(sock, key):
    while True:
        try:
            data, _ = sock.recvfrom(512)
        except OSError:
            return
        if key == "dns":
            seen["dns"].append(data[13:40].decode("latin-1"))
        else:
            seen[key] += 1

def accept():
    while True:
        c, _ = tcp.accept(); seen["tcp"] += 1; c.close()

for target in (lambda: serve(dns, "dns"), lambda: serve(udp, "udp"), accept, http.serve_forever):
    threading.Thread(target=target, daemon=True).start()

def attempt(fn):
    try:
        fn()
        return "ok"
    except BaseException as exc:
        return f"{type(exc).__name__}: {exc}"

if sys.argv[1] == "offline":
    from aiconfig._network import set_offline
    set_offline(True)

result = {
    "tcp_name": attempt(lambda: socket.socket().connect(("x.localhost", 8765))),
    "tcp_create": attempt(lambda: socket.create_connection(("x.localhost", 8765), timeout=2)),
    "udp_name": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(
        b"x", ("x.localhost", 9999))),
    "dns_lookup": attempt(lambda: socket.getaddrinfo("secret-one.localhost", 80)),
    "dns_in_connect": attempt(lambda: socket.socket().connect(("secret-two.localhost", 80))),
    "dns_in_bind": attempt(lambda: socket.socket().bind(("secret-three.localhost", 0))),
    "packet": attempt(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW)),
    "raw": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)),
    "bind_any": attempt(lambda: socket.socket().bind(("0.0.0.0", 0))),
    "bind_outside": attempt(lambda: socket.socket().bind((OUT, 0))),
    "loopback": attempt(lambda: socket.create_connection(local.getsockname(), timeout=1)),
    "localhost": attempt(lambda: socket.create_connection(
        ("localhost", local.getsockname()[1]), timeout=1)),
}
cli = [sys.executable, "-m", "aiconfig", "check-sidecar", "--base-url", "http://x.localhost:8000"]
env = dict(os.environ, VLLM_API_KEY="sk-secret-key")
sidecar = [
    subprocess.run([*cli, "--no-network"], env=env, capture_output=True, text=True),
    subprocess.run(cli, env=dict(env, AP_NO_NETWORK="1") if sys.argv[1] == "offline" else env,
                   capture_output=True, text=True),
]
result["sidecar"] = [[p.returncode, p.stdout + p.stderr] for p in sidecar]
time.sleep(1.5)  # let stray packets arrive before counting
result["seen"] = seen
print(json.dumps(result))
"""


def _probe(tmp_path: Path, mode: str) -> dict[str, object]:
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n{OUTSIDE} x.localhost\n")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver {OUTSIDE}\noptions timeout:1 attempts:1\n")
    script = (
        f"ip link set lo up && ip addr add {OUTSIDE}/32 dev lo && "
        f"mount --bind {hosts} /etc/hosts && mount --bind {resolv} /etc/resolv.conf && "
        'exec "$0" -c "$1" "$2"'
    )
    env = child_env(tmp_path)
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        ["unshare", "-n", "-m", "sh", "-c", script, PY, PROBE, mode],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@needs_private_network
def test_the_attacks_are_real_without_offline_mode(tmp_path: Path) -> None:
    r = _probe(tmp_path, "control")
    seen = r["seen"]
    assert isinstance(seen, dict)
    assert r["tcp_name"] == "ok" and seen["tcp"] >= 2  # x.localhost reached 10.77.0.1
    assert r["udp_name"] == "ok" and seen["udp"] == 1
    assert any("secret-one" in q for q in seen["dns"])  # the name left in a DNS query
    assert any("secret-two" in q for q in seen["dns"])
    assert r["bind_any"] == "ok" and r["bind_outside"] == "ok"
    assert seen["http"], "check-sidecar without offline mode reaches the sidecar"


@needs_private_network
def test_offline_mode_stops_every_one(tmp_path: Path) -> None:
    r = _probe(tmp_path, "offline")
    seen = r.pop("seen")
    assert seen == {"tcp": 0, "udp": 0, "dns": [], "http": []}, seen
    assert r.pop("loopback") == "ok" and r.pop("localhost") == "ok"  # loopback still works
    sidecar = r.pop("sidecar")
    for name, outcome in r.items():
        assert str(outcome).startswith("NetworkDeniedError: refused"), (name, outcome)
        assert "AP_NO_NETWORK=1" in str(outcome)
    assert isinstance(sidecar, list)
    for code, text in sidecar:
        assert code == 1 and "Traceback" not in text, text
        assert "offline" in text and "sk-secret-key" not in text
