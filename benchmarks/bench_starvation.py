"""Benchmark: capture under CPU starvation against the same capture on an idle machine.

Records the test window at 30 fps for ``--duration`` seconds while XTEST presses a key every
150 ms (the window repaints on each), first with nothing else running, then with a busy loop on
every core and an X client copying the whole screen in a loop (the X server loaded too). Prints
JSON per run: frames in the timeline (must be duration x fps), fresh/padded/dropped, achieved
rates, key presses injected and recorded, frame_ref mismatches, fresh grabs outside their slot
and frames showing a key pressed after their slot (both must be 0), grab lag; and the
starved/idle ratios.

    python benchmarks/bench_starvation.py --duration 60   # about 3 minutes
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/<name>.py`: import this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.capture.capture_helpers import start_xvfb
from tests.capture.starvation import check_slots, record_under_load


def one(tmp: Path, seconds: float, fps: int, *, load: bool) -> dict[str, Any]:
    run = record_under_load(tmp, seconds=seconds, fps=fps, load=load)
    if run["rc"] != 0:
        return {"error": run["stderr"].strip()[-500:]}
    figures = check_slots(Path(run["stdout"].strip()), run["presses"])
    figures["expected_frames"] = round(seconds * fps)
    figures.pop("problems", None)
    figures["fresh_outside_slot"] = len(figures["fresh_outside_slot"])
    figures["frames_showing_a_later_key"] = len(figures["frames_showing_a_later_key"])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--fps", type=int, default=30)
    args = parser.parse_args()
    xvfb, display = start_xvfb()
    os.environ["DISPLAY"] = display
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg()},
        "duration_s": args.duration,
        "fps": args.fps,
        "load": "one busy loop per core + an X client looping GetImage of the whole screen",
    }
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results["idle"] = one(Path(tmp) / "idle", args.duration, args.fps, load=False)
            results["starved"] = one(Path(tmp) / "starved", args.duration, args.fps, load=True)
    finally:
        xvfb.terminate()
        xvfb.wait()
    idle, starved = results["idle"], results["starved"]
    if "error" not in idle and "error" not in starved:
        results["ratio_starved_over_idle"] = {
            key: round(starved[key] / idle[key], 3) if idle[key] else None
            for key in ("fresh", "capture_fps", "actual_fps")
        }
    results["machine"]["load_avg_end"] = os.getloadavg()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
