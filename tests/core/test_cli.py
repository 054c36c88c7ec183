"""The CLI as users run it: real processes, exit codes, one line per problem, no tracebacks."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from aiconfig.cli import main
from tests.conftest import MINIMAL, REPO, Writer

BASELINE = REPO / "experiments" / "baseline.yaml"


def _cap_memory() -> None:
    # Hostile inputs must be refused within modest memory: 768 MiB of address space.
    resource.setrlimit(resource.RLIMIT_AS, (768 << 20, 768 << 20))


def run_cli(
    *args: str, env: dict[str, str] | None = None, capped: bool = False
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "aiconfig", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=full_env,
        cwd=REPO,
        preexec_fn=_cap_memory if capped else None,
    )


def test_validate_signed_baseline() -> None:
    proc = run_cli("validate", str(BASELINE))
    assert proc.returncode == 0, proc.stderr
    assert "lol-bc-baseline v1" in proc.stdout
    assert "lead@aiconfig.dev" in proc.stdout


def test_validate_json(write_config: Writer) -> None:
    bad = write_config(MINIMAL + "capture:\n  fps: -3\n")
    proc = run_cli("validate", "--json", "--allow-unsigned", str(BASELINE), str(bad))
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["valid"] is False
    assert report["files"][0]["valid"] is True
    problem = report["files"][1]["problems"][0]
    assert problem["path"] == "capture.fps" and problem["line"] == 5
    assert report["files"][1]["error"] == "ConfigValidationError"


HOSTILE = {
    "bomb.yaml": b'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    + b"".join(
        f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]\n".encode()
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    ),
    "dup.yaml": MINIMAL.encode() + b"meta:\n  name: x\n",
    "tag.yaml": MINIMAL.encode() + b"model: !!python/object/apply:os.system ['true']\n",
    "types.yaml": MINIMAL.encode() + b"training:\n  epochs: many\n",
    "typo.yaml": MINIMAL.encode() + b"trainig: {}\n",
    "env.yaml": MINIMAL.encode() + b"model:\n  name: ${oc.env:SURELY_UNSET_VAR}\n",
    "junk.yaml": bytes(range(256)) * 4,
    "empty.yaml": b"",
    "list.yaml": b"- 1\n",
    "deep.yaml": b"a: " + b"[" * 100000 + b"]" * 100000,
    "utf16.yaml": MINIMAL.encode("utf-16"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_exit_1_with_one_line(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(HOSTILE[name])
    proc = run_cli("validate", "--allow-unsigned", str(path), capped=True)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert str(path) in errors[0]


def test_unsigned_config_refused_in_strict_mode(write_config: Writer) -> None:
    path = write_config(MINIMAL)
    proc = run_cli("validate", str(path), env={"AICONFIG_KEYS": str(REPO / "keys")})
    assert proc.returncode == 1
    assert "not signed" in proc.stderr and "aiconfig sign" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_allow_unsigned_warns_loudly(write_config: Writer) -> None:
    proc = run_cli("validate", "--allow-unsigned", str(write_config(MINIMAL)))
    assert proc.returncode == 0
    assert "WARNING" in proc.stderr and "signature verification is OFF" in proc.stderr


def test_show_formats(write_config: Writer) -> None:
    path = write_config(MINIMAL + "monitoring:\n  otlp_token: ${oc.env:TOK}\n")
    env = {"TOK": "s3cr3t-value"}
    raw = run_cli("show", "--allow-unsigned", str(path), env=env)
    assert raw.returncode == 0
    assert "otlp_token: '**********'" in raw.stdout
    assert "capture" not in raw.stdout  # as written: no defaults
    resolved = run_cli(
        "show", "--allow-unsigned", "--resolved", "--format", "json", str(path), env=env
    )
    data = json.loads(resolved.stdout)
    assert data["capture"]["fps"] == 30
    assert data["monitoring"]["otlp_token"] == "**********"  # noqa: S105 - the redaction mask
    assert "s3cr3t" not in raw.stdout + resolved.stdout + resolved.stderr


def test_show_signed_baseline_resolved_yaml() -> None:
    proc = run_cli("show", "--resolved", str(BASELINE), env={"NUM_WORKERS": "2"})
    assert proc.returncode == 0, proc.stderr
    assert "num_workers: 2" in proc.stdout


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["validate"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_version_and_help() -> None:
    assert "aiconfig 0.1.0" in run_cli("--version").stdout
    for cmd in ("validate", "show", "keygen", "sign", "verify"):
        proc = run_cli(cmd, "--help")
        assert proc.returncode == 0 and "usage:" in proc.stdout


def test_console_script_installed() -> None:
    proc = subprocess.run(["aiconfig", "--version"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout.startswith("aiconfig ")
