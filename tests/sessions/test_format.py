"""The session format module: one schema, cheap import, the reading API, format versions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aiconfig import SessionError, sessions
from aiconfig.sessions import open_session, validate_session
from tests.conftest import REPO

from .conftest import Recorded, session_dirs
from .recording import WINDOW

pytestmark = [pytest.mark.x11, pytest.mark.audio, pytest.mark.slow]


def test_public_names_are_all_and_resolve() -> None:
    assert sorted(dir(sessions)) == sorted(sessions.__all__)
    for name in sessions.__all__:
        assert getattr(sessions, name) is not None
    with pytest.raises(AttributeError):
        _ = sessions.no_such_name


def test_format_module_imports_nothing_heavy() -> None:
    code = (
        "import sys\nimport aiconfig.sessions as s\n"
        "from aiconfig.sessions import EVENT_COLUMNS, FORMAT_VERSION, METADATA_FIELDS\n"
        "from aiconfig.sessions import open_session, validate_session, Catalog\n"
        "heavy = [m for m in ('pyarrow', 'numpy', 'av', 'duckdb', 'matplotlib', 'capture',"
        " 'pydantic', 'yaml') if m in sys.modules]\nprint(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_reading_api_on_a_recorded_session(recorded: Recorded) -> None:
    root, injected = recorded
    played = session_dirs(root / "played")[0]
    s = open_session(played)
    meta = json.loads((played / "metadata.json").read_text())
    assert s.id == played.name == meta["session_id"]
    assert s.status == "complete" and s.format_version == "1.0.0"
    assert s.fps == 30.0 and s.frame_count == meta["frame_count"] == 90
    assert s.resolution == (WINDOW[2], WINDOW[3])
    assert s.keyframe_interval == 30  # one keyframe a second at 30 fps
    assert s.window.title == "League of Legends" and s.window.rect == WINDOW
    assert s.video_path == played / "frames.mp4" and s.audio_path == played / "audio.wav"
    assert s.webcam_path is None
    streams = {"screen": "complete", "input": "complete", "audio": "complete", "webcam": "off"}
    assert streams.items() <= s.streams.items()  # plus any plugin stream (e.g. game state)
    table = s.events()
    assert table.schema.equals(sessions.event_schema(), check_metadata=False)
    batches = list(s.iter_events(columns=["t_ns", "frame_ref"], batch_size=50))
    assert sum(b.num_rows for b in batches) == table.num_rows and len(batches) > 1
    assert s.frames().num_rows == 90
    inputs = s.inputs()
    kinds = inputs["event_type"].to_pylist()
    assert kinds.count("key_press") == injected["key_press"]
    assert kinds.count("mouse_press") == injected["mouse_press"]
    refs = inputs["frame_ref"].to_pylist()
    assert all(0 <= r < 90 for r in refs) and refs == sorted(refs)


def _with_version(root: Path, version: str) -> Path:
    played = session_dirs(root / "played")[0]
    meta = json.loads((played / "metadata.json").read_text())
    meta["format_version"] = version
    (played / "metadata.json").write_text(json.dumps(meta))
    return played


@pytest.mark.parametrize(
    ("version", "words"),
    [("2.0.0", "newer than this aiconfig reads (1.x); upgrade aiconfig"),
     ("0.9.0", "older than this aiconfig reads (1.x)"),
     ("one", "not a version like '1.0.0'")],
)  # fmt: skip
def test_other_format_versions_are_refused_naming_them(
    sessions_root: Path, version: str, words: str
) -> None:
    played = _with_version(sessions_root, version)
    with pytest.raises(SessionError) as info:
        open_session(played)
    text = str(info.value)
    assert words in text and "metadata.json" in text and "format_version" in text
    if version != "one":
        assert version in text
    problems = validate_session(played).problems
    assert len(problems) == 1 and words in problems[0]


def test_a_newer_minor_version_is_read(sessions_root: Path) -> None:
    played = _with_version(sessions_root, "1.4.0")
    assert open_session(played).version == (1, 4, 0)


def test_missing_session_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SessionError, match="not a session directory"):
        open_session(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SessionError, match=r"metadata\.json is missing"):
        open_session(tmp_path / "empty")


def test_the_recorder_writes_the_one_event_schema() -> None:
    """One definition: what the recorder writes is the reader's schema object itself (the
    columns' match with the seed is held by tests/capture/test_capture_units.py)."""
    from capture._events import COLUMNS, event_schema

    assert COLUMNS is sessions.EVENT_COLUMNS
    assert event_schema() is sessions.event_schema() is sessions.event_schema()
    assert [(f.name, str(f.type)) for f in sessions.event_schema()] == [
        (name, {"bool": "bool", "float32": "float"}.get(kind, kind))
        for name, kind in sessions.EVENT_COLUMNS
    ]
