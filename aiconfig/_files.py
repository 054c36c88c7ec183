"""The one file-writing rule: a reader sees the old file or the whole new one, never a part.

Every file aiconfig replaces (run and session manifests, ready files, metadata, events, forks,
signatures, anti-rollback state) goes through :func:`atomic_path`:

1. a temp file with a unique name (``.NAME.RANDOM.tmp``, hidden, so artifact listings skip it)
   is created *exclusively* (``O_CREAT | O_EXCL``) in the target's own directory, so the rename
   below never crosses a filesystem and two writers never share a temp file;
2. the content is written and the file fsynced;
3. it is renamed over the target (``os.replace``, atomic on POSIX) and the directory fsynced, so
   the rename itself survives a power cut;
4. on any failure (a full disk, an exception from the writer) the temp file is removed and the
   target is left as it was.

:func:`sha256_file` is the one streaming hash, with one return type (:class:`FileDigest`).
Standard library only: this module is a leaf that every layer may import.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from ._platform_io import open_nofollow

__all__ = [
    "FileDigest",
    "UnsafeFileError",
    "atomic_path",
    "atomic_write",
    "atomic_write_json",
    "fsync_dir",
    "fsync_fd",
    "is_temp_name",
    "open_lock_file",
    "publish_dir",
    "sha256_file",
]

_CHUNK = 1024 * 1024


class FileDigest(NamedTuple):
    """The sha256 (hex) and size in bytes of a file's content."""

    sha256: str
    size: int


def is_temp_name(name: str) -> bool:
    """True for the name of a temp file :func:`atomic_path` made (or one a crash left behind)."""
    return name.startswith(".") and name.endswith(".tmp")


def _create_temp(path: Path, mode: int) -> tuple[int, Path]:
    # tempfile.mkstemp does the same (random name, O_EXCL, retry) but always creates the file
    # 0600; here ``mode`` (minus the umask) applies, as for a plain open().
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: no unique temp file name for {path.name}")


def fsync_dir(directory: Path) -> None:
    """fsync ``directory`` so that a rename or creation in it is durable (skipped where the
    filesystem does not allow opening a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - directories cannot be opened on odd filesystems
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on a directory
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path, *, mode: int = 0o666) -> Iterator[Path]:
    """A temp path beside ``path`` to write to (for writers that want a file name: pyarrow,
    PyAV); on success it is fsynced and renamed over ``path``, on failure removed.

    The parent directory is created if needed. ``mode`` is the new file's permission bits
    before the umask.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path, mode)
    os.close(fd)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)  # the writer closed it; flush what it wrote to disk
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def atomic_write(
    path: Path, data: bytes | str, *, mode: int = 0o666, encoding: str = "utf-8"
) -> None:
    """Replace ``path`` with ``data`` atomically and durably (see the module docstring)."""
    raw = data.encode(encoding) if isinstance(data, str) else data
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any, *, mode: int = 0o666) -> None:
    """:func:`atomic_write` of ``obj`` as indented JSON (key order kept) and a final newline."""
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=False) + "\n", mode=mode)


def publish_dir(tmp: str | os.PathLike[str], out: Path) -> None:
    """Move a finished directory ``tmp`` (made beside ``out``) into place in one rename, and
    make the rename durable (the parent directory is fsynced)."""
    os.replace(tmp, out)
    fsync_dir(out.parent)


def fsync_fd(fd: int) -> None:
    """fsync one open file: the periodic durability policy of writers that keep files open."""
    os.fsync(fd)


def sha256_file(path: Path, chunk: int = _CHUNK) -> FileDigest:
    """The :class:`FileDigest` of a file read in ``chunk``-byte pieces (never whole in memory)."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
            size += len(block)
    return FileDigest(h.hexdigest(), size)


class UnsafeFileError(OSError):
    """A lock file that is a symlink or not a regular file: someone planted it."""


def open_lock_file(path: Path, mode: int = 0o644) -> int:
    """Open (creating) a lock file for ``flock``; never through a symlink, only a regular file.

    A lock file symlinked to a victim would otherwise be opened and truncated (every lock
    holder writes its record into it). Raises :class:`UnsafeFileError` for a symlink or a
    FIFO, device or directory at ``path``.
    """
    # O_NONBLOCK: a FIFO planted at ``path`` must not hang the open (Windows has no FIFOs).
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = open_nofollow(path, flags, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFileError(
                exc.errno, "is a symbolic link; refusing to open it", str(path)
            ) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeFileError(
                errno.EINVAL, "is not a regular file; refusing to use it", str(path)
            )
        if sys.platform != "win32":
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd
