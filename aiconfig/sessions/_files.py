"""Writing result files atomically (temp file beside the target, then rename)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ConfigFileError

__all__ = ["write_parquet_atomic", "write_text_atomic"]


def _replace(tmp: Path, path: Path) -> None:
    try:
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet_atomic(table: Any, path: Path) -> None:
    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, str(tmp), compression="snappy")
        _replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigFileError(f"cannot write ({exc.strerror or exc})", file=str(path)) from None


def write_text_atomic(text: str, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        _replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigFileError(f"cannot write ({exc.strerror or exc})", file=str(path)) from None
