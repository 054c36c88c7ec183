"""Watching what reads a session: opens of ``events.parquet`` and action binnings, counted per
session directory (in this process)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from aiconfig.sessions import _actions


def count_event_reads(monkeypatch: pytest.MonkeyPatch) -> Counter[Path]:
    """Every ``pyarrow.parquet`` open or whole-table read of a session's ``events.parquet``
    (what :class:`~aiconfig.sessions.Session` reads it with), by session directory."""
    reads: Counter[Path] = Counter()
    real_file, real_table = pq.ParquetFile, pq.read_table

    def seen(source: Any) -> None:
        if isinstance(source, str | Path) and Path(source).name == "events.parquet":
            reads[Path(source).parent.resolve()] += 1

    class CountedFile(real_file):  # type: ignore[misc, valid-type]
        def __init__(self, source: Any, *args: Any, **kwargs: Any) -> None:
            seen(source)
            super().__init__(source, *args, **kwargs)

    def read_table(source: Any, *args: Any, **kwargs: Any) -> Any:
        seen(source)
        return real_table(source, *args, **kwargs)

    monkeypatch.setattr(pq, "ParquetFile", CountedFile)
    monkeypatch.setattr(pq, "read_table", read_table)
    return reads


def count_binning(monkeypatch: pytest.MonkeyPatch) -> Counter[Path]:
    """Every :func:`~aiconfig.sessions.bin_actions` call, by session directory, wherever the
    session library calls it from."""
    calls: Counter[Path] = Counter()
    real = _actions.bin_actions

    def counted(session: Any, *args: Any, **kwargs: Any) -> Any:
        calls[Path(session.path).resolve()] += 1
        return real(session, *args, **kwargs)

    for name, module in list(sys.modules.items()):
        if name.startswith("aiconfig.sessions") and getattr(module, "bin_actions", None) is real:
            monkeypatch.setattr(module, "bin_actions", counted)
    return calls
