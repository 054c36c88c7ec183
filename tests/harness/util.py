"""Helpers for the harness tests: child environments and CLI runs in real subprocesses."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable
# An address the private-network tests put on their namespace's ``lo``: not loopback by the
# offline rules, yet reachable there, so an attempt that leaks is seen.
OUTSIDE = "10.77.0.1"


def _private_network_available() -> bool:
    """``unshare -n -m`` works here (root) and ``ip`` can set up the namespace's ``lo``."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    setup = f"ip link set lo up && ip addr add {OUTSIDE}/32 dev lo"
    cmd = ["unshare", "-n", "-m", "sh", "-c", setup]
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


needs_private_network = pytest.mark.skipif(
    not _private_network_available(),
    reason="needs `unshare -n -m` (root): non-loopback attempts run only in a private namespace",
)


def child_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The test process's environment without AP_*/HYPERVISOR_* and with this checkout first.

    TMPDIR points at an empty ``systmp`` directory so a test can prove nothing was written to
    the "global" temp dir; bytecode caches go under ``tmp`` too.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AP_", "HYPERVISOR_"))}
    env["PYTHONPATH"] = str(REPO)
    systmp = tmp / "systmp"
    systmp.mkdir(exist_ok=True)
    env["TMPDIR"] = str(systmp)
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    env.update(extra)
    return env


def run_cli(
    args: Sequence[str],
    *,
    env: dict[str, str],
    cwd: Path,
    prefix: Sequence[str] = (),
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, PY, "-m", "aiconfig", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _record_line(root: Path, rel: str) -> str:
    data = (root / rel).read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{rel},sha256={digest},{len(data)}"


def install_dist(
    site: Path,
    dist: str,
    version: str,
    files: Mapping[str, str],
    entry_points: Mapping[str, str],
    group: str = "aiconfig.plugins",
) -> Path:
    """Install a distribution into ``site`` as pip would: its files plus a dist-info with a
    RECORD; ``entry_points`` maps plugin names to ``module:object``. Returns the dist-info."""
    site.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    eps = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{group}]\n{eps}")
    (info / "INSTALLER").write_text("pip\n")
    meta = [f"{info.name}/{n}" for n in ("METADATA", "entry_points.txt", "INSTALLER")]
    lines = [_record_line(site, f) for f in [*files, *meta]] + [f"{info.name}/RECORD,,"]
    (info / "RECORD").write_text("\n".join(lines) + "\n")
    return info


def pin_plugins(tmp: Path, env: dict[str, str], dist: str, allow: Sequence[str]) -> None:
    """Pin ``dist`` as installed now (``aiconfig plugins lock``) and allowlist ``allow``: sets
    ``AP_PLUGIN_LOCK`` and ``AP_PLUGINS_ALLOWLIST`` in ``env`` (files under ``tmp``)."""
    lock = run_cli(["plugins", "lock", dist], env=env, cwd=tmp)
    assert lock.returncode == 0, lock.stderr
    (tmp / "plugins.lock").write_text(lock.stdout)
    (tmp / "allow.txt").write_text("".join(f"{name}\n" for name in allow))
    env["AP_PLUGIN_LOCK"] = str(tmp / "plugins.lock")
    env["AP_PLUGINS_ALLOWLIST"] = str(tmp / "allow.txt")


def write_sessions_manifest(path: Path, sessions: Sequence[str | Path]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"sessions": [str(s) for s in sessions]}))
    return path


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


CHILD_RUN = """
import json, os, sys, time
from aiconfig.harness import RunContext, Terminated
devices = tuple(d for d in os.environ.get("TEST_DEVICES", "").split(",") if d)
try:
    with RunContext.from_env(os.environ.get("TEST_JOB", "capture"), devices=devices) as run:
        (run.out_dir / "payload.bin").write_bytes(b"x" * 1000)
        run.mark_ready()
        print("ready", flush=True)
        time.sleep(float(os.environ.get("TEST_SLEEP", "60")))
except Terminated:
    sys.exit(143)
"""
"""A child job: takes its settings from AP_* variables, becomes ready, then sleeps."""


def start_child(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """Start :data:`CHILD_RUN` and wait until it prints ``ready``."""
    proc = subprocess.Popen(
        [PY, "-c", CHILD_RUN],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"child did not become ready: {line!r} {err}")
    return proc


def finish(proc: subprocess.Popen[str], sig: int | None = None, timeout: float = 20) -> int:
    """Send ``sig`` (if any), wait, close the pipes; return the exit status."""
    if sig is not None:
        proc.send_signal(sig)
    proc.communicate(timeout=timeout)
    return proc.returncode
