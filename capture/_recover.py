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
no extra space) into ``SESSION/.original/`` (hidden: manifests skip it), or copied there where
the file system refuses hard links (FAT/exFAT, some network shares). Recovery refuses, in one
line and before changing anything, when the disk lacks the room for the rewritten files (and,
where links are refused, for the copies of the originals as well), or when nothing can be
rebuilt (no readable metadata or events).
"""

from __future__ import annotations

import contextlib
import os
import secrets
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
_SLACK = 1024 * 1024  # metadata and manifest beside the rewritten videos and events
_REWRITTEN = (FRAMES_FILE, WEBCAM_FILE, AUDIO_FILE)
_KEPT = (*_REWRITTEN, EVENTS_FILE, EVENTS_JOURNAL, METADATA_FILE, MANIFEST_FILE)


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


def _links_work(session: Path) -> bool:
    """Whether a hard link into ``.original/`` can be made (FAT/exFAT, another file system and
    some network shares refuse them): tried on ``metadata.json`` with a temporary name, removed
    at once, so nothing is left behind."""
    folder = session / BACKUP_DIR
    where = folder if folder.is_dir() and not folder.is_symlink() else session
    probe = where / f".link-probe.{secrets.token_hex(4)}.tmp"
    try:
        os.link(session / METADATA_FILE, probe)
    except OSError:
        return False
    with contextlib.suppress(OSError):
        probe.unlink()
    return True


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def _check_space(session: Path, rewritten: list[str], events_from: str) -> None:
    """Refuse, changing nothing, unless the disk has room for the rewritten files (the videos,
    the WAV, events.parquet from ``events_from``) and, where hard links are refused, for a copy
    of every original kept in ``.original/``. The recorder's space reserve counts as free: it
    is deleted before anything is written."""
    need = sum(_size(session / n) for n in rewritten) + _size(session / events_from) + _SLACK
    links = _links_work(session)
    if not links:
        need += sum(_size(session / n) for n in _KEPT if not (session / BACKUP_DIR / n).exists())
    free = shutil.disk_usage(session).free + _size(session / RESERVE_FILE)
    if free < need:
        why = "" if links else " (this disk refuses hard links, so the originals are copied)"
        raise ConfigFileError(
            f"not enough free space to recover: about {need / 1e6:.1f} MB needed{why}, "
            f"{free / 1e6:.1f} MB free; nothing was changed",
            file=str(session),
            hint="free some space on that disk (or copy the session elsewhere) and run recover "
            "again",
        )


def _events_source(session: Path) -> tuple[str, tuple[Any, bool]]:
    """Which event file recovery reads, its table and whether some events were lost (read
    once, handed on to finalize); a one-line error when none can be read."""
    from ._events import read_events_salvage, read_journal

    if (session / EVENTS_JOURNAL).is_file():
        return EVENTS_JOURNAL, read_journal(session / EVENTS_JOURNAL)
    if not (session / EVENTS_FILE).is_file():
        raise ConfigFileError(
            f"neither {EVENTS_JOURNAL} nor {EVENTS_FILE} exists; the events are lost",
            file=str(session),
            hint="nothing was changed",
        )
    table, problem = read_events_salvage(session / EVENTS_FILE)
    if problem is not None and problem.startswith("unreadable"):
        raise ConfigFileError(
            f"{EVENTS_FILE} is {problem} and no journal remains; the events cannot be "
            "recovered, nothing was changed",
            file=str(session),
            hint="restore events.parquet from a backup copy of the session",
        )
    return EVENTS_FILE, (table, problem is not None)


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
    source, events = _events_source(session)
    rewritten = [n for n in _REWRITTEN if (session / n).is_file()]
    _check_space(session, rewritten, source)
    (session / RESERVE_FILE).unlink(missing_ok=True)  # a killed recorder's space reserve
    for name in _KEPT:
        backup(session, name)
    if (session / WEBCAM_FILE).is_file():
        remux_readable(session / WEBCAM_FILE)  # frames.mp4: finalize rewrites it, once
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
        events=events,
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
