"""Harness costs against peers, in one run: session analysis, manifest hashing, offline guard.

Prints one JSON object. Run: ``python -m benchmarks.bench_harness``.

* ``pipeline``: :func:`analyze_session` on a generated 30 s session against its peer, the same
  checks done with the tools themselves (``ffprobe -count_packets`` for the video plus a full
  ``pyarrow.parquet.read_table`` of the events); the peer pays a process start (~60 ms).
* ``manifest``: :func:`collect_artifacts` hashing a 256 MiB file against ``sha256sum``.
* ``offline_guard``: the audit hook fires on every audited call in the process (``open``,
  ``socket.connect`` ...): 20,000 ``open()`` calls and 2,000 loopback connects with the guard on
  against a process without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._util import process_ms, python, time_ms

REPO = Path(__file__).resolve().parent.parent

GUARD_PROBE = r"""
import socket, sys, time
if sys.argv[1] == "on":
    from aiconfig.harness.network import set_offline
    set_offline(True)
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(4096)
t0 = time.perf_counter()
for _ in range(20000):
    open("/dev/null").close()
t1 = time.perf_counter()
for _ in range(2000):
    c = socket.create_connection(srv.getsockname()); a, _ = srv.accept(); c.close(); a.close()
t2 = time.perf_counter()
print((t1 - t0) * 1e3, (t2 - t1) * 1e3)
"""


def bench_pipeline(tmp: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from aiconfig.harness.sessions import Thresholds, analyze_session
    from tests.harness.sessions import make_session

    session = make_session(tmp, "session_20261121_160000", seconds=30, size=(640, 360),
                           inputs=1500, pad_every=50, audio=True)  # fmt: skip

    def peer() -> None:
        subprocess.run(
            ["ffprobe", "-v", "error", "-count_packets", "-select_streams", "v:0",
             "-show_entries", "stream=nb_read_packets,codec_name,width,height",
             "-of", "json", str(session / "frames.mp4")],
            check=True, capture_output=True,
        )  # fmt: skip
        pq.read_table(session / "events.parquet")

    ours = time_ms(lambda: analyze_session(session, thresholds=Thresholds()), repeat=10)
    theirs = time_ms(peer, repeat=10)
    return {
        "frames": 900,
        "analyze_session": ours,
        "peer_ffprobe_plus_read_table": theirs,
        "ratio": round(ours["median_ms"] / theirs["median_ms"], 2),
    }


def bench_manifest(tmp: Path) -> dict[str, Any]:
    from aiconfig.harness.manifest import collect_artifacts

    out = tmp / "out"
    out.mkdir()
    with open(out / "big.bin", "wb") as fh:
        for _ in range(256):
            fh.write(os.urandom(1024 * 1024))
    ours = time_ms(lambda: collect_artifacts(out), repeat=3, warmup=1)
    theirs = process_ms(["sha256sum", str(out / "big.bin")], repeat=3)
    return {
        "mib": 256,
        "collect_artifacts": ours,
        "peer_sha256sum": theirs,
        "ratio": round(ours["median_ms"] / theirs["median_ms"], 2),
        "mib_per_s": round(256 / (ours["median_ms"] / 1e3), 1),
    }


def bench_guard() -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runs: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
    for _ in range(3):
        for mode in ("off", "on"):
            out = subprocess.run([python(), "-c", GUARD_PROBE, mode], env=env, check=True,
                                 capture_output=True, text=True).stdout.split()  # fmt: skip
            runs[mode].append((float(out[0]), float(out[1])))
    best = {m: (min(r[0] for r in v), min(r[1] for r in v)) for m, v in runs.items()}
    return {
        "open_20k_ms": {"off": round(best["off"][0], 1), "on": round(best["on"][0], 1)},
        "open_ratio": round(best["on"][0] / best["off"][0], 3),
        "loopback_connect_2k_ms": {"off": round(best["off"][1], 1), "on": round(best["on"][1], 1)},
        "connect_ratio": round(best["on"][1] / best["off"][1], 3),
    }


def main() -> None:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as d:
        tmp = Path(d)
        result = {
            "pipeline": bench_pipeline(tmp),
            "manifest": bench_manifest(tmp),
            "offline_guard": bench_guard(),
            "cpus": len(os.sched_getaffinity(0)),
            "python": sys.version.split()[0],
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
