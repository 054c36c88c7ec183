"""Readiness file: written atomically once a job is ready, removed when it ends.

The file holds ``pid``, ``run_id``, ``job``, ``started_at``, ``ready_at``, ``host`` and the
process start time in clock ticks (``pid_start_ticks``, from ``/proc/<pid>/stat``). A run that
exits normally, fails, or gets SIGTERM removes it. A run killed with SIGKILL cannot remove it, so
readers must check liveness: :func:`ready_state` reports ``stale`` when the pid is gone or was
reused by another process (its start time differs), and only ``ready`` means a live job.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from .._bounded import load_json_capped
from .._errors import ConfigFileError, RunStateError
from .._files import atomic_write_json

__all__ = ["ReadyState", "pid_start_ticks", "ready_state", "remove_ready_file", "write_ready_file"]

State = Literal["absent", "ready", "stale", "invalid"]


def pid_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None when no such process exists."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[19])  # field 22 overall


def _alive(pid: int, ticks: int | None) -> bool:
    now = pid_start_ticks(pid)
    if now is None:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    if state in ("Z", "X"):  # zombie: exited, not yet reaped
        return False
    return ticks is None or now == ticks


@dataclass(frozen=True)
class ReadyState:
    state: State
    info: dict[str, Any]

    @property
    def is_ready(self) -> bool:
        return self.state == "ready"


def ready_state(path: str | os.PathLike[str]) -> ReadyState:
    """``absent``, ``ready`` (pid alive and the same process), ``stale`` or ``invalid``.

    ``path`` is a ``str`` or any path-like object (``Path``)."""
    try:
        info = load_json_capped(Path(path), 1 << 20, what="ready file")
    except FileNotFoundError:
        return ReadyState("absent", {})
    except (OSError, ConfigFileError):
        return ReadyState("invalid", {})
    if not isinstance(info, dict) or not isinstance(info.get("pid"), int):
        return ReadyState("invalid", {})
    ticks = info.get("pid_start_ticks")
    alive = _alive(info["pid"], ticks if isinstance(ticks, int) else None)
    return ReadyState("ready" if alive else "stale", info)


def write_ready_file(path: Path, *, run_id: str, job: str, started_at: str, **extra: Any) -> None:
    """Write the ready file atomically; refuses to replace the ready file of another live run."""
    current = ready_state(path)
    if current.state == "invalid" and (path.exists() or path.is_symlink()):
        raise RunStateError(
            "exists and is not a ready file; refusing to replace it",
            file=str(path),
            hint="--ready-file must name a new path (or a ready file an earlier run left)",
        )
    if current.is_ready and current.info.get("pid") != os.getpid():
        raise RunStateError(
            f"ready file is held by live run {current.info.get('run_id')!r} "
            f"(pid {current.info.get('pid')})",
            file=str(path),
            hint="give each run its own --ready-file",
        )
    pid = os.getpid()
    atomic_write_json(
        path,
        {
            "pid": pid,
            "pid_start_ticks": pid_start_ticks(pid),
            "run_id": run_id,
            "job": job,
            "host": socket.gethostname(),
            "started_at": started_at,
            "ready_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            **extra,
        },
    )


def remove_ready_file(path: Path, *, run_id: str | None = None) -> None:
    """Remove the ready file only if this process wrote it (its pid, and ``run_id`` if given).

    An unreadable or foreign file at that path is never deleted: ``--ready-file notes.txt`` on a
    run that fails before it is ready must leave ``notes.txt`` alone.
    """
    if path.is_symlink():
        return  # never ours: the ready file is written by an atomic rename, never as a link
    state = ready_state(path)
    if state.state == "absent" or state.info.get("pid") != os.getpid():
        return
    if run_id is not None and state.info.get("run_id") != run_id:
        return
    path.unlink(missing_ok=True)
