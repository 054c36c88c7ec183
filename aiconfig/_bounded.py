"""Reading untrusted files with a cap: stat first, then read at most ``cap + 1`` bytes.

``Path.read_bytes()`` reads a 400 MB ``.sig`` into memory before any size check can run, and a
``.sig`` symlinked to ``/dev/zero`` (or a FIFO) never ends. Everything that reads a file an
attacker may have planted (configs, signatures, the trust store, manifests, session metadata)
reads it through :func:`read_capped`: only regular files, size checked on the open descriptor,
and a bounded read in case the file grows meanwhile. :func:`load_json_capped` adds JSON
parsing that turns Python's ``RecursionError`` on deeply nested input into a one-line error.

A leaf module: it imports nothing from the package but the error types.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from ._errors import ConfigFileError

__all__ = [
    "JSON_MAX_BYTES",
    "JSON_MAX_DEPTH",
    "load_json_capped",
    "read_capped",
    "read_config_capped",
]

JSON_MAX_BYTES = 64 << 20  # manifests and metadata: far above any real one
JSON_MAX_DEPTH = 64  # nesting of any JSON document this project writes is below 10


def read_capped(path: str | os.PathLike[str], cap: int, *, what: str = "file") -> bytes:
    """The bytes of the regular file ``path``, refusing more than ``cap`` bytes.

    Raises :class:`ConfigFileError` naming the file for a missing file, a directory, a device,
    FIFO or socket (``/dev/zero`` through a symlink), or a file over the cap. ``FileNotFoundError``
    is re-raised as is, so callers can word "not found" themselves.
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise ConfigFileError(f"{what} is a directory", file=str(p)) from None
    except OSError as exc:
        raise ConfigFileError(f"cannot read {what}: {exc.strerror}", file=str(p)) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ConfigFileError(f"{what} is a directory", file=str(p))
        if not stat.S_ISREG(st.st_mode):
            raise ConfigFileError(
                f"{what} is not a regular file (a device, FIFO or socket)",
                file=str(p),
                hint="replace it with the real file",
            )
        if st.st_size > cap:
            raise _too_large(p, what, st.st_size, cap)
        chunks: list[bytes] = []
        left = cap + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > cap:
            raise _too_large(p, what, len(data), cap)
        return data
    except OSError as exc:
        raise ConfigFileError(f"cannot read {what}: {exc.strerror}", file=str(p)) from None
    finally:
        os.close(fd)


def read_config_capped(path: str | os.PathLike[str], cap: int) -> bytes:
    """A config file's bytes under ``cap`` (a bigger file is never read, hashed or signed)."""
    p = Path(path)
    try:
        return read_capped(p, cap, what="config file")
    except FileNotFoundError:
        raise ConfigFileError(
            "no such file", file=str(p), hint="check the path (configs live in experiments/)"
        ) from None


def _too_large(p: Path, what: str, size: int, cap: int) -> ConfigFileError:
    return ConfigFileError(
        f"{what} is {size} bytes, over the {cap}-byte limit",
        file=str(p),
        hint="this is not a file aiconfig wrote; replace it with the real one",
    )


def load_json_capped(
    path: str | os.PathLike[str],
    cap: int = JSON_MAX_BYTES,
    *,
    what: str = "JSON file",
    max_depth: int = JSON_MAX_DEPTH,
) -> Any:
    """Parse a JSON file read with :func:`read_capped`; nesting deeper than ``max_depth`` refused.

    Raises :class:`ConfigFileError` (never ``RecursionError`` or ``UnicodeDecodeError``).
    """
    data = read_capped(path, cap, what=what)
    return loads_json_bounded(data, str(path), what=what, max_depth=max_depth)


def loads_json_bounded(
    data: bytes | str, file: str, *, what: str = "JSON file", max_depth: int = JSON_MAX_DEPTH
) -> Any:
    """``json.loads`` that refuses undecodable text and nesting deeper than ``max_depth``."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        doc = json.loads(text)
    except RecursionError:
        doc, depth = None, max_depth + 1
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"{what} is not valid JSON: {exc}", file=file) from None
    else:
        depth = _depth(doc, max_depth)
    if depth > max_depth:
        raise ConfigFileError(
            f"{what} is nested deeper than {max_depth} levels",
            file=file,
            hint="this is not a file aiconfig wrote; replace it with the real one",
        )
    return doc


def _depth(doc: Any, limit: int) -> int:
    """Nesting depth of a parsed document, without recursion; stops once past ``limit``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest
