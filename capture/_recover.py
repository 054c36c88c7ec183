"""``capture recover SESSION``: turn a killed session into valid files.

A recorder killed mid-session leaves ``frames.mp4`` as a fragmented MP4 whose last fragment is
cut short, the event journal with a possibly torn last batch, and ``manifest.json`` saying
``recording``. Recovery copies every readable video packet into a clean MP4 (no re-encode),
reads every complete journal batch, drops frame rows and input events past the last readable
frame, and finalizes with ``status: recovered`` and a ``recovery`` block in the metadata that
says what was lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av

from aiconfig import ConfigFileError
from aiconfig._bounded import load_json_capped
from aiconfig._files import atomic_path, atomic_write_json
from aiconfig.sessions import refuse_symlinked_members

from ._audio_recorder import fix_wav_header
from ._constants import (
    AUDIO_FILE,
    FRAMES_FILE,
    MANIFEST_FILE,
    METADATA_FILE,
    MP4_MOVFLAGS,
    STATUS_RECORDING,
    STATUS_RECOVERED,
    WEBCAM_FILE,
)
from ._finalize import finalize_session, write_manifest

__all__ = ["recover_session", "remux_readable"]


def remux_readable(path: Path) -> int:
    """Rewrite ``path`` with only its readable packets; returns how many were kept."""
    kept = 0
    try:
        src: Any = av.open(str(path))
    except (av.error.FFmpegError, OSError):
        return 0  # nothing readable; keep the file as evidence, validation will say so
    with atomic_path(path) as tmp:
        try:
            in_stream = src.streams.video[0]
            dst: Any = av.open(str(tmp), "w", format="mp4", options={"movflags": MP4_MOVFLAGS})
            try:
                out_stream = dst.add_stream_from_template(in_stream)
                try:
                    for packet in src.demux(in_stream):
                        if packet.size == 0 or packet.dts is None:
                            continue
                        packet.stream = out_stream
                        dst.mux(packet)
                        kept += 1
                except (av.error.FFmpegError, OSError):
                    pass  # the torn last fragment
            finally:
                dst.close()
        finally:
            src.close()
    return kept


def recover_session(session: Path) -> dict[str, Any]:
    """Recover ``session`` in place and return its new metadata."""
    refuse_symlinked_members(session)
    if not (session / METADATA_FILE).is_file():
        raise ConfigFileError(
            f"{session}: no {METADATA_FILE}; the recorder died before recording started, "
            "nothing to recover"
        )
    try:
        manifest = load_json_capped(session / MANIFEST_FILE, 16 << 20, what=MANIFEST_FILE)
        if not isinstance(manifest, dict):
            raise ValueError("manifest.json is not an object")
    except (OSError, ValueError, ConfigFileError):
        manifest = {"status": STATUS_RECORDING}
    if manifest.get("status") != STATUS_RECORDING:
        raise ConfigFileError(
            f"{session}: status is {manifest.get('status')!r}, not 'recording'; it needs no "
            "recovery (use 'capture validate')"
        )
    for video in (FRAMES_FILE, WEBCAM_FILE):
        if (session / video).is_file():
            remux_readable(session / video)
    audio_frames = None
    if (session / AUDIO_FILE).is_file():
        audio_frames = fix_wav_header(session / AUDIO_FILE)
    meta = finalize_session(session, recovered=True)
    if audio_frames is not None:
        info = dict(meta.get("audio_info") or {})
        rate = int(info.get("sample_rate") or 44100)
        info.update(
            {
                "frames": audio_frames,
                "duration_s": round(audio_frames / rate, 6),
                "recovered": "header rebuilt from the file size; timing fit lost",
            }
        )
        meta["audio_info"] = info
        atomic_write_json(session / METADATA_FILE, meta)
        write_manifest(session, STATUS_RECOVERED)
    return meta
