"""Recorded capture sessions: the format, reading, the one validator, and a catalog.

The format (file names, the seed's event schema, metadata fields, ``format_version``) is stated
once in :mod:`._format`; the recorder writes through it and everything else reads through it.
Importing this package costs nothing heavy: pyarrow, PyAV, DuckDB and matplotlib load inside the
functions that need them. Public API::

    from aiconfig.sessions import open_session, validate_session, Catalog
    s = open_session("sessions/session_20261201_093000")
    s.fps, s.frame_count, s.video_path, s.keyframe_interval, s.window
    table = s.events()                       # pyarrow.Table, exactly event_schema()
    check = validate_session(s.path)         # check.problems == [] when valid
    cat = Catalog("sessions")                # every session below a root
    cat.index()                              # ROOT/sessions.parquet, incrementally
    cat.query("SELECT session_id, fps FROM sessions")   # DuckDB, a pyarrow.Table
    ds = SessionDataset.from_config(cfg, split="train")  # torch (imported then), see _dataset
    export_lerobot(["sessions"], "out", cfg=cfg)         # LeRobot v3 layout, see _lerobot
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._actions import ActionSpec, FrameActions, bin_actions
    from ._catalog import Catalog, SessionRow
    from ._dataset import SessionClipDataset, SessionDataset, split_of
    from ._format import (
        ACTION_EVENT_TYPES,
        AUDIO_FILE,
        EVENT_COLUMNS,
        EVENTS_FILE,
        EVENTS_JOURNAL,
        FORMAT_VERSION,
        FRAMES_FILE,
        INPUT_EVENT_TYPES,
        MANIFEST_FILE,
        MANIFEST_SCHEMA_VERSION,
        METADATA_FIELDS,
        METADATA_FILE,
        STATUS_COMPLETE,
        STATUS_FAILED,
        STATUS_RECORDING,
        STATUS_RECOVERED,
        WEBCAM_FILE,
        event_schema,
    )
    from ._lerobot import export_lerobot
    from ._manifest import build_manifest
    from ._report import write_report
    from ._session import Session, WindowGeometry, open_session, refuse_symlinked_members
    from ._validate import SessionCheck, validate_session
    from ._video import VideoInfo, probe_video

__all__ = [
    "ACTION_EVENT_TYPES",
    "AUDIO_FILE",
    "EVENTS_FILE",
    "EVENTS_JOURNAL",
    "EVENT_COLUMNS",
    "FORMAT_VERSION",
    "FRAMES_FILE",
    "INPUT_EVENT_TYPES",
    "MANIFEST_FILE",
    "MANIFEST_SCHEMA_VERSION",
    "METADATA_FIELDS",
    "METADATA_FILE",
    "STATUS_COMPLETE",
    "STATUS_FAILED",
    "STATUS_RECORDING",
    "STATUS_RECOVERED",
    "WEBCAM_FILE",
    "ActionSpec",
    "Catalog",
    "FrameActions",
    "Session",
    "SessionCheck",
    "SessionClipDataset",
    "SessionDataset",
    "SessionRow",
    "VideoInfo",
    "WindowGeometry",
    "bin_actions",
    "build_manifest",
    "event_schema",
    "export_lerobot",
    "open_session",
    "probe_video",
    "refuse_symlinked_members",
    "split_of",
    "validate_session",
    "write_report",
]

_WHERE = {
    "ActionSpec": "_actions",
    "FrameActions": "_actions",
    "bin_actions": "_actions",
    "SessionClipDataset": "_dataset",
    "SessionDataset": "_dataset",
    "split_of": "_dataset",
    "export_lerobot": "_lerobot",
    "Catalog": "_catalog",
    "SessionRow": "_catalog",
    "build_manifest": "_manifest",
    "write_report": "_report",
    "Session": "_session",
    "WindowGeometry": "_session",
    "open_session": "_session",
    "refuse_symlinked_members": "_session",
    "SessionCheck": "_validate",
    "validate_session": "_validate",
    "VideoInfo": "_video",
    "probe_video": "_video",
}


def __getattr__(name: str) -> Any:
    if name in __all__:
        value = getattr(importlib.import_module(f".{_WHERE.get(name, '_format')}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aiconfig.sessions' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
