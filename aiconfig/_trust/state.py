"""Anti-rollback state: the highest ``meta.version`` accepted per config name, per data root.

One JSON file under the data root, read-modify-written under an exclusive ``fcntl`` lock and
replaced atomically, so two processes verifying at once never lose an update.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from .._errors import ConfigFileError
from .._files import atomic_write

__all__ = ["default_data_root", "record_version"]


def default_data_root() -> Path:
    env = os.environ.get("AP_DATA_ROOT")
    if env:
        return Path(env)
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(state) / "aiconfig"


def _read_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigFileError(
            "anti-rollback state is corrupt",
            file=str(path),
            hint="restore it from backup; deleting it disables rollback protection",
        ) from None
    except OSError as exc:
        raise ConfigFileError(
            f"cannot read anti-rollback state: {exc.strerror}", file=str(path)
        ) from None
    if not isinstance(state, dict):
        raise ConfigFileError(
            "anti-rollback state is corrupt (not a mapping)",
            file=str(path),
            hint="restore it from backup; deleting it disables rollback protection",
        )
    return state


def record_version(
    data_root: Path, name: str, version: int, sha256: str, *, record: bool = True
) -> dict[str, Any] | None:
    """Return the previous record for ``name`` (or None); store ``version`` if it is newer.

    The caller decides whether the previous record makes this a rollback. With
    ``record=False`` nothing is created or written (``aiconfig verify``, ``load(record=False)``).
    """
    state_dir = data_root / "aiconfig-trust"
    if not record:  # read-only: writers replace the file atomically, so no lock is needed
        return _read_state(state_dir / "versions.json").get(name)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        lock_path = state_dir / "versions.lock"
        with open(lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            path = state_dir / "versions.json"
            state = _read_state(path)
            previous = state.get(name)
            if previous is None or version > int(previous["version"]):
                state[name] = {"version": version, "sha256": sha256}
                atomic_write(path, json.dumps(state, indent=1, sort_keys=True), mode=0o600)
            return previous
    except OSError as exc:
        raise ConfigFileError(
            f"cannot write anti-rollback state: {exc.strerror}",
            file=str(state_dir),
            hint="pass --data-root to a writable directory or set AP_DATA_ROOT",
        ) from None
