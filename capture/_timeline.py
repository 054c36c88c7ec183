"""The frame timeline: which frame is on screen when, and what was grabbed for it.

Frame ``i`` is presented at ``t_ns(i) = t0_ns + i * 1e9 / fps`` (integer nanoseconds, monotonic
clock). The video's PTS is ``i`` in a ``1/fps`` time base, so video time and event time line up
exactly. Every slot of the timeline gets one video frame:

* a **fresh** frame, grabbed at ``t_capture_ns`` close to ``t_ns``;
* a **padded** frame (``is_duplicate``) when the grabber missed the slot (it was late by a whole
  period): the previous picture is repeated, ``padded_frames`` counts them;
* a **dropped** frame (``is_duplicate`` too) when a fresh grab had to be thrown away because the
  convert/encode pipeline was full, or because the grab ended after its slot (under CPU
  starvation: its pixels may already be the next slot's): the previous picture is repeated,
  ``dropped_frames`` counts them.

A fresh frame's ``t_capture_ns`` always lies inside its own slot, ``t_ns(i) <= t_capture_ns <
t_ns(i + 1)``: lateness is judged right before the grab, and a grab that starts after its slot
ended belongs to the slot it starts in.

An input event at monotonic time ``t`` refers to ``frame_ref = floor((t - t0_ns) * fps / 1e9)``,
the frame on screen at that instant.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ClockMapping", "FrameClock", "FrameRecord", "FrameStats"]


@dataclass(frozen=True, slots=True)
class FrameRecord:
    """Precise frame metadata with nanosecond timing (the seed's ``FrameRecord``)."""

    frame_index: int
    t_ns: int
    t_capture_ns: int | None
    is_duplicate: bool = False


@dataclass(frozen=True, slots=True)
class ClockMapping:
    """One simultaneous reading of the monotonic and wall clocks, taken at session start.

    ``wall_ns = wall_ns0 + (monotonic_ns - monotonic_ns0)``.
    """

    monotonic_ns: int
    wall_ns: int
    uncertainty_ns: int

    @classmethod
    def now(cls) -> ClockMapping:
        """Read both clocks several times and keep the tightest bracket."""
        best: tuple[int, int, int] | None = None
        for _ in range(5):
            m0 = time.monotonic_ns()
            w = time.time_ns()
            m1 = time.monotonic_ns()
            if best is None or m1 - m0 < best[2]:
                best = ((m0 + m1) // 2, w, m1 - m0)
        if best is None:  # pragma: no cover - the loop above always runs
            raise RuntimeError("clock mapping failed")
        return cls(monotonic_ns=best[0], wall_ns=best[1], uncertainty_ns=best[2])

    def to_wall(self, monotonic_ns: int) -> int:
        return self.wall_ns + (monotonic_ns - self.monotonic_ns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "clock": "CLOCK_MONOTONIC",
            "monotonic_ns": self.monotonic_ns,
            "wall_ns": self.wall_ns,
            "uncertainty_ns": self.uncertainty_ns,
        }


@dataclass(frozen=True, slots=True)
class FrameClock:
    """Maps frame indices to presentation times and back, at an integer fps."""

    t0_ns: int
    fps: int

    def t_ns(self, index: int) -> int:
        return self.t0_ns + (index * 1_000_000_000) // self.fps

    def index_at(self, t_ns: int) -> int:
        """Index of the frame on screen at ``t_ns``: ``t_ns(i) <= t_ns < t_ns(i + 1)``.

        Negative before the first frame. (``t_ns(i)`` is rounded down to whole nanoseconds, so
        the plain quotient can be one short right at a frame boundary; correct for that.)
        """
        index = ((t_ns - self.t0_ns) * self.fps) // 1_000_000_000
        if self.t_ns(index + 1) <= t_ns:
            index += 1
        return index


@dataclass(slots=True)
class FrameStats:
    """Running counts for one video stream; cheap to snapshot for the status line."""

    frames: int = 0
    fresh: int = 0
    padded: int = 0
    dropped: int = 0
    late_grabs: int = 0  # dropped because the grab ended after its slot
    first_capture_ns: int | None = None
    last_capture_ns: int | None = None
    failed_at_ns: int | None = None
    errors: list[str] = field(default_factory=list)
