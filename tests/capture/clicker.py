"""Writes short clicks into the PulseAudio sink ``capsink`` at given monotonic instants.

``python clicker.py SECONDS T1 T2 ...`` streams silence for SECONDS and, inside the PortAudio
callback that runs at or just before each ``Ti`` (ns), writes a 1 ms full-scale click at the
sample that corresponds to ``Ti`` counted from the callback's own time: the click enters the sink
at ``Ti``. Prints ``CLICK Ti`` per click written.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

os.environ["PULSE_SINK"] = "capsink"

import sounddevice as sd

RATE = 44100


def main() -> int:
    seconds = float(sys.argv[1])
    pending = sorted(int(t) for t in sys.argv[2:])

    def callback(outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        now = time.monotonic_ns()
        outdata[:] = 0
        while pending and pending[0] < now + frames * 1_000_000_000 // RATE:
            target = pending.pop(0)
            k = max(0, round((target - now) * RATE / 1e9))
            outdata[k : k + 44, :] = 30000
            print(f"CLICK {target}", flush=True)

    with sd.OutputStream(
        device="pulse",
        samplerate=RATE,
        channels=2,
        dtype="int16",
        blocksize=441,
        latency="low",
        callback=callback,
    ):
        time.sleep(seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
