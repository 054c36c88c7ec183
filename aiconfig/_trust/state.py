"""Anti-rollback state: the highest ``meta.version`` accepted per config name, per data root.

One JSON file under the data root, read-modify-written under an exclusive ``fcntl`` lock and
replaced atomically, so two processes verifying at once never lose an update.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._bounded import loads_json_bounded, read_capped
from .._errors import ConfigFileError
from .._files import UnsafeFileError, atomic_write, open_lock_file

MAX_STATE_BYTES = 64 << 20

__all__ = ["default_data_root", "record_version"]


def default_data_root() -> Path:
    env = os.environ.get("AP_DATA_ROOT")
    if env:
        return Path(env)
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(state) / "aiconfig"


_CORRUPT_HINT = "restore it from backup; deleting it disables rollback protection"


def _open_lock(path: Path) -> Any:
    """The lock file, never through a symlink and only if it is a regular file."""
    try:
        fd = open_lock_file(path, 0o600)
    except UnsafeFileError as exc:
        raise ConfigFileError(
            f"anti-rollback lock file {exc.strerror}",
            file=str(path),
            hint="remove it (someone planted it); aiconfig creates it as a plain file",
        ) from None
    return os.fdopen(fd, "r+")


def _read_state(path: Path) -> dict[str, Any]:
    if path.is_symlink():
        raise ConfigFileError(
            "anti-rollback state is a symlink; refusing to read or replace it",
            file=str(path),
            hint=_CORRUPT_HINT,
        )
    try:
        state = loads_json_bounded(
            read_capped(path, MAX_STATE_BYTES, what="anti-rollback state"), str(path)
        )
    except FileNotFoundError:
        return {}
    except ConfigFileError as exc:
        raise ConfigFileError(
            f"anti-rollback state is corrupt ({exc.problems[0].message})",
            file=str(path),
            hint=_CORRUPT_HINT,
        ) from None
    if not isinstance(state, dict):
        raise ConfigFileError(
            "anti-rollback state is corrupt (not a JSON object)", file=str(path), hint=_CORRUPT_HINT
        )
    for key, entry in state.items():
        version = entry.get("version") if isinstance(entry, dict) else None
        sha = entry.get("sha256") if isinstance(entry, dict) else None
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise ConfigFileError(
                f"anti-rollback state is corrupt (version of '{key}' is {version!r}, not an "
                "integer)",
                file=str(path),
                path=str(key),
                hint=_CORRUPT_HINT,
            )
        limit = entry.get("threshold") if isinstance(entry, dict) else None
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise ConfigFileError(
                f"anti-rollback state is corrupt (threshold of '{key}' is {limit!r})",
                file=str(path),
                path=str(key),
                hint=_CORRUPT_HINT,
            )
        if sha is not None and not isinstance(sha, str):
            raise ConfigFileError(
                f"anti-rollback state is corrupt (sha256 of '{key}' is not a string)",
                file=str(path),
                path=str(key),
                hint=_CORRUPT_HINT,
            )
    return state


def record_version(
    data_root: Path,
    name: str,
    version: int,
    sha256: str,
    *,
    record: bool = True,
    threshold: int = 0,
    admit: Callable[[dict[str, Any] | None], None] | None = None,
) -> dict[str, Any] | None:
    """Return the previous record for ``name`` (or None); store ``version`` if it is newer.

    ``admit(previous)`` runs under the lock before anything is written and raises to refuse
    (a rollback, or fewer reviewers than the name needed before): a refused file never moves
    the state. ``threshold`` is the number of reviewers this file needed; the record keeps the
    strictest one ever needed for the name. With ``record=False`` nothing is created or
    written (``aiconfig verify``, ``show``, ``lineage``, ``load(record=False)``).
    """
    state_dir = data_root / "aiconfig-trust"
    if not record:  # read-only: writers replace the file atomically, so no lock is needed
        previous = _read_state(state_dir / "versions.json").get(name)
        if admit is not None:
            admit(previous)
        return previous
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        lock_path = state_dir / "versions.lock"
        with _open_lock(lock_path) as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            path = state_dir / "versions.json"
            state = _read_state(path)
            previous = state.get(name)
            if admit is not None:
                admit(previous)
            strictest = max(threshold, int((previous or {}).get("threshold") or 0))
            newer = previous is None or version > int(previous["version"])
            stricter = previous is not None and strictest > int(previous.get("threshold") or 0)
            if newer or stricter:
                entry = {"version": version, "sha256": sha256} if newer else dict(previous or {})
                if strictest:
                    entry["threshold"] = strictest
                state[name] = entry
                atomic_write(path, json.dumps(state, indent=1, sort_keys=True), mode=0o600)
            return previous
    except OSError as exc:
        raise ConfigFileError(
            f"cannot write anti-rollback state: {exc.strerror}",
            file=str(state_dir),
            hint="pass --data-root to a writable directory or set AP_DATA_ROOT",
        ) from None
