"""The session format, stated once: file names, the event schema, metadata fields, versions.

A session directory ``session_YYYYMMDD_HHMMSS/`` holds (System 0 seed, "Storage Structure")::

    frames.mp4       screen video: H.264, PTS = frame index (time base 1/fps), no B-frames
    webcam.mp4       optional webcam video, same rules at its own fps
    audio.wav        optional system audio (PCM WAV)
    events.parquet   the unified event stream, exactly :data:`EVENT_COLUMNS`
    metadata.json    :data:`METADATA_FIELDS` (the seed's) plus the recorder's extra keys
    manifest.json    written last: artifacts with sha256, ``schema_version``, ``status``

The recorder (``capture``) writes through these names and :func:`event_schema`; every reader
(the pipeline, the catalog, the dataset) reads through them. This module imports nothing heavy:
pyarrow is imported inside :func:`event_schema` only.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any, Final

from .._errors import SessionError

__all__ = [
    "AUDIO_FILE",
    "EVENTS_FILE",
    "EVENTS_JOURNAL",
    "EVENT_COLUMNS",
    "FORMAT_VERSION",
    "FRAMES_FILE",
    "MANIFEST_FILE",
    "MANIFEST_KIND",
    "MANIFEST_SCHEMA_VERSION",
    "METADATA_FIELDS",
    "METADATA_FILE",
    "READABLE_FORMAT_MAJORS",
    "RUN_MANIFEST_SCHEMA",
    "SESSION_DIR_PATTERN",
    "STATUS_COMPLETE",
    "STATUS_FAILED",
    "STATUS_RECORDING",
    "STATUS_RECOVERED",
    "WEBCAM_FILE",
    "check_format_version",
    "event_schema",
    "row_meta",
]

FORMAT_VERSION: Final = "1.0.0"
"""``metadata.json`` ``format_version`` written by this recorder (semantic version)."""

READABLE_FORMAT_MAJORS: Final = frozenset({1})
"""Major versions this reader understands. A newer minor of a known major is read (its extra
keys ignored); any other major is refused, naming the version."""

MANIFEST_SCHEMA_VERSION: Final = "1.0.0"
"""``schema_version`` of a session's own ``manifest.json`` (``kind: capture_session``)."""
MANIFEST_KIND: Final = "capture_session"
RUN_MANIFEST_SCHEMA: Final = "aiconfig.run-manifest/1"
"""A session directory that is also a run's output directory holds a run manifest instead;
both are read (same ``artifacts[].path``/``sha256``)."""

FRAMES_FILE: Final = "frames.mp4"
WEBCAM_FILE: Final = "webcam.mp4"
AUDIO_FILE: Final = "audio.wav"
EVENTS_FILE: Final = "events.parquet"
METADATA_FILE: Final = "metadata.json"
MANIFEST_FILE: Final = "manifest.json"
EVENTS_JOURNAL: Final = "events.journal.arrows"
"""Arrow IPC stream the recorder appends to while recording; merged into events.parquet."""

SESSION_DIR_PATTERN: Final = re.compile(r"^session_\d{8}_\d{6}(_\d+)?$")

STATUS_RECORDING: Final = "recording"
STATUS_COMPLETE: Final = "complete"
STATUS_RECOVERED: Final = "recovered"
STATUS_FAILED: Final = "failed"
"""A write failed (a full disk): the recorder stopped every stream and kept what was written;
``metadata.json`` ``failure`` says why and when. ``capture recover`` makes it a session."""

EVENT_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("t_ns", "int64"),
    ("t_capture_ns", "int64"),
    ("is_duplicate", "bool"),
    ("event_type", "string"),
    ("stream", "string"),
    ("key_code", "int32"),
    ("mouse_x", "float32"),
    ("mouse_y", "float32"),
    ("mouse_button", "string"),
    ("delta", "float32"),
    ("frame_ref", "int32"),
    ("window_id", "string"),
    ("session_id", "string"),
    ("metadata", "string"),
)
"""The seed's ``event_schema``: column names and types, in order (every column nullable).

Rows: ``event_type="frame"`` with ``stream`` ``screen``/``webcam`` (``t_ns`` presentation time,
``t_capture_ns`` grab time, ``frame_ref`` the frame's own index, ``is_duplicate`` for a padded or
dropped repeat, ``metadata`` ``{"duplicate": "padded"|"dropped"}``); input rows ``stream="input"``
(``frame_ref`` the frame on screen at ``t_ns``, coordinates relative to the captured window)."""

INPUT_EVENT_TYPES: Final = (
    "key_press",
    "key_release",
    "mouse_move",
    "mouse_press",
    "mouse_release",
    "mouse_scroll",
)
"""The ``event_type`` of every input row the recorder writes (``stream="input"``)."""

ACTION_EVENT_TYPES: Final = ("key_press", "mouse_press", "mouse_scroll")
"""The input event types that are a player's action (a press or a scroll; a release or a move
is not): what the pipeline counts in ``actions`` unless its template says otherwise."""

METADATA_FIELDS: Final[dict[str, tuple[type, ...]]] = {
    "format_version": (str,),
    "session_id": (str,),
    "fps": (int, float),
    "dropped_frames": (int,),
    "padded_frames": (int,),
    "actual_fps": (int, float),
    "capture_fps": (int, float),
    "screen_resolution": (list,),
    "window_id": (str,),
    "start_t_ns": (int,),
    "end_t_ns": (int,),
    "duration_s": (int, float),
}
"""The seed's required ``metadata.json`` fields and their JSON types. Optional seed fields:
``webcam_info``, ``audio_info``, ``validation``, ``trajectories``. The recorder adds ``status``,
``frame_count``, ``event_counts``, ``start_monotonic_ns``, ``streams``, ``window``, ``video``,
``input``, ``run_id``, ``provenance`` (and ``recovery`` after ``capture recover``)."""

_ARROW_TYPES = ("int64", "int32", "bool", "string", "float32")


@functools.cache
def event_schema() -> Any:
    """:data:`EVENT_COLUMNS` as a ``pyarrow.Schema`` (imports pyarrow)."""
    import pyarrow as pa

    types = {
        "int64": pa.int64(),
        "int32": pa.int32(),
        "bool": pa.bool_(),
        "string": pa.string(),
        "float32": pa.float32(),
    }
    return pa.schema([pa.field(name, types[kind]) for name, kind in EVENT_COLUMNS])


_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def check_format_version(value: object, *, file: str) -> tuple[int, int, int]:
    """The parsed ``format_version``; :class:`SessionError` naming it when it cannot be read."""
    if not isinstance(value, str) or not (m := _SEMVER.match(value)):
        raise SessionError(
            "format_version is missing or not a version like '1.0.0'",
            file=file,
            path="format_version",
            got=repr(value),
            hint="not a session written by this recorder",
        )
    version = (int(m[1]), int(m[2]), int(m[3]))
    newest = max(READABLE_FORMAT_MAJORS)
    if version[0] > newest:
        raise SessionError(
            f"format_version {value} is newer than this aiconfig reads ({newest}.x)",
            file=file,
            path="format_version",
            hint="upgrade aiconfig to read this session",
        )
    if version[0] not in READABLE_FORMAT_MAJORS:
        raise SessionError(
            f"format_version {value} is older than this aiconfig reads "
            f"({min(READABLE_FORMAT_MAJORS)}.x)",
            file=file,
            path="format_version",
            hint="read it with the aiconfig release that recorded it, or record it again",
        )
    return version


def row_meta(value: Any) -> dict[str, Any]:
    """An event row's ``metadata`` column as a dict: ``{}`` for a null, for text that is not
    JSON and for JSON that is not an object (the column is free-form; readers never raise)."""
    if not value:
        return {}
    try:
        doc = json.loads(value)
    except (TypeError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}
