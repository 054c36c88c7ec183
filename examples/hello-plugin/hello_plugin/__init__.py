"""The smallest aiconfig plugin distribution (see docs/harness.md, "Plugins").

* ``null_stream``: a capture stream (``python -m capture --plugin null_stream``). It records
  nothing but its own start and stop times, as ``null_stream.json`` in the session directory.
* ``frame_count``: a pipeline step (``aiconfig pipeline --step frame_count``). It writes the
  session's video frame count to ``count.txt`` in its own output directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["NullStream", "frame_count"]


class NullStream:
    """A capture stream plugin: built per session, started at frame 0, stopped at the end."""

    kind = "stream"
    needs_network = False

    def __init__(self, session_dir: Path, *, session_id: str, fps: int) -> None:
        self.path = Path(session_dir) / "null_stream.json"
        self.session_id = session_id
        self.fps = fps
        self.t0_ns = 0

    def start(self, t0_ns: int) -> None:
        self.t0_ns = t0_ns  # frame i is presented at t0_ns + i * 1e9 / fps (CLOCK_MONOTONIC)

    def stop(self, end_ns: int) -> dict[str, Any]:
        # end_ns: the end of the recording on the same clock (0 if it never started)
        duration_s = max(0, end_ns - self.t0_ns) / 1e9 if self.t0_ns else 0.0
        record = {"session_id": self.session_id, "fps": self.fps, "duration_s": duration_s}
        self.path.write_text(json.dumps(record) + "\n", encoding="utf-8")
        return {"file": self.path.name}  # stored in metadata.json: streams.null_stream.info


def frame_count(session_dir: Path, stats: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """A pipeline step: called once per valid session; the result goes into the report."""
    (Path(out_dir) / "count.txt").write_text(f"{stats['video_frames']}\n", encoding="utf-8")
    return {"frames": stats["video_frames"]}


frame_count.kind = "pipeline_step"  # type: ignore[attr-defined]
