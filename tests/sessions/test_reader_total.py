"""The session reader never raises anything but SessionError on a damaged session (found by
the session fuzz targets): wrong-typed metadata fields read as unknown, and an events file of
another schema is refused by name instead of failing inside pyarrow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aiconfig import SessionError
from aiconfig.sessions import open_session, validate_session
from aiconfig.sessions._catalog import read_row
from aiconfig.sessions._format import row_meta
from aiconfig.sessions._report import render_session

SEED = Path(__file__).resolve().parents[1] / "fuzz" / "corpus" / "_session"


@pytest.fixture
def session(tmp_path: Path) -> Path:
    path: Path = tmp_path / str(json.loads((SEED / "metadata.json").read_text())["session_id"])
    shutil.copytree(SEED, path)
    return path


def test_the_seed_session_reads(session: Path) -> None:
    s = open_session(session)
    assert s.fps == 10 and s.resolution == (1280, 720) and s.frame_count == 10
    assert validate_session(session).problems == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("fps", "thirty"),
        ("duration_s", [1]),
        ("screen_resolution", 7),
        ("screen_resolution", ["a", "b"]),
        ("window", 3),
        ("window", {"initial_rect": [1, 2, "x", 4], "moves": 5, "title": 9}),
        ("video", "gop"),
        ("streams", ["screen"]),
        ("streams", {"screen": {"status": "complete", "errors": 3}}),
        ("start_t_ns", True),
        ("provenance", {"path": 5, "name": ["x"], "signers": "lead", "lineage": 7}),
    ],
)
def test_wrong_typed_metadata_reads_as_unknown(session: Path, field: str, value: object) -> None:
    meta = json.loads((session / "metadata.json").read_text())
    meta[field] = value
    (session / "metadata.json").write_text(json.dumps(meta))
    s = open_session(session)
    for name in ("fps", "duration_s", "resolution", "start_t_ns", "keyframe_interval"):
        getattr(s, name)
    assert s.window.title is None or isinstance(s.window.title, str)
    assert isinstance(s.streams, dict)
    # The validator is what names the problem.
    assert validate_session(session).problems or field in (
        "window",
        "video",
        "streams",
        "provenance",
    )
    # Nor does anything that reads metadata for people: the catalog row and the report.
    row = read_row(session, session.parent)
    assert row["session_id"] == s.id and isinstance(row["duration_s"], float)
    assert row["config_path"] is None or isinstance(row["config_path"], str)
    assert "<html" in render_session(session)


@pytest.mark.parametrize("metadata", ["padded", "[1]", "7", "null", '{"key": 5}'])
def test_free_form_row_metadata_never_raises(session: Path, metadata: str) -> None:
    """The metadata column of an event row is free-form text: the report's plots and the
    action binning read what is an object and ignore the rest."""
    table = pq.read_table(session / "events.parquet")
    n = table.num_rows
    table = table.set_column(
        table.column_names.index("metadata"), "metadata", pa.array([metadata] * n, pa.string())
    )
    pq.write_table(table, session / "events.parquet")
    assert row_meta(metadata) == ({"key": 5} if metadata.startswith("{") else {})
    assert "<html" in render_session(session)


def test_events_of_another_schema_are_refused_by_name(session: Path) -> None:
    table = pq.read_table(session / "events.parquet")
    pq.write_table(
        table.rename_columns(
            ["secsion_id" if c == "session_id" else c for c in table.column_names]
        ),
        session / "events.parquet",
    )
    with pytest.raises(SessionError, match="schema differs from the contract: session_id"):
        open_session(session).events()
