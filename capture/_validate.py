"""``capture validate SESSION``: the session format's one validator, as the recorder uses it.

The checks themselves live with the format (:func:`aiconfig.sessions.validate_session`), so
``python -m capture validate``, ``aiconfig sessions validate`` and the pipeline give the same
verdict on the same session.
"""

from __future__ import annotations

from pathlib import Path

from aiconfig.sessions import VideoInfo, probe_video
from aiconfig.sessions import validate_session as _validate

__all__ = ["VideoInfo", "probe_video", "validate_session"]


def validate_session(session: Path) -> list[str]:
    """Every problem found in ``session`` (empty when it is valid)."""
    return _validate(session).problems
