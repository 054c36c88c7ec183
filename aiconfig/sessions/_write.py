"""Writing result files (index, query results, reports) through the one file-writing rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._errors import ConfigFileError
from .._files import atomic_path, atomic_write

__all__ = ["write_parquet_atomic", "write_text_atomic"]


def write_parquet_atomic(table: Any, path: Path, *, hint: str | None = None) -> None:
    """``table`` as Snappy Parquet at ``path``: the old file or the whole new one, never part."""
    import pyarrow.parquet as pq

    try:
        with atomic_path(path) as tmp:
            pq.write_table(table, str(tmp), compression="snappy")
    except OSError as exc:
        raise ConfigFileError(
            f"cannot write ({exc.strerror or exc})", file=str(path), hint=hint
        ) from None


def write_text_atomic(text: str, path: Path) -> None:
    try:
        atomic_write(path, text)
    except OSError as exc:
        raise ConfigFileError(f"cannot write ({exc.strerror or exc})", file=str(path)) from None
