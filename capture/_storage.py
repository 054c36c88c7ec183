"""Where a session's bytes go: a failed write, the space kept in reserve, and the fsync policy.

* :class:`StorageFault` records the **first** failed write of any stream (the video fragments,
  the event journal, the audio, the metadata) and sets the session's stop event: every stream
  then stops, what was written before stays, and the session is marked ``failed`` (reason
  ``disk full`` for ENOSPC/EDQUOT) instead of being finalized.
* :class:`SpaceReserve` holds a small preallocated file in the session directory from the
  start. When the disk fills, releasing it is what leaves room to write the ``failed`` status
  (``metadata.json``, ``manifest.json``, the run manifest) once every stream has stopped.
* :class:`Syncer` is the durability policy: every ``fsync_interval_s`` it fsyncs each growing
  file (video fragments, journal, audio) on its own thread, so a power cut costs at most that
  interval plus what the writers still hold in memory (see docs/capture.md, "Durability").
  Metadata and manifests are written atomically (:mod:`aiconfig._files`) and never need it.
* :func:`check_writable` is the preflight's proof that the output directory takes a file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiconfig._platform_io import preallocate

__all__ = [
    "RESERVE_BYTES",
    "RESERVE_FILE",
    "SpaceReserve",
    "StorageFault",
    "Syncer",
    "check_writable",
    "fault_reason",
    "is_disk_full",
    "nearest_existing",
]

RESERVE_FILE = ".space-reserve.tmp"
"""Hidden, temp-named: manifests and artifact listings skip it."""
RESERVE_BYTES = 2 * 1024 * 1024
"""Room for the failed status (metadata, manifests, the run manifest) after ENOSPC."""

_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def _oserrors(exc: BaseException | None) -> list[OSError]:
    found: list[OSError] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError):
            found.append(exc)
        exc = exc.__cause__ or exc.__context__
    return found


def is_disk_full(exc: BaseException) -> bool:
    """True for ENOSPC/EDQUOT from Python, PyAV (``av.error.OSError``) or pyarrow (which puts
    the errno in its message) anywhere in the exception's chain."""
    for err in _oserrors(exc):
        if err.errno in _FULL:
            return True
        text = str(err)
        if "No space left on device" in text or "Disk quota exceeded" in text:
            return True
    return False


def fault_reason(exc: BaseException) -> str:
    """``disk full`` or ``write failed (<strerror>)``: what goes into the session's metadata."""
    if is_disk_full(exc):
        return "disk full"
    errs = _oserrors(exc)
    detail = (errs[0].strerror if errs and errs[0].strerror else None) or str(exc)
    return f"write failed ({detail})"


@dataclass(frozen=True, slots=True)
class Fault:
    """The first failed write: which file, why, and when (monotonic and wall clock)."""

    what: str
    reason: str
    error: str
    monotonic_ns: int
    wall_ns: int

    def to_dict(self, t0_ns: int | None = None) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "file": self.what,
            "error": self.error,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.wall_ns / 1e9)),
            "at_t_ns": self.wall_ns,
            "at_monotonic_ns": self.monotonic_ns,
            "after_s": None if t0_ns is None else round((self.monotonic_ns - t0_ns) / 1e9, 3),
        }


class StorageFault:
    """Thread-safe: the first failed write wins; every later one is only counted."""

    def __init__(self, stop: threading.Event | None = None) -> None:
        self._lock = threading.Lock()
        self._stop = stop
        self.first: Fault | None = None
        self.later = 0

    def report(self, what: str, exc: BaseException, *, reason: str | None = None) -> None:
        with self._lock:
            if self.first is not None:
                self.later += 1
                return
            self.first = Fault(
                what=what,
                reason=reason or fault_reason(exc),
                error=str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__,
                monotonic_ns=time.monotonic_ns(),
                wall_ns=time.time_ns(),
            )
        if self._stop is not None:
            self._stop.set()

    def handler(self, what: str) -> Callable[[BaseException], None]:
        """A callback for one writer: ``handler("frames.mp4")(exc)``."""
        return lambda exc: self.report(what, exc)

    @property
    def failed(self) -> bool:
        return self.first is not None


class SpaceReserve:
    """A preallocated hidden file; :meth:`release` frees its blocks for the final writes."""

    def __init__(self, directory: Path, size: int = RESERVE_BYTES) -> None:
        self.path = directory / RESERVE_FILE
        self.size = 0
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError:
            return
        try:
            try:
                preallocate(fd, size)  # real blocks, not a sparse hole
            except OSError:
                os.write(fd, b"\0" * size)
            self.size = size
        except OSError:  # not even that much room: the preflight will have warned
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
        finally:
            os.close(fd)

    def release(self) -> None:
        """Free the space (safe to call twice)."""
        with contextlib.suppress(OSError):
            self.path.unlink()
        self.size = 0


@dataclass(slots=True)
class _Synced:
    path: Path
    fd: int | None
    syncs: int = 0
    last_ns: int | None = None


class Syncer:
    """fsyncs registered files every ``interval_s`` on its own thread (0: never).

    A file is opened read-only a second time for this: fsync flushes the file's dirty pages
    whichever descriptor it is called on, so the writers (PyAV, pyarrow, the WAV writer) need
    no hook. A failed fsync (ENOSPC, EIO: the kernel could not write the pages) is a failed
    write, reported through ``on_error``.
    """

    def __init__(
        self, interval_s: float, on_error: Callable[[str, BaseException], None] | None = None
    ) -> None:
        self.interval_s = interval_s
        self._on_error = on_error
        self._files: dict[str, _Synced] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fsync_s_total = 0.0
        self.fsync_s_max = 0.0
        self.rounds = 0
        self.dirs: list[Path] = []

    def add(self, path: Path) -> None:
        """Keep ``path`` durable (opened on the first round it exists: PyAV creates the video
        with its first fragment); its directory is fsynced once every file exists."""
        if self.interval_s <= 0:
            return
        with self._lock:
            self._files[path.name] = _Synced(path, _open(path))
            if path.parent not in self.dirs:
                self.dirs.append(path.parent)

    def start(self) -> None:
        if self.interval_s <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="capture-fsync", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sync_all()

    def sync_all(self) -> None:
        """One round: every file, then the directories (new names survive a power cut)."""
        from aiconfig._files import fsync_dir, fsync_fd

        if self.interval_s <= 0:
            return
        with self._lock:
            files = list(self._files.values())
            dirs = list(self.dirs)
        start = time.perf_counter()
        opened = False
        for entry in files:
            if entry.fd is None:
                entry.fd = _open(entry.path)
                if entry.fd is None:
                    continue
                opened = True  # any file opened this round: its new name needs a dir fsync
            try:
                fsync_fd(entry.fd)
            except OSError as exc:
                if self._on_error is not None:
                    self._on_error(entry.path.name, exc)
                continue
            entry.syncs += 1
            entry.last_ns = time.monotonic_ns()
        if self.rounds == 0 or opened:
            for directory in dirs:
                fsync_dir(directory)
        spent = time.perf_counter() - start
        self.rounds += 1
        self.fsync_s_total += spent
        self.fsync_s_max = max(self.fsync_s_max, spent)

    def stop(self) -> None:
        """Stop the thread and close the descriptors (the writers' own close flushes)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, self.interval_s * 2))
        with self._lock:
            for entry in self._files.values():
                if entry.fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(entry.fd)
                    entry.fd = None

    def info(self) -> dict[str, Any]:
        """``storage.fsync`` in metadata.json."""
        return {
            "interval_s": self.interval_s,
            "files": sorted(self._files),
            "rounds": self.rounds,
            "seconds_total": round(self.fsync_s_total, 4),
            "seconds_max": round(self.fsync_s_max, 4),
        }


# os.fsync is FlushFileBuffers on Windows, which needs a handle with write access (a read-only
# descriptor fails with EBADF); POSIX fsync works on any descriptor. Never O_TRUNC/O_CREAT:
# the writer owns the file, the Syncer only flushes it.
def _sync_flags(platform: str) -> int:
    return (os.O_RDWR | getattr(os, "O_BINARY", 0)) if platform == "win32" else os.O_RDONLY


_SYNC_FLAGS = _sync_flags(sys.platform)


def _open(path: Path) -> int | None:
    try:
        return os.open(path, _SYNC_FLAGS | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None


def nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (where a new directory would be made)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def check_writable(directory: Path) -> str | None:
    """None when a file can be created in ``directory`` (or where it would be created);
    otherwise the reason (read-only file system, permission denied, not a directory)."""
    probe = nearest_existing(directory)
    if not probe.is_dir():
        return f"{probe} is not a directory"
    try:
        with tempfile.TemporaryFile(dir=probe, prefix=".capture-probe-"):
            pass
    except OSError as exc:
        return f"{probe}: {exc.strerror or exc}"
    return None
