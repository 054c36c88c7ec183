"""Totals and distributions over catalog rows (``aiconfig sessions stats``)."""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["catalog_stats", "render_stats"]


def _dist(values: list[float]) -> dict[str, float | None]:
    import numpy as np

    if not values:
        return {"min": None, "p50": None, "p95": None, "max": None, "mean": None}
    a = np.asarray(values, dtype=float)
    return {
        "min": round(float(a.min()), 5),
        "p50": round(float(np.percentile(a, 50)), 5),
        "p95": round(float(np.percentile(a, 95)), 5),
        "max": round(float(a.max()), 5),
        "mean": round(float(a.mean()), 5),
    }


def catalog_stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Sessions by status, hours, frames, events per type, rate and fps distributions."""
    ok = [r for r in rows if r["problem"] is None and r["frame_count"] is not None]
    events: Counter[str] = Counter()
    for r in ok:
        events.update(r["event_counts"] or {})
    frames = sum(int(r["frame_count"]) for r in ok)
    padded = sum(int(r["padded_frames"] or 0) for r in ok)
    dropped = sum(int(r["dropped_frames"] or 0) for r in ok)
    return {
        "sessions": len(rows),
        "by_status": dict(sorted(Counter(str(r["status"]) for r in rows).items())),
        "with_problems": sum(1 for r in rows if r["problem"] is not None),
        "hours_recorded": round(sum(float(r["duration_s"] or 0) for r in ok) / 3600.0, 4),
        "frames": frames,
        "padded_frames": padded,
        "dropped_frames": dropped,
        "padded_rate": round(padded / frames, 6) if frames else 0.0,
        "dropped_rate": round(dropped / frames, 6) if frames else 0.0,
        "input_events": sum(int(r["input_events"] or 0) for r in ok),
        "events_by_type": dict(sorted(events.items())),
        "focus_lost_s": round(sum(float(r["focus_lost_s"] or 0) for r in ok), 3),
        "distributions": {
            "duration_s": _dist([float(r["duration_s"] or 0) for r in ok]),
            "actual_fps": _dist([float(r["actual_fps"]) for r in ok if r["actual_fps"]]),
            "padded_rate": _dist(
                [int(r["padded_frames"] or 0) / r["frame_count"] for r in ok if r["frame_count"]]
            ),
            "dropped_rate": _dist(
                [int(r["dropped_frames"] or 0) / r["frame_count"] for r in ok if r["frame_count"]]
            ),
        },
    }


def render_stats(stats: dict[str, Any]) -> str:
    """The statistics as aligned text for a terminal."""
    by_status = ", ".join(f"{k} {v}" for k, v in stats["by_status"].items()) or "none"
    lines = [
        f"sessions        {stats['sessions']} ({by_status}; "
        f"{stats['with_problems']} with problems)",
        f"recorded        {stats['hours_recorded']:.3f} h, {stats['frames']} frames",
        f"padded          {stats['padded_frames']} frames ({stats['padded_rate']:.4%})",
        f"dropped         {stats['dropped_frames']} frames ({stats['dropped_rate']:.4%})",
        f"input events    {stats['input_events']}",
        f"focus lost      {stats['focus_lost_s']:.1f} s",
        "events by type  "
        + (", ".join(f"{k} {v}" for k, v in stats["events_by_type"].items()) or "none"),
        "",
        f"{'distribution':<14}{'min':>10}{'p50':>10}{'p95':>10}{'max':>10}{'mean':>10}",
    ]
    for name, d in stats["distributions"].items():
        cells = "".join(f"{'-' if d[k] is None else f'{d[k]:.4g}':>10}" for k in d)
        lines.append(f"{name:<14}{cells}")
    return "\n".join(lines)
