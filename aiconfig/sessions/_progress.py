"""Progress for long loops: a tqdm bar on a terminal (stderr), nothing otherwise."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

__all__ = ["progress"]


def progress(items: Iterable[T], *, desc: str, unit: str, enabled: bool = True) -> Iterator[T]:
    """``items`` with a progress bar when ``enabled``, stderr is a terminal and tqdm is
    installed (never under ``--json``: output stays machine-readable)."""
    if not enabled or not sys.stderr.isatty():
        yield from items
        return
    try:
        from tqdm import tqdm
    except ImportError:  # the bar is a nicety: the 'sessions' extra installs tqdm
        yield from items
        return
    yield from tqdm(items, desc=desc, unit=unit, file=sys.stderr, leave=False)
