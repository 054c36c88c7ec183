"""Harness costs against peers, in one run: session analysis, manifest hashing, offline guard.

Prints one JSON object. Run: ``python -m benchmarks.bench_harness``.

* ``pipeline``: :func:`analyze_session` on a generated 30 s session against its peer, the same
  checks done with the tools themselves (``ffprobe -count_packets`` for the video plus a full
  ``pyarrow.parquet.read_table`` of the events); the peer pays a process start (~60 ms).
* ``manifest``: :func:`collect_artifacts` hashing a 256 MiB file against ``sha256sum``.
* ``offline_guard``: the audit hook fires on every audited call in the process (``open``,
  ``socket.connect`` ...): 20,000 ``open()`` calls and 2,000 loopback connects with the guard on
  against a process without it.
* ``capture_start``: time from starting ``python -m capture`` (on a private 1920x1080 Xvfb) to
  its ready file (run settings checked, libraries loaded, out dir claimed, screen lock taken,
  session open, clock running), with no budget and under ``AP_CPU_LIMIT=1
  AP_MEM_LIMIT_MB=512``, against the time ``ffmpeg -f x11grab ... -frames:v 1`` takes to start,
  grab and encode one frame and exit (the peer has no readiness signal of its own).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/<name>.py`: import this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._util import process_ms, python, time_ms

REPO = Path(__file__).resolve().parent.parent

GUARD_PROBE = r"""
import socket, sys, time
if sys.argv[1] == "on":
    from aiconfig.harness import set_offline
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


def _time_to_ready(display: str, tmp: Path, i: int, **limits: str) -> float:
    ready = tmp / f"ready-{i}.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "DISPLAY": display, **limits}
    env = {k: v for k, v in env.items() if k not in ("AP_RUN_ID", "AP_OUT_DIR")}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [python(), "-m", "capture", "--allow-any", "--no-input", "--quiet", "--run-id", f"b{i}",
         "--out", str(tmp / f"cap-{i}"), "--ready-file", str(ready), "--lock-dir",
         str(tmp / "locks")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    while not ready.exists():
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"capture exited early: {err}")
        time.sleep(0.002)
    elapsed = (time.perf_counter() - t0) * 1e3
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"capture exited {proc.returncode}")
    return elapsed


def bench_capture_start(tmp: Path, repeat: int = 5) -> dict[str, Any]:
    from tests.capture.capture_helpers import start_xvfb

    xvfb, display = start_xvfb()
    try:
        ours: list[float] = []
        budgeted: list[float] = []
        peer: list[float] = []
        for i in range(repeat):
            ours.append(_time_to_ready(display, tmp, 2 * i))
            budgeted.append(
                _time_to_ready(display, tmp, 2 * i + 1, AP_CPU_LIMIT="1", AP_MEM_LIMIT_MB="512")
            )
            t0 = time.perf_counter()
            subprocess.run(
                ["ffmpeg", "-v", "error", "-y", "-f", "x11grab", "-framerate", "30",
                 "-video_size", "1920x1080", "-i", display, "-frames:v", "1", "-c:v", "libx264",
                 "-preset", "superfast", "-pix_fmt", "yuv420p", str(tmp / f"peer-{i}.mp4")],
                check=True, capture_output=True,
            )  # fmt: skip
            peer.append((time.perf_counter() - t0) * 1e3)
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)
    med = {k: round(statistics.median(v), 1) for k, v in
           {"ours": ours, "budgeted": budgeted, "peer": peer}.items()}  # fmt: skip
    return {
        "time_to_ready_ms": med["ours"],
        "time_to_ready_budget_1cpu_512mb_ms": med["budgeted"],
        "peer_ffmpeg_first_frame_ms": med["peer"],
        "ratio": round(med["ours"] / med["peer"], 2),
        "ratio_budgeted": round(med["budgeted"] / med["peer"], 2),
    }


def main() -> None:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as d:
        tmp = Path(d)
        result = {
            "pipeline": bench_pipeline(tmp),
            "manifest": bench_manifest(tmp),
            "offline_guard": bench_guard(),
            "capture_start": bench_capture_start(tmp),
            "cpus": len(os.sched_getaffinity(0)),
            "python": sys.version.split()[0],
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
