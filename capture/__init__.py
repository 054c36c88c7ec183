"""System 0 capture: screen video, input events, system audio and webcam, frame-synchronised.

Public API (imported lazily, so ``import capture`` stays cheap)::

    from capture import run_capture, validate_session, recover_session
    result = run_capture(cfg.capture)            # cfg: a loaded aiconfig.AIConfig
    problems = validate_session(result.path)     # [] when valid

The CLI is ``python -m capture`` (see ``capture/__main__.py``) and ``aiconfig capture``.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "FrameRecord",
    "InputEvent",
    "SessionResult",
    "recover_session",
    "run_capture",
    "validate_session",
]

_WHERE = {
    "FrameRecord": "_timeline",
    "InputEvent": "_events",
    "SessionResult": "_recording",
    "recover_session": "_recover",
    "run_capture": "_recording",
    "validate_session": "_validate",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'capture' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
