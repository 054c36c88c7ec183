"""The pipeline's view of one session: the format's validator plus documented quality thresholds.

Reading and validating a session belongs to the session format
(:func:`aiconfig.sessions.validate_session`, the same checks as ``python -m capture validate``).
This module adds only what the pipeline decides: which observations make a session
**degraded**. A session is degraded when, and only when, it breaks one of the
:class:`Thresholds` (the config template's keys, documented in docs/harness.md); the
validator's notes are reported as ``warnings`` and never degrade a session by themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..sessions import ACTION_EVENT_TYPES, validate_session

__all__ = ["SessionReport", "Thresholds", "analyze_session", "degradations"]

DEFAULT_ACTIONS = ACTION_EVENT_TYPES
"""What ``actions`` counts by default: the recorder's press and scroll input rows."""


@dataclass(frozen=True)
class Thresholds:
    """Quality thresholds (from the config template); breaking one makes a session ``degraded``."""

    max_drop_rate: float = 0.01
    max_capture_jitter_ms: float = 10.0
    max_capture_lag_ms: float = 50.0
    action_event_types: tuple[str, ...] = DEFAULT_ACTIONS
    require_webcam: bool = False
    require_audio: bool = False


@dataclass
class SessionReport:
    path: str
    session_id: str | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    degraded_by: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def quality(self) -> str:
        if self.problems:
            return "invalid"
        return "degraded" if self.degraded_by else "good"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "session_id": self.session_id,
            "valid": self.valid,
            "quality": self.quality,
            "problems": self.problems,
            "degraded_by": self.degraded_by,
            "warnings": self.warnings,
            "stats": self.stats,
            **({"steps": self.steps} if self.steps else {}),
        }


def degradations(stats: dict[str, Any], thresholds: Thresholds) -> list[str]:
    """The thresholds a valid session's ``stats`` break, one line each."""
    out = []
    # Dropped frames are rows too (the previous picture repeated): the rate is over all frames.
    drop_rate = float(stats.get("drop_rate") or 0.0)
    if drop_rate > thresholds.max_drop_rate:
        out.append(f"drop rate {drop_rate:.4f} > max_drop_rate {thresholds.max_drop_rate}")
    timing = stats.get("timing") or {}
    jitter = timing.get("capture_jitter_ms") or 0.0
    if jitter > thresholds.max_capture_jitter_ms:
        out.append(
            f"capture jitter {jitter:.2f} ms > max_capture_jitter_ms "
            f"{thresholds.max_capture_jitter_ms}"
        )
    lag95 = timing.get("capture_lag_ms_p95")
    if lag95 is not None and lag95 > thresholds.max_capture_lag_ms:
        out.append(
            f"capture lag p95 {lag95} ms > max_capture_lag_ms {thresholds.max_capture_lag_ms}"
        )
    return out


def analyze_session(
    path: Path, *, thresholds: Thresholds, batch_rows: int = 65536
) -> SessionReport:
    """Validate one session (never raises for bad data), then apply ``thresholds``.

    Single-threaded (the video is demuxed, not decoded); the pipeline runs sessions in parallel.
    """
    check = validate_session(path, batch_rows=batch_rows)
    rep = SessionReport(str(path), check.session_id, list(check.problems), list(check.notes))
    if not check.stats:
        return rep
    stats = dict(check.stats)
    counts: dict[str, int] = stats.get("input_counts") or {}
    actions = sum(counts.get(t, 0) for t in thresholds.action_event_types)
    duration = float(stats.get("duration_s") or 0.0)
    stats["actions"] = actions
    stats["actions_per_minute"] = round(actions * 60.0 / duration, 2) if duration > 0 else None
    rep.stats = stats
    if thresholds.require_webcam and stats.get("webcam_frames") is None:
        rep.problems.append("missing webcam.mp4 (require_webcam)")
    if thresholds.require_audio and stats.get("audio") is None:
        rep.problems.append("missing audio.wav (require_audio)")
    if rep.valid:
        rep.degraded_by = degradations(stats, thresholds)
    return rep
