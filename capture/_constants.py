"""Names and numbers shared by every capture module (file names, versions, timings).

Config defaults (window title, fps, ...) live in the schema alone (``aiconfig.CaptureConfig``).
"""

from __future__ import annotations

from typing import Final

# File names, versions and statuses belong to the session format (aiconfig.sessions), which the
# recorder writes through; they are re-exported here for the capture modules.
from aiconfig.sessions import (
    AUDIO_FILE,
    EVENTS_FILE,
    EVENTS_JOURNAL,
    FORMAT_VERSION,
    FRAMES_FILE,
    MANIFEST_FILE,
    MANIFEST_SCHEMA_VERSION,
    METADATA_FILE,
    STATUS_COMPLETE,
    STATUS_FAILED,
    STATUS_RECORDING,
    STATUS_RECOVERED,
    WEBCAM_FILE,
)

__all__ = [
    "AUDIO_FILE",
    "AUDIO_SILENCE_FAIL_S",
    "ENCODER_NICE",
    "EVENTS_FILE",
    "EVENTS_JOURNAL",
    "FORMAT_VERSION",
    "FRAMES_FILE",
    "FRAME_QUEUE",
    "GEOMETRY_POLL_S",
    "JOURNAL_FLUSH_S",
    "MANIFEST_FILE",
    "MANIFEST_SCHEMA_VERSION",
    "METADATA_FILE",
    "STATUS_COMPLETE",
    "STATUS_FAILED",
    "STATUS_RECORDING",
    "STATUS_RECOVERED",
    "WEBCAM_FILE",
]

JOURNAL_FLUSH_S: Final = 0.5
"""How often buffered events are appended to the journal (bounds what a SIGKILL loses)."""

GEOMETRY_POLL_S: Final = 0.1
"""How often the grabber re-reads which window has focus (geometry is read every frame)."""

AUDIO_SILENCE_FAIL_S: Final = 2.0
"""An audio stream that delivers nothing for this long is marked failed (device gone)."""

ENCODER_NICE: Final = 5
"""Nice value of the convert/encode threads: the game and the input timestamps come first."""

MP4_MOVFLAGS: Final = "frag_keyframe+empty_moov+default_base_moof"

FRAME_QUEUE: Final = 4
"""Frames held between grab, convert and encode (each queue); fewer under a memory budget."""
