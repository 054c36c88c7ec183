"""Fast checks with no X server: timeline maths, the event contract, journal, session dirs,
errors, and the config-driven command's override rules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from aiconfig import CaptureDeviceError, ConfigValidationError
from capture._events import COLUMNS, EventJournal, InputEvent, event_schema, frame_row, read_journal
from capture._input_logging import key_fields
from capture._recording import create_session_dir
from capture._timeline import ClockMapping, FrameClock
from capture._validate import validate_session
from capture.windows import Rect, check_display
from tests.capture.capture_helpers import REPO, run_env

SEED_SCHEMA = {
    "t_ns": "int64",
    "t_capture_ns": "int64",
    "is_duplicate": "bool",
    "event_type": "string",
    "stream": "string",
    "key_code": "int32",
    "mouse_x": "float32",
    "mouse_y": "float32",
    "mouse_button": "string",
    "delta": "float32",
    "frame_ref": "int32",
    "window_id": "string",
    "session_id": "string",
    "metadata": "string",
}


def test_schema_is_exactly_the_seed() -> None:
    assert dict(COLUMNS) == SEED_SCHEMA
    assert list(dict(COLUMNS)) == list(SEED_SCHEMA)
    arrow = {
        "int64": pa.int64(),
        "int32": pa.int32(),
        "bool": pa.bool_(),
        "string": pa.string(),
        "float32": pa.float32(),
    }
    schema = event_schema()
    assert [(f.name, f.type) for f in schema] == [(k, arrow[v]) for k, v in SEED_SCHEMA.items()]


@pytest.mark.parametrize("fps", [1, 24, 30, 60, 144])
def test_frame_clock_round_trips(fps: int) -> None:
    clock = FrameClock(t0_ns=123_456_789, fps=fps)
    for i in range(0, 5 * fps):
        t = clock.t_ns(i)
        assert clock.index_at(t) == i
        assert clock.index_at(clock.t_ns(i + 1) - 1) == i
    assert clock.index_at(clock.t0_ns - 1) == -1


def test_clock_mapping() -> None:
    m = ClockMapping.now()
    assert m.uncertainty_ns >= 0
    assert m.to_wall(m.monotonic_ns + 5) == m.wall_ns + 5
    assert m.to_dict()["clock"] == "CLOCK_MONOTONIC"


def test_journal_survives_a_torn_tail(tmp_path: Path) -> None:
    journal = EventJournal(tmp_path / "j.arrows")
    journal.add(frame_row(0, 10, 9, False, stream="screen", window_id="w", session_id="s"))
    journal.add(
        InputEvent(
            t_ns=11, event_type="key_press", key_code=97, frame_ref=0, metadata={"key": "a"}
        ).row()
    )
    journal.flush()
    journal.add(
        frame_row(
            1, 20, 19, True, stream="screen", window_id="w", session_id="s", duplicate_of="padded"
        )
    )
    journal.flush()
    journal.close()
    data = (tmp_path / "j.arrows").read_bytes()
    (tmp_path / "torn.arrows").write_bytes(data[: len(data) - 40])
    table, truncated = read_journal(tmp_path / "j.arrows")
    assert table.num_rows == 3 and not truncated
    assert table.column("metadata").to_pylist()[1] == '{"key": "a"}'
    torn, truncated = read_journal(tmp_path / "torn.arrows")
    assert torn.num_rows == 2 and truncated


def test_session_dirs_never_collide(tmp_path: Path) -> None:
    now = 1_700_000_000.0
    first = create_session_dir(tmp_path, now)
    second = create_session_dir(tmp_path, now)
    assert first.name.startswith("session_") and len(first.name) == len("session_YYYYMMDD_HHMMSS")
    assert second.name == first.name + "_2"


def test_rect_clamps_into_screen() -> None:
    screen = Rect(0, 0, 1920, 1080)
    assert Rect(1800, -20, 400, 300).clamp_into(screen) == Rect(1520, 0, 400, 300)
    assert Rect(10, 10, 100, 100).clamp_into(screen) == Rect(10, 10, 100, 100)


def test_key_fields() -> None:
    from types import SimpleNamespace

    char = SimpleNamespace(vk=97, char="a")
    assert key_fields(char) == (97, {"key": "a"})
    special = SimpleNamespace(value=SimpleNamespace(vk=65307), name="esc")
    assert key_fields(special) == (65307, {"key": "Key.esc"})


def test_display_problems_are_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    with pytest.raises(CaptureDeviceError, match="Wayland"):
        check_display()
    monkeypatch.delenv("WAYLAND_DISPLAY")
    with pytest.raises(CaptureDeviceError, match="Xvfb"):
        check_display()
    from capture.platforms import platform_name

    # The other platforms have backends of their own now (tests/capture/test_platforms_*.py).
    assert [platform_name(p) for p in ("linux", "win32", "darwin", "freebsd14")] == [
        "x11",
        "win32",
        "darwin",
        "x11",
    ]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        env=env or run_env(),
        cwd=REPO,
        check=False,
    )


def test_cli_without_display_is_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in run_env().items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = _cli("capture", "--duration", "1", "--out", str(tmp_path), env=env)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "DISPLAY" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_usage_errors_exit_2() -> None:
    proc = _cli("capture", "--fps", "fast")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = _cli("capture", "--webcam-resolution", "big")
    assert proc.returncode == 2


def test_cli_bad_values_are_one_line(tmp_path: Path) -> None:
    proc = _cli("capture", "--fps", "0", "--out", str(tmp_path))
    assert proc.returncode == 1 and proc.stderr.startswith("error: capture.fps")


def test_validate_reports_reasons(tmp_path: Path) -> None:
    assert validate_session(tmp_path) == [
        "frames.mp4 is missing",
        "events.parquet is missing",
        "metadata.json is missing",
        "manifest.json is missing",
    ]
    proc = _cli("capture", "validate", str(tmp_path))
    assert proc.returncode == 1 and "missing" in proc.stderr
    (tmp_path / "manifest.json").write_text(json.dumps({"status": "recording"}))
    assert "recover" in validate_session(tmp_path)[0]
    proc = _cli("capture", "recover", str(tmp_path))
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1


def test_config_command_refuses_contract_overrides_suggesting_only_what_works() -> None:
    def aiconfig(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "aiconfig", *args],
            capture_output=True, text=True, env=run_env(), cwd=REPO, check=False,
        )  # fmt: skip

    flags = ["--fps", "60", "--preset", "ultrafast", "--webcam-resolution", "1280x720"]
    proc = aiconfig("capture", "--config", "experiments/baseline.yaml", *flags)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 3, lines  # every refused flag at once, one line each
    fps, preset, webcam = lines
    # the baseline locks capture.fps: no fork can change it, so none is suggested
    assert "--fps: capture.fps is locked by the config" in fps and "aiconfig fork" not in fps
    for line, dotted in ((preset, "capture.preset"), (webcam, "capture.webcam.resolution")):
        assert f"{dotted} is set by the reviewed config" in line
        command = line.split("fork it instead: ")[1]
        # the suggested command works as printed (here without writing: --dry-run)
        argv = command.split()[1:]
        argv[argv.index("NAME")] = "suggested"
        done = aiconfig(*argv, "--dry-run")
        assert done.returncode == 0, (command, done.stderr)


def test_config_overrides_rules() -> None:
    from types import SimpleNamespace

    from aiconfig.commands.capture import checked_overrides

    cfg = SimpleNamespace(meta=SimpleNamespace(locked=("capture.webcam",)))
    assert checked_overrides(cfg, {"duration_s": 5.0}, "x.yaml") == {"duration_s": 5.0}
    with pytest.raises(ConfigValidationError, match="locked"):
        checked_overrides(cfg, {"webcam": {"device": 1}}, "x.yaml")
    with pytest.raises(ConfigValidationError, match=r"capture\.allow_any"):
        checked_overrides(cfg, {"allow_any": True}, "x.yaml")


def test_event_time_uses_the_x_server_millisecond_as_an_upper_bound() -> None:
    from capture._input_logging import event_time_ns

    ms = 1_000_000
    now = 5_000 * ms + 2_700_000  # callback ran 2.7 ms into ms 5002
    assert event_time_ns(now, 5_000) == 5_001 * ms - 1  # server saw it in ms 5000
    assert event_time_ns(now, 5_002) == now  # same ms: the callback time is tighter
    assert event_time_ns(now, None) == now
    assert event_time_ns(now, 1) == now  # a server clock that does not fit is ignored
    wrapped = (2**32 + 10) * ms + 300_000
    assert event_time_ns(wrapped, 9) == (2**32 + 10) * ms - 1  # 32-bit wrap, previous ms


def test_cli_start_up_loads_no_heavy_library() -> None:
    """numpy, PyAV, pyarrow and OpenCV must load inside the run, after its budget's thread and
    allocator settings are exported (OpenBLAS and Arrow read them when they load)."""
    probe = (
        "import sys, capture.__main__, aiconfig.commands.capture\n"
        "print(sorted(m for m in ('numpy', 'av', 'pyarrow', 'cv2', 'mss') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=run_env(), check=True
    )
    assert proc.stdout.strip() == "[]"


def test_budget_sizes_the_frame_queues_and_encoder_threads() -> None:
    from aiconfig import BudgetError
    from aiconfig.harness.budget import Budget
    from capture._constants import FRAME_QUEUE
    from capture._recording import _sizes

    uhd = 3840 * 2160 * 4  # one BGRA 4K grab: 33 MB
    assert _sizes(None, uhd) == (FRAME_QUEUE, 0)  # standalone: x264 picks its threads
    assert _sizes(Budget(cpus=2.0, cpu_source="host"), uhd) == (FRAME_QUEUE, 0)
    assert _sizes(Budget(cpus=1.5, mem_limit_mb=4096, cpu_source="AP_CPU_LIMIT"), uhd) == (4, 1)
    # 400 MiB leaves 100 MiB for buffers: 3 frames of 4K, not 4 (degrade, do not fail).
    assert _sizes(Budget(cpus=3.0, mem_limit_mb=400, cpu_source="AP_CPU_LIMIT"), uhd) == (3, 3)
    with pytest.raises(BudgetError, match="AP_MEM_LIMIT_MB"):
        _sizes(Budget(cpus=1.0, mem_limit_mb=200, cpu_source="AP_CPU_LIMIT"), uhd)


def test_recorder_writes_through_the_session_format() -> None:
    import aiconfig.sessions as fmt
    from capture import _constants as constants
    from capture import _events as events

    assert events.event_schema is fmt.event_schema and events.COLUMNS is fmt.EVENT_COLUMNS
    for name in ("FRAMES_FILE", "EVENTS_FILE", "METADATA_FILE", "MANIFEST_FILE", "FORMAT_VERSION"):
        assert getattr(constants, name) == getattr(fmt, name)
