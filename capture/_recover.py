"""``capture recover SESSION``: turn a killed, failed or damaged session into valid files.

A recorder killed mid-session (or stopped by a full disk: status ``failed``) leaves
``frames.mp4`` as a fragmented MP4 whose last fragment may be cut short, the event journal with a
possibly torn last batch, and ``manifest.json`` saying ``recording`` or ``failed``. A finished
session can also be damaged later (a truncated copy, flipped bytes). Recovery copies every
readable video packet into a clean MP4 (no re-encode), reads every complete journal batch (or
every intact row group of ``events.parquet``: page checksums find flipped bytes), drops frame
rows and input events past the last readable frame, and finalizes with ``status: recovered`` and
a ``recovery`` block in the metadata that says what was lost and why.

The original bytes are never lost: every file recovery replaces is first hard-linked (no copy,
no extra space) into ``SESSION/.original/`` (hidden: manifests skip it). Recovery refuses, in one
line, when the disk lacks the room for the rewritten files, or when nothing can be rebuilt (no
readable metadata or events).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from aiconfig import CaptureDeviceError, ConfigFileError
from aiconfig._bounded import load_json_capped
from aiconfig._files import atomic_path, atomic_write_json
from aiconfig.sessions import refuse_symlinked_members

from ._audio_recorder import fix_wav_header
from ._constants import (
    AUDIO_FILE,
    EVENTS_FILE,
    EVENTS_JOURNAL,
    FRAMES_FILE,
    MANIFEST_FILE,
    METADATA_FILE,
    STATUS_FAILED,
    STATUS_RECORDING,
    STATUS_RECOVERED,
    WEBCAM_FILE,
)
from ._finalize import finalize_session, write_manifest
from ._remux import remux_readable
from ._storage import RESERVE_FILE

__all__ = ["BACKUP_DIR", "recover_session", "remux_readable"]

BACKUP_DIR = ".original"
_SLACK = 1024 * 1024  # metadata, manifest and the journal's Parquet beside the rewritten videos


def backup(session: Path, name: str) -> Path | None:
    """Hard-link ``session/name`` into ``session/.original/`` (once: the first original is
    kept); falls back to a copy where links are refused. Returns the backup's path."""
    src = session / name
    if not src.is_file():
        return None
    folder = session / BACKUP_DIR
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise ConfigFileError(
            f"{BACKUP_DIR} is a symbolic link or not a directory; refusing to keep the originals "
            "there",
            file=str(session),
            hint=f"remove {folder} and run recover again",
        )
    folder.mkdir(exist_ok=True)
    dst = folder / name
    if dst.exists():
        return dst  # an earlier recovery kept the first original
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def _fix_wav(path: Path) -> int | None:
    """The WAV with its header rebuilt from its size, written beside it and renamed over it
    (the original inode stays intact in ``.original/``); None when it is not our WAV."""
    try:
        with atomic_path(path) as tmp:
            shutil.copyfile(path, tmp)
            return fix_wav_header(tmp)
    except CaptureDeviceError:
        return None  # not a WAV this recorder wrote: kept as it is, validate names it


def _status(session: Path) -> str:
    try:
        manifest = load_json_capped(session / MANIFEST_FILE, 16 << 20, what=MANIFEST_FILE)
    except (OSError, ValueError, ConfigFileError):
        return STATUS_RECORDING  # never committed (killed before the first manifest write)
    status = manifest.get("status") if isinstance(manifest, dict) else None
    return str(status) if status is not None else STATUS_RECORDING


def _read_metadata(session: Path) -> dict[str, Any]:
    path = session / METADATA_FILE
    if not path.is_file():
        raise ConfigFileError(
            f"no {METADATA_FILE}; the recorder died before recording started, nothing to recover",
            file=str(session),
        )
    try:
        meta = load_json_capped(path, 64 << 20, what=METADATA_FILE)
    except (OSError, ValueError, ConfigFileError) as exc:
        raise ConfigFileError(
            f"unreadable ({' '.join(str(exc).split())[:160]}); without the session's fps and "
            "clock the files cannot be re-indexed, nothing was changed",
            file=str(path),
            hint="restore metadata.json from a backup copy of the session",
        ) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("fps"), int):
        raise ConfigFileError(
            "not a session's metadata (no integer fps); nothing was changed",
            file=str(path),
            hint="restore metadata.json from a backup copy of the session",
        )
    return meta


def _damage(session: Path) -> list[str]:
    from ._validate import validate_session

    return validate_session(session)


def _check_space(session: Path, names: list[str]) -> None:
    need = sum((session / n).stat().st_size for n in names if (session / n).is_file()) + _SLACK
    free = shutil.disk_usage(session).free
    if free < need:
        raise ConfigFileError(
            f"not enough free space to recover: about {need / 1e6:.1f} MB needed, "
            f"{free / 1e6:.1f} MB free; nothing was changed",
            file=str(session),
            hint="free some space on that disk (or copy the session elsewhere) and run recover "
            "again",
        )


def _events_source(session: Path) -> str:
    """Which event file recovery reads; a one-line error when none can be read."""
    from ._events import read_events_salvage

    if (session / EVENTS_JOURNAL).is_file():
        return EVENTS_JOURNAL
    if not (session / EVENTS_FILE).is_file():
        raise ConfigFileError(
            f"neither {EVENTS_JOURNAL} nor {EVENTS_FILE} exists; the events are lost",
            file=str(session),
            hint="nothing was changed",
        )
    _, problem = read_events_salvage(session / EVENTS_FILE)
    if problem is not None and problem.startswith("unreadable"):
        raise ConfigFileError(
            f"{EVENTS_FILE} is {problem} and no journal remains; the events cannot be "
            "recovered, nothing was changed",
            file=str(session),
            hint="restore events.parquet from a backup copy of the session",
        )
    return EVENTS_FILE


def recover_session(session: Path) -> dict[str, Any]:
    """Recover ``session`` in place (originals kept in ``.original/``); return its metadata."""
    refuse_symlinked_members(session)
    status = _status(session)
    meta = _read_metadata(session)
    if status in (STATUS_RECORDING, STATUS_FAILED):
        cause = "killed" if status == STATUS_RECORDING else "failed"
        problems: list[str] = []
    else:
        problems = _damage(session)
        if not problems:
            raise ConfigFileError(
                f"status is {status!r} and the session is valid; it needs no recovery",
                file=str(session),
                hint="'python -m capture validate' checks it",
            )
        cause = "damaged"
    source = _events_source(session)
    (session / RESERVE_FILE).unlink(missing_ok=True)  # a killed recorder's space reserve
    rewritten = [n for n in (FRAMES_FILE, WEBCAM_FILE, AUDIO_FILE) if (session / n).is_file()]
    _check_space(session, rewritten)
    for name in (*rewritten, EVENTS_FILE, EVENTS_JOURNAL, METADATA_FILE, MANIFEST_FILE):
        backup(session, name)
    for video in (FRAMES_FILE, WEBCAM_FILE):
        if (session / video).is_file():
            remux_readable(session / video)
    audio_frames = None
    if (session / AUDIO_FILE).is_file():
        audio_frames = _fix_wav(session / AUDIO_FILE)
    failure = meta.get("failure") if cause == "failed" else None
    meta = finalize_session(
        session,
        recovered=True,
        cause=cause,
        damage=problems,
        failure=failure if isinstance(failure, dict) else None,
        events_from=source,
    )
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
