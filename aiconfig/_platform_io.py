"""The few operating-system calls that differ between Linux, macOS and Windows, in one place.

Players record on Windows and macOS, so everything the capture job runs through (the harness's
run context, device locks and budgets, the trust state) calls these instead of ``fcntl``,
``resource``, ``os.pwrite``, ``os.sched_getaffinity`` or ``os.O_NOFOLLOW`` directly.

Locks
    :func:`lock_exclusive` takes an exclusive lock on an open file descriptor. POSIX:
    ``fcntl.flock`` (the whole file; the kernel drops it when the holder exits, even on SIGKILL).
    Windows: ``msvcrt.locking`` on one byte at :data:`WIN_LOCK_OFFSET`, far past any record a
    holder writes, so other processes can still read who holds the lock (Windows byte-range
    locks are mandatory: a locked byte cannot be read). Windows drops it when the handle closes,
    which includes the holder being killed. ``blocking=False`` raises :class:`BlockingIOError`
    on both when another holder has it, so callers have one "already locked" path.
Writes at an offset
    :func:`pwrite`: ``os.pwrite`` where it exists, else seek + write (the file position moves;
    callers here own their descriptors and use no position-dependent reads on them).
CPUs
    :func:`available_cpus`: the CPUs this process may run on (``sched_getaffinity`` on Linux),
    else ``os.process_cpu_count()`` (3.13+) or ``os.cpu_count()``.
Memory limit
    :func:`apply_memory_limit` sets the soft ``RLIMIT_DATA`` (Linux, macOS; ``RLIMIT_AS`` where a
    platform has no ``RLIMIT_DATA``). Windows has no per-process rlimit (a Job Object would be
    needed), so there the budget is *advisory*: buffers and queues are still sized from it, but
    nothing stops growth past it, and the result says so for the run's log and manifest.
Opening without following links
    :func:`open_nofollow`: ``O_NOFOLLOW`` on POSIX. Windows has no such flag: the path is checked
    with ``os.lstat`` first (a symlink or any reparse point, e.g. a junction, is refused) and the
    opened file must be the very file that was checked (same ``st_dev``/``st_ino``), so a link
    swapped in between check and open is refused too.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from typing import Any

__all__ = [
    "MEMORY_ENFORCED",
    "WIN_LOCK_OFFSET",
    "apply_memory_limit",
    "available_cpus",
    "lock_exclusive",
    "memory_limit_state",
    "open_nofollow",
    "preallocate",
    "pwrite",
    "restore_memory_limit",
    "unlock",
]

WIN_LOCK_OFFSET = 1 << 30
"""The byte Windows locks lock: past any record, within the C runtime's 32-bit lock offsets."""

_MIB = 1024 * 1024


# -- locks ---------------------------------------------------------------------------------------

if sys.platform == "win32":
    import msvcrt

    def _win_lock(fd: int, mode: int) -> None:
        pos = os.lseek(fd, 0, os.SEEK_CUR)
        os.lseek(fd, WIN_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, mode, 1)
        finally:
            os.lseek(fd, pos, os.SEEK_SET)

    def lock_exclusive(fd: int, *, blocking: bool = True) -> None:
        """Lock ``fd`` exclusively; ``blocking=False`` raises BlockingIOError when it is held."""
        if not blocking:
            try:
                _win_lock(fd, msvcrt.LK_NBLCK)
            except OSError as exc:  # EACCES / EDEADLOCK: another handle holds the byte
                raise BlockingIOError(
                    errno.EWOULDBLOCK, "the lock is held by another process"
                ) from exc
            return
        while True:
            try:  # LK_LOCK retries for about 10 s, then raises: keep waiting, as flock does
                _win_lock(fd, msvcrt.LK_LOCK)
                return
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EDEADLOCK):
                    raise

    def unlock(fd: int) -> None:
        """Release a lock taken with :func:`lock_exclusive` on ``fd``."""
        _win_lock(fd, msvcrt.LK_UNLCK)

else:
    import fcntl

    def lock_exclusive(fd: int, *, blocking: bool = True) -> None:
        """Lock ``fd`` exclusively; ``blocking=False`` raises BlockingIOError when it is held."""
        fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)

    def unlock(fd: int) -> None:
        """Release a lock taken with :func:`lock_exclusive` on ``fd``."""
        fcntl.flock(fd, fcntl.LOCK_UN)


# -- writes at an offset -------------------------------------------------------------------------


def _seek_write(fd: int, data: bytes, offset: int) -> int:
    os.lseek(fd, offset, os.SEEK_SET)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    return len(data)


if sys.platform == "win32":

    def pwrite(fd: int, data: bytes, offset: int) -> int:
        """Write all of ``data`` at ``offset`` (seek + write: Windows has no ``pwrite``)."""
        return _seek_write(fd, data, offset)

else:

    def pwrite(fd: int, data: bytes, offset: int) -> int:
        """Write all of ``data`` at ``offset`` without moving the file position."""
        view = memoryview(data)
        while view:
            view = view[os.pwrite(fd, view, offset + len(data) - len(view)) :]
        return len(data)


if sys.platform != "win32" and sys.platform != "darwin":

    def preallocate(fd: int, size: int) -> None:
        """Give ``fd`` ``size`` bytes of real blocks (``posix_fallocate``), not a sparse hole."""
        try:
            os.posix_fallocate(fd, 0, size)
        except AttributeError:  # pragma: no cover - a Unix without posix_fallocate
            _seek_write(fd, b"\0" * size, 0)

else:

    def preallocate(fd: int, size: int) -> None:
        """Give ``fd`` ``size`` bytes of real blocks (macOS, Windows: by writing zeros)."""
        _seek_write(fd, b"\0" * size, 0)


# -- CPUs ----------------------------------------------------------------------------------------


def _counted_cpus() -> int:
    count = getattr(os, "process_cpu_count", os.cpu_count)()  # 3.13+ honours affinity
    return int(count or 1)


if sys.platform != "win32" and sys.platform != "darwin":

    def available_cpus() -> int:
        """The CPUs this process may run on (its affinity mask)."""
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - a Unix without sched_getaffinity (BSD)
            return _counted_cpus()

else:

    def available_cpus() -> int:
        """The CPUs this process may run on (macOS and Windows: the usable CPU count)."""
        return _counted_cpus()


# -- memory limit --------------------------------------------------------------------------------

MEMORY_ENFORCED = sys.platform != "win32"
"""Whether :func:`apply_memory_limit` can enforce a limit here (False: the budget is advisory)."""

_WIN_ADVISORY = (
    "Windows has no per-process resource limit; buffers and queues are sized from the budget "
    "but the operating system does not stop growth past it"
)

if sys.platform == "win32":

    def memory_limit_state() -> tuple[int, int] | None:
        """The current (soft, hard) memory rlimit to restore later; None on Windows."""
        return None

    def restore_memory_limit(state: tuple[int, int] | None) -> None:
        """Put back what :func:`memory_limit_state` returned (nothing to do on Windows)."""

    def apply_memory_limit(limit_bytes: int) -> dict[str, Any]:
        """Windows: nothing can be enforced; the result says the budget is advisory."""
        return {"memory_limit": "advisory", "memory_limit_reason": _WIN_ADVISORY}

else:
    import resource

    _RLIMIT = getattr(resource, "RLIMIT_DATA", resource.RLIMIT_AS)
    _RLIMIT_NAME = "RLIMIT_DATA" if hasattr(resource, "RLIMIT_DATA") else "RLIMIT_AS"

    def memory_limit_state() -> tuple[int, int] | None:
        """The current (soft, hard) memory rlimit, to restore when the run ends."""
        soft, hard = resource.getrlimit(_RLIMIT)
        return soft, hard

    def restore_memory_limit(state: tuple[int, int] | None) -> None:
        """Put back what :func:`memory_limit_state` returned."""
        if state is not None:
            resource.setrlimit(_RLIMIT, state)

    def apply_memory_limit(limit_bytes: int) -> dict[str, Any]:
        """Lower the soft memory rlimit to ``limit_bytes`` (never raise it, never past hard)."""
        done: dict[str, Any] = {"memory_limit": "enforced", "memory_rlimit": _RLIMIT_NAME}
        soft, hard = resource.getrlimit(_RLIMIT)
        if hard != resource.RLIM_INFINITY:
            limit_bytes = min(limit_bytes, hard)
        if soft == resource.RLIM_INFINITY or limit_bytes < soft:
            resource.setrlimit(_RLIMIT, (limit_bytes, hard))
            done[f"{_RLIMIT_NAME.lower()}_mb"] = limit_bytes // _MIB
        return done


# -- opening without following links -------------------------------------------------------------


def _refused_link(path: str | os.PathLike[str]) -> OSError:
    return OSError(errno.ELOOP, "is a symbolic link or reparse point", os.fspath(path))


if sys.platform == "win32":

    def _is_link(st: os.stat_result) -> bool:
        attributes = getattr(st, "st_file_attributes", 0)  # Windows-only field
        reparse = attributes & stat.FILE_ATTRIBUTE_REPARSE_POINT
        return stat.S_ISLNK(st.st_mode) or bool(reparse)

    def open_nofollow(path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
        """``os.open`` that refuses a symlink or reparse point at ``path`` (OSError ELOOP)."""
        try:
            before: os.stat_result | None = os.lstat(path)
        except FileNotFoundError:
            before = None
        if before is not None and _is_link(before):
            raise _refused_link(path)
        fd = os.open(path, flags | getattr(os, "O_NOINHERIT", 0), mode)
        try:
            after = os.lstat(path) if before is None else before
            opened = os.fstat(fd)
            if _is_link(after) or (after.st_dev, after.st_ino) != (opened.st_dev, opened.st_ino):
                raise _refused_link(path)  # swapped for a link between the check and the open
        except BaseException:
            os.close(fd)
            raise
        return fd

else:

    def open_nofollow(path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
        """``os.open`` with ``O_NOFOLLOW``: a symlink at ``path`` raises OSError ELOOP."""
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
