"""Names and numbers shared by every capture module (file names, versions, timings).

Config defaults (window title, fps, ...) live in the schema alone (``aiconfig.CaptureConfig``).
"""

from __future__ import annotations

from typing import Final

FORMAT_VERSION: Final = "1.0.0"
"""``metadata.json`` format version (the seed's ``format_version``)."""

MANIFEST_SCHEMA_VERSION: Final = "1.0.0"
"""``manifest.json`` schema version."""

FRAMES_FILE: Final = "frames.mp4"
WEBCAM_FILE: Final = "webcam.mp4"
AUDIO_FILE: Final = "audio.wav"
EVENTS_FILE: Final = "events.parquet"
METADATA_FILE: Final = "metadata.json"
MANIFEST_FILE: Final = "manifest.json"
EVENTS_JOURNAL: Final = "events.journal.arrows"
"""Arrow IPC stream appended about twice a second while recording; merged into events.parquet."""

STATUS_RECORDING: Final = "recording"
STATUS_COMPLETE: Final = "complete"
STATUS_RECOVERED: Final = "recovered"

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
