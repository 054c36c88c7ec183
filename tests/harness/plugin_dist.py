"""A real plugin distribution for the tests: a capture stream and pipeline steps.

``frame-tools`` 1.0.0 is installed into a temp ``site`` directory (files plus a dist-info with a
RECORD, as pip writes them); child processes see it through ``PYTHONPATH``.
"""

from __future__ import annotations

from pathlib import Path

from .util import install_dist

FRAME_TOOLS_SRC = '''
import json
import threading
import time
from pathlib import Path


class Ticker:
    """A capture stream: one JSON line every 50 ms with its time since frame 0."""
    kind = "stream"

    def __init__(self, session_dir, *, session_id, fps):
        self.path = Path(session_dir) / "ticker.jsonl"
        self.fh = self.path.open("w")
        self.stop_flag = threading.Event()
        self.count = 0
        self.thread = None

    def start(self, t0_ns):
        def loop():
            while not self.stop_flag.wait(0.05):
                t_ns = time.monotonic_ns() - t0_ns
                self.fh.write(json.dumps({"t_ns": t_ns}) + "\\n")
                self.fh.flush()
                self.count += 1
        self.thread = threading.Thread(target=loop, daemon=True)
        self.thread.start()

    def stop(self, end_ns):
        self.stop_flag.set()
        if self.thread is not None:
            self.thread.join()
        self.fh.close()
        return {"file": self.path.name, "ticks": self.count}


class Exploding:
    """A capture stream whose start fails: the session must go on without it."""
    kind = "stream"

    def __init__(self, session_dir, *, session_id, fps):
        pass

    def start(self, t0_ns):
        raise RuntimeError("sensor unplugged")

    def stop(self, end_ns):
        return None


class CloudTicker(Ticker):
    needs_network = True


def frame_count(session_dir, stats, out_dir):
    """A pipeline step: reads the session, writes a file of its own in out_dir."""
    meta = json.loads((Path(session_dir) / "metadata.json").read_text())
    (Path(out_dir) / "count.txt").write_text(str(stats["video_frames"]))
    return {"frames": stats["video_frames"], "session_id": meta["session_id"]}


frame_count.kind = "pipeline_step"


class Failing:
    kind = "pipeline_step"

    def __call__(self, session_dir, stats, out_dir):
        raise ValueError("model weights missing")
'''

ENTRY_POINTS = {
    "ticker": "frame_tools:Ticker",
    "exploding": "frame_tools:Exploding",
    "cloud_ticker": "frame_tools:CloudTicker",
    "frame_count": "frame_tools:frame_count",
    "failing_step": "frame_tools:Failing",
}


def install_frame_tools(site: Path) -> Path:
    """Install the distribution into ``site``; returns its module file."""
    install_dist(
        site, "frame-tools", "1.0.0", {"frame_tools/__init__.py": FRAME_TOOLS_SRC}, ENTRY_POINTS
    )
    return site / "frame_tools" / "__init__.py"
