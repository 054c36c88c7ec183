"""The two ways to record, ``python -m capture`` and ``aiconfig capture --config FILE``, accept
the same recording flags and each flag does what its help says in both: ``--check-audio`` tests
the audio source and exits (never records), a failed requested stream is reported at the end
even under ``--quiet``, and ``--strict`` turns it into exit 3."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.capture.capture_helpers import capture_cmd, run_cli, run_env
from tests.conftest import Keyring

pytestmark = [pytest.mark.x11, pytest.mark.slow]

CONFIG = """\
meta:
  name: streams
  version: 1
capture:
  allow_any: true
  duration_s: 1
  preset: ultrafast
  webcam:
    enabled: true
    device: /dev/video99
  audio:
    enabled: true
    device: {audio_device}
  input:
    enabled: false
"""


@pytest.fixture
def signed(keyring: Keyring) -> Iterator[tuple[Keyring, Path]]:
    keyring.add("lead@x")
    cfg = keyring.write(
        "experiments/streams.yaml", CONFIG.format(audio_device="capsink.monitor"), "lead@x"
    )
    yield keyring, cfg


def _aiconfig(keys: Path, cfg: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "aiconfig", "capture", "--config", str(cfg),
            "--keys", str(keys), *args]  # fmt: skip


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=90, check=False
    )


@pytest.mark.audio
def test_check_audio_in_both_entry_points(
    pulse: dict[str, str], signed: tuple[Keyring, Path], tmp_path: Path
) -> None:
    ring, cfg = signed
    env = {**run_env(), "AP_DATA_ROOT": str(tmp_path / "state")}
    plain = _run(capture_cmd("--check-audio"), env, tmp_path)
    via_config = _run(_aiconfig(ring.keys_dir, cfg, "--check-audio"), env, tmp_path)
    for proc in (plain, via_config):
        assert proc.returncode == 0, proc.stderr
        assert "would record 'capsink.monitor'" in proc.stdout
        assert "1 s test: level" in proc.stdout
    # it tested and exited: nothing was recorded anywhere
    assert not list(tmp_path.rglob("session_*")) and not (tmp_path / "sessions").exists()


@pytest.mark.audio
def test_check_audio_uses_the_configs_source(
    pulse: dict[str, str], keyring: Keyring, tmp_path: Path
) -> None:
    keyring.add("lead@x")
    cfg = keyring.write("experiments/x.yaml", CONFIG.format(audio_device="nope"), "lead@x")
    env = {**run_env(), "AP_DATA_ROOT": str(tmp_path / "state")}
    bad = _run(_aiconfig(keyring.keys_dir, cfg, "--check-audio"), env, tmp_path)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1, bad.stderr
    assert "'nope'" in bad.stderr and "module-null-sink" in bad.stderr
    # --audio-device is an operational override the config allows
    ok = _run(
        _aiconfig(keyring.keys_dir, cfg, "--check-audio", "--audio-device", "capsink.monitor"),
        env, tmp_path,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "would record 'capsink.monitor'" in ok.stdout


def _no_sound_server(tmp_path: Path, display: str) -> dict[str, str]:
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {k: v for k, v in run_env().items() if not k.startswith(("PULSE_", "AP_"))}
    return {**env, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(tmp_path), "DISPLAY": display,
            "AP_DATA_ROOT": str(tmp_path / "state")}  # fmt: skip


def _stream_warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning: requested stream")]


def test_failed_streams_are_reported_even_quiet_and_strict_exits_3(
    xvfb: str, signed: tuple[Keyring, Path], tmp_path: Path
) -> None:
    ring, cfg = signed
    env = _no_sound_server(tmp_path, xvfb)
    plain = ["--allow-any", "--duration", "1", "--preset", "ultrafast", "--no-input",
             "--audio", "--webcam", "--webcam-device", "/dev/video99"]  # fmt: skip

    def python_m_capture(out: Path, *extra: str) -> list[str]:
        return capture_cmd(*plain, "--out", str(out), *extra)

    def aiconfig_capture(out: Path, *extra: str) -> list[str]:
        return _aiconfig(ring.keys_dir, cfg, "--out", str(out), *extra)

    entry_points = {"python -m capture": python_m_capture, "aiconfig capture": aiconfig_capture}
    for name, argv in entry_points.items():
        lenient = _run(argv(tmp_path / name / "lenient", "--quiet"), env, tmp_path)
        assert lenient.returncode == 0, (name, lenient.stderr)
        warnings = _stream_warnings(lenient.stderr)
        assert [w.split()[3] for w in warnings] == ["webcam", "audio"], (name, lenient.stderr)
        assert "/dev/video99" in warnings[0] and "PulseAudio" in warnings[1]
        assert lenient.stderr.splitlines()[-3].endswith("failed streams: webcam, audio")

        out = tmp_path / name / "strict"
        strict = _run(argv(out, "--quiet", "--strict"), env, tmp_path)
        assert strict.returncode == 3, (name, strict.stderr)
        assert len(_stream_warnings(strict.stderr)) == 2
        assert strict.stderr.splitlines()[-1].startswith("error: ")
        assert "2 requested stream(s) failed: webcam, audio" in strict.stderr
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["status"] == "failed" and "webcam, audio" in manifest["error"]
        (session,) = out.glob("session_*")  # kept, and valid without the failed streams
        assert run_cli("validate", str(session)).returncode == 0

        logged = _run(argv(tmp_path / name / "json", "--log-json"), env, tmp_path)
        assert logged.returncode == 0, logged.stderr
        events = [json.loads(line) for line in logged.stdout.splitlines()]
        failed = [e["fields"]["stream"] for e in events if e["event"] == "capture.stream_failed"]
        assert failed == ["webcam", "audio"]


def test_both_entry_points_accept_the_same_recording_flags() -> None:
    from aiconfig.cli import build_parser
    from capture.__main__ import build_parser as capture_parser

    def flags(parser: argparse.ArgumentParser) -> set[str]:
        return {o for a in parser._actions for o in a.option_strings}

    subparsers = next(
        a for a in build_parser("capture")._actions if isinstance(a, argparse._SubParsersAction)
    )
    sub = subparsers.choices["capture"]
    missing = flags(capture_parser()) - flags(sub)
    assert not missing, f"aiconfig capture lacks {sorted(missing)}"
