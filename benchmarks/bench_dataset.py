"""Benchmark: SessionDataset samples/s against naive seek + decode per sample (PyAV).

Records one real session (the recorder on a private Xvfb capturing an ffplay window that plays
``testsrc2``, moving full-colour content, with XTEST key taps), replicates it into ``--sessions``
sessions (media hard-linked), and in this run, on the same sessions and the same random order
of samples (``frame_stack`` 4 at 256x144 by default), times in one fresh single-threaded process
each (= one DataLoader worker on one core):

* ``naive``: the peer: per sample, ``container.seek`` to frame ``i-K+1`` (back to its keyframe)
  with the session's container kept open, decode up to ``i``, resize the K frames with
  PyAV's ``VideoFrame.to_ndarray(width=, height=, format="rgb24", interpolation="AREA")``
  (plain PyAV, nothing borrowed from the dataset);
* ``map``: :class:`SessionDataset` ``ds[j]`` in the same random order (GOP-aware seeks, decoder
  positions kept, bounded frame cache of ``--cache-mb``);
* ``clips``: :class:`SessionClipDataset` (shuffled keyframe-aligned clips, each decoded once in
  order, a shuffle buffer), the streaming path for training.

Each reports samples/s of wall time and per CPU-second (the per-core figure, robust to a loaded
machine), peak RSS of the process (memory per worker) and frames decoded; the first samples of
``map`` and ``clips`` are checked equal to the naive ones. Prints JSON with ratios against
``naive`` and the issue's targets (>= 3x, >= 200 samples/s per core).

    python -m benchmarks.bench_dataset            # about 2 minutes
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/<name>.py`: import this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.capture.capture_helpers import Injector, start_recording, start_xvfb
from tests.sessions.replicate import replicate

SIZE = (960, 540)


def record(out: Path, seconds: int) -> Path:
    """One real session of moving content (ffplay playing testsrc2 in the captured window)."""
    proc_x, display = start_xvfb("1280x720x24")
    env = {**os.environ, "DISPLAY": display, "SDL_AUDIODRIVER": "dummy"}
    os.environ["DISPLAY"] = display
    player = subprocess.Popen(
        [
            "ffplay", "-loglevel", "error", "-an", "-noborder", "-left", "0", "-top", "0",
            "-window_title", "League of Legends", "-f", "lavfi",
            f"testsrc2=size={SIZE[0]}x{SIZE[1]}:rate=30",
        ],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    inj = Injector()
    try:
        time.sleep(2.0)  # the window is mapped and playing
        proc = start_recording(
            out, "--duration", str(seconds), "--fps", "30", "--allow-any", "--quiet", timeout=60
        )
        code = inj.keycode("x")  # a key ffplay ignores (q would quit it)
        deadline = time.monotonic() + seconds - 0.5
        while time.monotonic() < deadline:
            inj.key_press(code)
            inj.key_release(code)
            time.sleep(0.2)
        assert proc.wait(timeout=120) == 0
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    finally:
        inj.close()
        player.terminate()
        player.wait(timeout=10)
        proc_x.terminate()
        proc_x.wait(timeout=10)
    return next(out.glob("session_*"))


def _naive(ds: Any, order: list[int], k: int, size: tuple[int, int]) -> tuple[list[Any], int]:
    """The peer, exactly as a user would write it with PyAV: seek to the first frame, decode
    forward, convert each of the K frames with ``VideoFrame.to_ndarray`` (same pixels as
    :func:`aiconfig.sessions._decode.to_array`, the equality check below holds)."""
    import av
    import numpy as np

    w, h = size
    opened: dict[Path, Any] = {}
    out, decoded = [], 0
    for j in order:
        src, i = ds.locate(j)
        path = src.session.video_path
        if path not in opened:
            c = av.open(str(path))
            c.streams.video[0].thread_count = 1
            opened[path] = c
        c = opened[path]
        stream = c.streams.video[0]
        first = max(0, i - k + 1)
        c.seek(int(first / src.fps / stream.time_base), stream=stream, backward=True)
        frames: dict[int, Any] = {}
        for frame in c.decode(stream):
            decoded += 1
            idx = round(float(frame.pts * stream.time_base) * src.fps)
            if idx >= first:
                rgb = frame.to_ndarray(width=w, height=h, format="rgb24", interpolation="AREA")
                frames[idx] = np.ascontiguousarray(rgb.transpose(2, 0, 1))
            if idx >= i:
                break
        out.append([frames[max(0, f)] for f in range(i - k + 1, i + 1)])
    return out, decoded


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """One approach in this (fresh) process; prints one JSON line."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from aiconfig.sessions import ActionSpec, SessionClipDataset, SessionDataset

    spec = ActionSpec(("move", "q"), ("q",), {"mouse_right": "move", "q": "q"})
    size, k = (args.width, args.height), args.frame_stack
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ds = SessionDataset(
        [args.root], spec=spec, resolution=size, frame_stack=k, cache_mb=args.cache_mb
    )
    order = random.Random(7).sample(range(len(ds)), min(args.samples, len(ds)))
    cds = SessionClipDataset([args.root], spec=spec, resolution=size, frame_stack=k, seed=7)
    t0, c0 = time.perf_counter(), time.process_time()
    result: dict[str, Any] = {}
    if args.approach == "naive":
        stacks, decoded = _naive(ds, order, k, size)
        n = len(stacks)
        np.save(args.check, np.stack([np.stack(s) for s in stacks[: args.check_n]]))
    elif args.approach == "map":
        first: list[Any] = []
        for j in order:
            sample = ds[j]
            if len(first) < args.check_n:
                first.append(sample["frames"].numpy())
        n, decoded = len(order), ds.reader.decoded
        ref = np.load(args.check)
        result["equal_to_naive"] = bool(np.array_equal(np.stack(first), ref))
        result["cache_mb"] = round(ds.reader.cached_bytes / 2**20, 1)
        result["seeks"] = ds.reader.seeks
    else:
        n, match, compared = 0, True, 0
        decoded = None  # the clip path does not count its decodes (one per frame, in order)
        want = {j: s for j, s in zip(order[: args.check_n], np.load(args.check), strict=True)}
        where = {ds.locate(j)[0].id + f":{ds.locate(j)[1]}": j for j in want}
        for sample in cds:
            n += 1
            key = f"{sample['session_id']}:{sample['frame_index']}"
            if key in where:
                compared += 1
                match = match and np.array_equal(sample["frames"].numpy(), want[where[key]])
            if n >= len(order):
                break
        # None when no reference sample was drawn: nothing was compared, nothing is claimed.
        result["equal_to_naive"] = match if compared else None
        result["samples_compared"] = compared
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result.update(
        approach=args.approach,
        samples=n,
        wall_s=round(wall, 3),
        cpu_s=round(cpu, 3),
        samples_per_s=round(n / wall, 1),
        samples_per_cpu_s=round(n / cpu, 1),
        frames_decoded=decoded,
        peak_rss_mb=round(rss / 1024, 1),
        rss_before_dataset_mb=round(rss0 / 1024, 1),
    )
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--samples", type=int, default=600)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--height", type=int, default=144)
    ap.add_argument("--frame-stack", type=int, default=4)
    ap.add_argument("--cache-mb", type=float, default=128)
    ap.add_argument("--root", type=Path, help="use these sessions instead of recording")
    ap.add_argument("--approach", choices=("naive", "map", "clips"), help=argparse.SUPPRESS)
    ap.add_argument("--check", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--check-n", type=int, default=20, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.approach:
        print(json.dumps(worker(args)))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-dataset-") as tmp:
        base = Path(tmp)
        root = args.root
        recorded = None
        if root is None:
            src = record(base / "recorded", args.seconds)
            recorded = src
            root = base / "root"
            for i in range(args.sessions):
                replicate(src, root / f"session_20260101_0000{i:02d}", link_media=True)
        results = {}
        for approach in ("naive", "map", "clips"):
            cmd = [
                sys.executable, "-m", "benchmarks.bench_dataset", "--approach", approach,
                "--root", str(root), "--check", str(base / "naive.npy"),
                "--samples", str(args.samples), "--width", str(args.width),
                "--height", str(args.height), "--frame-stack", str(args.frame_stack),
                "--cache-mb", str(args.cache_mb),
            ]  # fmt: skip
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            results[approach] = json.loads(out.strip().splitlines()[-1])
        from aiconfig.sessions import open_session

        first = open_session(recorded or next(root.rglob("session_*")))
        naive = results["naive"]
        report = {
            "benchmark": "dataset",
            "sessions": args.sessions if args.root is None else None,
            "session": {
                "frames": first.frame_count,
                "resolution": list(first.resolution),
                "fps": first.fps,
                "keyframe_interval": first.keyframe_interval,
                "padded_frames": first.metadata.get("padded_frames"),
            },
            "sample": {"frame_stack": args.frame_stack, "size": [args.width, args.height]},
            "order": "random (same permutation for naive and map; shuffled clips for clips)",
            "results": results,
            "ratio_vs_naive": {
                a: {
                    "wall": round(results[a]["samples_per_s"] / naive["samples_per_s"], 2),
                    "per_cpu_s": round(
                        results[a]["samples_per_cpu_s"] / naive["samples_per_cpu_s"], 2
                    ),
                }
                for a in ("map", "clips")
            },
            "targets": {"ratio_vs_naive": 3.0, "samples_per_s_per_core": 200},
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "cpus": os.cpu_count(),
        }
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
