"""Exclusive device locks: one ``fcntl.flock`` lock file per capture device.

Lock files live in the orchestrator's lock directory (``--lock-dir`` / ``AP_LOCK_DIR``, default
``$HYPERVISOR_RUN_DIR/shared/locks``) and are named ``<device>_capture.lock``, e.g.
``screen_capture.lock``. The kernel releases a flock when its holder exits, even on SIGKILL, so a
crashed run never leaves a device locked. The holder writes its pid, run id and job into the file
so a second run fails fast with a message naming it. Lock files are never deleted (deleting one
while another process waits on it would let two holders in).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._errors import CaptureDeviceError, DeviceLockedError
from .._files import UnsafeFileError, open_lock_file

__all__ = ["DEVICES", "DeviceLock", "lock_path"]

DEVICES = ("screen", "input", "audio", "webcam")


def lock_path(lock_dir: Path, device: str) -> Path:
    if device not in DEVICES:
        raise CaptureDeviceError(f"unknown device {device!r}", expected=" | ".join(DEVICES))
    return lock_dir / f"{device}_capture.lock"


class DeviceLock:
    """An exclusive, non-blocking lock on one device; ``release()`` is safe to call twice."""

    def __init__(self, lock_dir: Path, device: str, *, run_id: str, job: str) -> None:
        self.path = lock_path(lock_dir, device)
        self.device = device
        self.run_id = run_id
        self.job = job
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> DeviceLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = open_lock_file(self.path)
        except UnsafeFileError as exc:
            raise CaptureDeviceError(
                f"{self.device} lock file {exc.strerror}",
                file=str(self.path),
                hint="remove it; lock files are created by capture runs, never as links",
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DeviceLockedError(
                f"{self.device} is in use by {self._describe_holder()}",
                file=str(self.path),
                hint="wait for that run to finish, or schedule capture jobs exclusively",
            ) from None
        except OSError:
            os.close(fd)
            raise
        info = {
            "pid": os.getpid(),
            "run_id": self.run_id,
            "job": self.job,
            "device": self.device,
            "acquired_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._fd = fd
        return self

    def _describe_holder(self) -> str:
        info: dict[str, Any] = {}
        for _ in range(5):  # the holder writes its record just after locking: give it a moment
            try:
                info = json.loads(self.path.read_text() or "{}")
            except (OSError, ValueError):
                info = {}
            if info:
                break
            time.sleep(0.02)
        if not info:
            return "another process (holder not recorded)"
        return f"run {info.get('run_id')!r} (pid {info.get('pid')}, job {info.get('job')})"

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> DeviceLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
