"""Finding the target window and following it (the seed's ``windows.py``).

The window interface and the per-platform backends live in :mod:`capture.platforms` (one module
per platform, only the one in use imported); this module keeps the names the recorder uses.
"""

from __future__ import annotations

from .platforms import (
    Rect,
    WindowBackend,
    WindowGoneError,
    WindowInfo,
    check_display,
    open_backend,
)

__all__ = [
    "Rect",
    "WindowBackend",
    "WindowGoneError",
    "WindowInfo",
    "check_display",
    "open_backend",
]
