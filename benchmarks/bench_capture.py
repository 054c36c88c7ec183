"""Benchmark: ``python -m capture`` against ``ffmpeg -f x11grab`` on the same moving screen.

Starts a private Xvfb (1920x1080) with a painter that moves 80 colour-cycling rectangles
(leaving trails) at 60 Hz, then records the full screen with each tool in turn, at 30 and 60
fps, for ``--duration`` seconds, and prints JSON: achieved fps (fresh frames per second), frames
that were not fresh (ours: padded + dropped; ffmpeg: target minus the packets x11grab delivered,
its constant-frame-rate output pads the rest with duplicates), CPU seconds per recorded second
(user + system of the recorder's process tree), and our/ffmpeg ratios. Then it records a test
window while XTEST injects key events at known monotonic times and reports how late the recorded
``t_ns`` are (p50/p99/max), missing events, and wrong ``frame_ref`` values.

It also measures the durability policy (fsync every 1 s, the default) against the same
recording without it (``--fsync-interval 0``): CPU and achieved-fps ratios, time per fsync round.

    python benchmarks/bench_capture.py --duration 60   # about 9 minutes
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/<name>.py`: import this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.capture.capture_helpers import start_xvfb

REPO = Path(__file__).resolve().parent.parent

PAINTER = r"""
import random, sys, time
from Xlib import X, display
d = display.Display()
s = d.screen()
W, H = s.width_in_pixels, s.height_in_pixels
win = s.root.create_window(0, 0, W, H, 0, s.root_depth, X.InputOutput, X.CopyFromParent,
                           background_pixel=s.black_pixel, override_redirect=True)
win.map()
gc = win.create_gc()
rng = random.Random(1)
rects = [[rng.randrange(W), rng.randrange(H), rng.randrange(20, 200), rng.randrange(20, 160),
          rng.randrange(-12, 12), rng.randrange(-12, 12), rng.randrange(1 << 24)]
         for _ in range(80)]
print("ready", flush=True)
period = 1 / 60
t = time.monotonic()
while True:
    for r in rects:
        r[0] = (r[0] + r[4]) % W
        r[1] = (r[1] + r[5]) % H
        r[6] = (r[6] + 0x010203) & 0xFFFFFF
        gc.change(foreground=r[6])
        win.fill_rectangle(gc, r[0], r[1], r[2], r[3])
    d.sync()
    t += period
    time.sleep(max(0.0, t - time.monotonic()))
"""


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_ours(
    display: str, fps: int, duration: int, preset: str, out: Path, fsync_s: float = 1.0
) -> dict[str, Any]:
    env = dict(os.environ, DISPLAY=display, PYTHONPATH=str(REPO))
    cpu0 = children_cpu()
    wall0 = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "capture",
            "--allow-any",
            "--no-input",
            "--quiet",
            "--duration",
            str(duration),
            "--fps",
            str(fps),
            "--preset",
            preset,
            "--fsync-interval",
            str(fsync_s),
            "--min-free-minutes",
            "0",
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - wall0
    cpu = children_cpu() - cpu0
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-500:]}
    session = Path(proc.stdout.strip())
    meta = json.loads((session / "metadata.json").read_text())
    frames = meta["frame_count"]
    not_fresh = meta["padded_frames"] + meta["dropped_frames"]
    return {
        "tool": f"capture (PyAV libx264 {preset})",
        "fps_target": fps,
        "frames": frames,
        "fresh_frames": frames - not_fresh,
        "achieved_fps": round((frames - not_fresh) / meta["duration_s"], 2),
        "padded": meta["padded_frames"],
        "dropped": meta["dropped_frames"],
        "fresh_ratio": round((frames - not_fresh) / max(frames, 1), 4),
        "cpu_s_per_s": round(cpu / meta["duration_s"], 3),
        "wall_s": round(wall, 2),
        "valid": meta["validation"]["ok"],
        "fsync": meta.get("storage", {}).get("fsync"),
    }


def run_ffmpeg(display: str, fps: int, duration: int, out: Path) -> dict[str, Any]:
    """The peer, exactly as the issue states it (plus -loglevel verbose for its input count)."""
    target = out / f"ffmpeg_{fps}.mp4"
    cpu0 = children_cpu()
    proc = subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-nostdin",
            "-y",
            "-loglevel",
            "verbose",
            "-f",
            "x11grab",
            "-framerate",
            str(fps),
            "-video_size",
            "1920x1080",
            "-i",
            display,
            "-t",
            str(duration),
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            str(target),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    cpu = children_cpu() - cpu0
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-500:]}
    # Frames x11grab really grabbed (ffmpeg's cfr output pads the rest with duplicates).
    read = re.findall(r"Input stream #0:0 \(video\): (\d+) packets read", proc.stderr)
    grabbed = min(int(read[-1]), fps * duration) if read else 0
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_packets",
            "-show_entries",
            "stream=nb_read_packets",
            "-of",
            "csv=p=0",
            str(target),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    frames = int(probe.stdout.strip())
    return {
        "tool": "ffmpeg x11grab libx264 veryfast",
        "fps_target": fps,
        "frames": frames,
        "fresh_frames": grabbed,
        "achieved_fps": round(grabbed / duration, 2),
        "not_fresh": fps * duration - grabbed,
        "fresh_ratio": round(grabbed / (fps * duration), 4),
        "cpu_s_per_s": round(cpu / duration, 3),
    }


def _open_test_window(env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    """The test window (640x360 at 100,100, titled like the game) and its X window id."""
    win = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "tests" / "capture" / "testwin.py"),
            "League of Legends",
            "100",
            "100",
            "640",
            "360",
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert win.stdout is not None
    return win, int(win.stdout.readline().split()[1])


def _close_test_window(win: subprocess.Popen[str]) -> None:
    win.terminate()
    win.wait()
    if win.stdout is not None:
        win.stdout.close()


def _wait_for_session(proc: subprocess.Popen[str], out: Path) -> str | None:
    """Wait until the recording has started (its ``metadata.json`` exists); the recorder's
    error when it exited first."""
    while not list(out.glob("session_*/metadata.json")):
        if proc.poll() is not None:
            return proc.communicate()[1].strip()[-500:]
        time.sleep(0.02)
    return None


def _inject_keys(d: Any, code: int, events: int) -> list[tuple[str, int]]:
    """``events`` alternating presses and releases of ``code`` through XTEST, 20-30 ms apart;
    each with the monotonic time just before it was sent."""
    import random

    from Xlib import X
    from Xlib.ext import xtest

    rng = random.Random(0)
    injected: list[tuple[str, int]] = []
    for i in range(events):
        kind = X.KeyPress if i % 2 == 0 else X.KeyRelease
        before = time.monotonic_ns()
        xtest.fake_input(d, kind, code)
        d.sync()
        injected.append(("key_press" if i % 2 == 0 else "key_release", before))
        time.sleep(0.02 + rng.random() * 0.01)
    return injected


def _input_timing_report(events_path: Path, injected: list[tuple[str, int]]) -> dict[str, Any]:
    """Match each injected key event to the next recorded one of its kind at or after it: how
    late its ``t_ns`` is, whether any is missing, and whether its ``frame_ref`` is the frame
    shown at that time."""
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(events_path).to_pydict()
    frames = np.array(
        [t for t, k in zip(table["t_ns"], table["event_type"], strict=True) if k == "frame"]
    )
    recorded = [
        (k, t, r)
        for k, t, r, s in zip(
            table["event_type"], table["t_ns"], table["frame_ref"], table["stream"], strict=True
        )
        if s == "input"
    ]
    errors, missing, bad_refs, cursor = [], 0, 0, 0
    for kind, before in injected:
        while cursor < len(recorded) and not (
            recorded[cursor][0] == kind and recorded[cursor][1] >= before
        ):
            cursor += 1
        if cursor == len(recorded):
            missing += 1
            continue
        _, t_rec, ref = recorded[cursor]
        errors.append((t_rec - before) / 1e6)
        if ref != int(np.searchsorted(frames, t_rec, side="right")) - 1:
            bad_refs += 1
        cursor += 1
    ms = np.array(errors) if errors else np.array([float("nan")])
    return {
        "injected": len(injected),
        "recorded": len(errors),
        "missing": missing,
        "frame_ref_mismatches": bad_refs,
        "t_ns_minus_injection_ms": {
            "p50": round(float(np.percentile(ms, 50)), 3),
            "p99": round(float(np.percentile(ms, 99)), 3),
            "max": round(float(ms.max()), 3),
        },
    }


def run_input_timing(display: str, out: Path, events: int) -> dict[str, Any]:
    """Record the test window while XTEST injects ``events`` key presses/releases at known
    monotonic times: how late is each recorded ``t_ns``, and is every ``frame_ref`` right?"""
    from Xlib import XK, X
    from Xlib import display as xdisplay

    env = dict(os.environ, DISPLAY=display, PYTHONPATH=str(REPO))
    win, handle = _open_test_window(env)
    d: Any = xdisplay.Display(display)
    d.create_resource_object("window", handle).set_input_focus(X.RevertToParent, X.CurrentTime)
    d.sync()
    code = d.keysym_to_keycode(XK.string_to_keysym("a"))
    out = out / "input"
    duration = int(events * 0.035) + 4
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "capture",
            "--quiet",
            "--duration",
            str(duration),
            "--out",
            str(out),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        error = _wait_for_session(proc, out)
        if error is not None:
            return {"error": error}
        time.sleep(0.3)
        injected = _inject_keys(d, code, events)
        stdout, _ = proc.communicate(timeout=duration + 60)
    finally:
        _close_test_window(win)
        d.close()
    return _input_timing_report(Path(stdout.strip()) / "events.parquet", injected)


def run_fsync_cost(display: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """The durability policy's cost: the default recording (fsync every 1 s) against the same
    recording that leaves flushing to the OS (``--fsync-interval 0``), alternated."""
    runs: dict[str, list[dict[str, Any]]] = {"fsync_1s": [], "fsync_off": []}
    for _ in range(args.fsync_runs):
        for name, interval in (("fsync_1s", 1.0), ("fsync_off", 0.0)):
            runs[name].append(run_ours(display, 30, args.duration, "superfast", out, interval))
    ok = all("error" not in r for rs in runs.values() for r in rs)
    result: dict[str, Any] = {"runs": runs}
    if ok:

        def mean(name: str, key: str) -> float:
            return sum(float(r[key]) for r in runs[name]) / len(runs[name])

        result["ratio_fsync_over_off"] = {
            key: round(mean("fsync_1s", key) / max(mean("fsync_off", key), 1e-9), 3)
            for key in ("cpu_s_per_s", "achieved_fps")
        }
        syncs = [r["fsync"] for r in runs["fsync_1s"] if r.get("fsync")]
        if syncs:
            result["fsync_seconds_per_round_mean"] = round(
                sum(s["seconds_total"] for s in syncs) / max(sum(s["rounds"] for s in syncs), 1),
                5,
            )
            result["fsync_seconds_max"] = max(s["seconds_max"] for s in syncs)
    return result


def _stop_once(display: str, out: Path, *, input_on: bool) -> dict[str, float]:
    """One 2 s recording: seconds from the end of the recording (metadata ``end_t_ns``) to the
    ``capture.finished`` log event, and to the process's exit."""
    from datetime import datetime

    env = dict(os.environ, DISPLAY=display, PYTHONPATH=str(REPO))
    argv = [sys.executable, "-m", "capture", "--allow-any", "--duration", "2", "--preset",
            "ultrafast", "--log-json", "--out", str(out)]  # fmt: skip
    if not input_on:
        argv.append("--no-input")
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    exited = time.time()
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip()[-300:])
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    finished = next(e for e in events if e["event"] == "capture.finished")
    meta = json.loads((Path(finished["fields"]["session"]) / "metadata.json").read_text())
    end = meta["end_t_ns"] / 1e9
    at = datetime.fromisoformat(finished["ts"].replace("Z", "+00:00")).timestamp()
    return {"finished_after_end_s": at - end, "exit_after_end_s": exited - end}


def run_stop_latency(display: str, out: Path, repeats: int) -> dict[str, Any]:
    """How long a recording takes to stop with input logging on; the peer is the same
    recording with ``--no-input`` (no pynput listeners), in the same run."""
    result: dict[str, Any] = {}
    for name, input_on in (("input_on", True), ("input_off", False)):
        runs = [_stop_once(display, out / f"{name}{i}", input_on=input_on) for i in range(repeats)]
        result[name] = {key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0]}
    result["ratio_finished_on_over_off"] = round(
        result["input_on"]["finished_after_end_s"]
        / max(result["input_off"]["finished_after_end_s"], 1e-3),
        2,
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--fps", type=int, nargs="+", default=[30, 60])
    parser.add_argument(
        "--presets",
        nargs="+",
        default=["veryfast", "superfast"],
        help="our x264 presets (ffmpeg always uses veryfast; superfast is our default)",
    )
    parser.add_argument(
        "--fsync-runs",
        type=int,
        default=1,
        help="pairs of runs at 30 fps with the fsync policy (1 s) and without (0): its cost",
    )
    parser.add_argument(
        "--input-events",
        type=int,
        default=200,
        help="XTEST key events injected into a recorded test window to measure timestamp "
        "error (0: skip)",
    )
    parser.add_argument(
        "--stop-runs",
        type=int,
        default=3,
        help="2 s recordings with and without input logging, to time the stop (0: skip)",
    )
    args = parser.parse_args()
    xvfb, display = start_xvfb()
    painter = subprocess.Popen(
        [sys.executable, "-c", PAINTER],
        env=dict(os.environ, DISPLAY=display),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert painter.stdout is not None
    painter.stdout.readline()
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg()},
        "resolution": [1920, 1080],
        "duration_s": args.duration,
        "runs": [],
    }
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for fps in args.fps:
                theirs = run_ffmpeg(display, fps, args.duration, Path(tmp))
                run: dict[str, Any] = {"fps": fps, "ffmpeg": theirs}
                for preset in args.presets:
                    ours = run_ours(display, fps, args.duration, preset, Path(tmp))
                    run[f"capture_{preset}"] = ours
                    if "error" not in ours and "error" not in theirs:
                        run[f"ratio_capture_{preset}_over_ffmpeg"] = {
                            "achieved_fps": round(
                                ours["achieved_fps"] / max(theirs["achieved_fps"], 1e-9), 3
                            ),
                            "cpu_s_per_s": round(ours["cpu_s_per_s"] / theirs["cpu_s_per_s"], 3),
                        }
                results["runs"].append(run)
            if args.fsync_runs:
                results["fsync_policy"] = run_fsync_cost(display, args, Path(tmp))
            if args.stop_runs:
                results["stop_latency"] = run_stop_latency(display, Path(tmp), args.stop_runs)
            if args.input_events:
                results["input_timestamps"] = run_input_timing(
                    display, Path(tmp), args.input_events
                )
    finally:
        painter.kill()
        painter.wait()
        if painter.stdout is not None:
            painter.stdout.close()
        xvfb.terminate()
        xvfb.wait()
    results["machine"]["load_avg_end"] = os.getloadavg()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
