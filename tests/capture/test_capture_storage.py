"""Storage faults, for real: a tmpfs that fills during a recording, a read-only output directory,
too little free space, a writer slower than the frame rate, and the fsync policy.

The tmpfs mounts need root (as in CI); the test mounts and unmounts them itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from aiconfig import CaptureConfig
from tests.capture.capture_helpers import REPO, capture_cmd, run_cli, run_env

pytestmark = [pytest.mark.x11, pytest.mark.slow]

PAINTER = REPO / "benchmarks" / "bench_capture.py"


@contextlib.contextmanager
def tmpfs(path: Path, size: str, *options: str) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``path`` (root only), unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    opts = ",".join((f"size={size}", *options))
    subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def painter(xvfb: str) -> Iterator[None]:
    """Moving colour-cycling rectangles over the whole screen: the video really grows."""
    code = "import sys; sys.path.insert(0, %r)\nfrom benchmarks.bench_capture import PAINTER\n"
    proc = subprocess.Popen(
        [sys.executable, "-c", code % str(REPO) + "exec(PAINTER)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    try:
        yield
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def test_disk_full_mid_recording_fails_cleanly_and_recovers(
    xvfb: str, painter: None, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "disk", "6m") as disk:
        out = disk / "out"
        proc = subprocess.run(
            capture_cmd(
                *("--allow-any", "--no-input", "--quiet", "--duration", "60"),
                *("--min-free-minutes", "0", "--out", str(out)),
            ),
            capture_output=True,
            text=True,
            env=run_env(),
            timeout=120,
            check=False,
        )
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert "disk full at" in lines[0] and "capture recover" in lines[0]
        session = next(out.glob("session_*"))
        manifest = json.loads((session / "manifest.json").read_text())
        meta = json.loads((session / "metadata.json").read_text())
        assert manifest["status"] == "failed" == meta["status"]
        failure = meta["failure"]
        assert failure["reason"] == "disk full" and failure["at"].endswith("Z")
        assert failure["file"] in ("frames.mp4", "events.journal.arrows", "metadata.json")
        assert failure["after_s"] > 0.5
        assert not (session / ".space-reserve.tmp").exists()

        bad = run_cli("validate", str(session))
        assert bad.returncode == 1 and "disk full" in bad.stderr
        assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr

        before = _digests(session)
        # The disk is still full: recover says so in one line and changes nothing...
        full = run_cli("recover", str(session))
        assert full.returncode == 1 and full.stderr.count("\n") == 1, full.stderr
        assert "not enough free space to recover" in full.stderr
        assert _digests(session) == before and not (session / ".original").exists()
        # ...until some space is freed (the tmpfs grows).
        subprocess.run(["mount", "-o", "remount,size=32m", str(disk)], check=True)
        fixed = run_cli("recover", str(session))
        assert fixed.returncode == 0, fixed.stderr
        good = run_cli("validate", str(session))
        assert good.returncode == 0, good.stderr
        meta = json.loads((session / "metadata.json").read_text())
        assert meta["status"] == "recovered" and meta["stop_reason"] == "error: disk full"
        assert meta["recovery"]["cause"] == "failed"
        assert meta["failure"]["reason"] == "disk full"
        assert meta["frame_count"] >= 15  # more than the first fragment survived
        # Every original byte is kept beside the recovered files.
        assert _digests(session / ".original") == before
        events = pq.read_table(session / "events.parquet").to_pydict()
        frames = [
            r
            for r, k in zip(events["frame_ref"], events["event_type"], strict=True)
            if k == "frame"
        ]
        assert frames == list(range(meta["frame_count"]))


def test_too_little_space_is_refused_before_any_device(xvfb: str, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "3m") as disk:
        out = disk / "out"
        proc = run_cli("--allow-any", "--duration", "5", "--out", str(out))
        assert proc.returncode == 1
        assert proc.stderr.count("\n") == 1, proc.stderr
        assert "below the margin of 5 min" in proc.stderr and "--min-free-minutes" in proc.stderr
        assert not list(out.glob("session_*"))
        # The margin is a setting: 0 only warns (the doctor says so) and the short run fits.
        doctor = run_cli("doctor", "--allow-any", "--min-free-minutes", "0", "--out", str(out))
        disk_line = next(x for x in doctor.stdout.splitlines() if x.split()[1] == "disk")
        assert disk_line.startswith("warn") and "MB/min" in disk_line, doctor.stdout


def test_read_only_output_is_refused_before_any_device(xvfb: str, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "4m", "ro") as disk:
        for out in (disk, disk / "not" / "yet"):
            proc = run_cli("--allow-any", "--duration", "1", "--out", str(out))
            assert proc.returncode == 1, proc.stderr
            assert proc.stderr.count("\n") == 1, proc.stderr
            assert "Read-only file system" in proc.stderr and "Traceback" not in proc.stderr
            doctor = run_cli("doctor", "--allow-any", "--out", str(out))
            assert doctor.returncode == 1
            disk_line = next(x for x in doctor.stdout.splitlines() if x.split()[1] == "disk")
            assert disk_line.startswith("fail") and "Read-only file system" in disk_line
            assert "writable --out" in disk_line
        assert not list(disk.iterdir())


def _rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def test_a_writer_slower_than_the_frame_rate_drops_truthfully_in_bounded_memory(
    xvfb: str, painter: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk takes 80 ms per frame (a throttled writer: ~12 fps at 30 fps): the bounded
    queues fill, the grabber drops, and memory stays flat while every slot is accounted for."""
    from capture import _video_writer
    from capture._recording import run_capture

    real = _video_writer.VideoWriter.write_i420

    def slow(self: Any, i420: Any, index: int) -> None:
        time.sleep(0.08)
        real(self, i420, index)

    monkeypatch.setattr(_video_writer.VideoWriter, "write_i420", slow)
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            samples.append(_rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cfg = CaptureConfig(
        allow_any=True,
        duration_s=8,
        fps=30,
        input={"enabled": False},
        game_state={"enabled": False},
        storage={"min_free_minutes": 0},
    )
    try:
        result = run_capture(cfg, output_dir=tmp_path)
    finally:
        done.set()
        sampler.join()
    meta = result.metadata
    assert meta["frame_count"] == 240
    assert meta["dropped_frames"] > 60, meta  # the pipeline was full most of the time
    assert result.ok, meta["validation"]
    fresh = meta["frame_count"] - meta["dropped_frames"] - meta["padded_frames"]
    assert fresh >= 10  # every slot costs the slow writer a frame, repeated or fresh
    # Memory: the second half of the run holds no more than the first half plus a margin
    # (a growing queue of 1920x1080 frames would add ~8 MB per frame, 100+ MB per second).
    half = len(samples) // 2
    assert max(samples[half:]) - max(samples[:half]) < 40, samples


def test_growing_files_are_fsynced_every_interval(xvfb: str, tmp_path: Path) -> None:
    proc = run_cli(
        *("--allow-any", "--no-input", "--quiet", "--duration", "4"),
        *("--fsync-interval", "0.5", "--out", str(tmp_path)),
    )
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((Path(proc.stdout.strip()) / "metadata.json").read_text())
    fsync = meta["storage"]["fsync"]
    assert fsync["interval_s"] == 0.5
    assert {"frames.mp4", "events.journal.arrows"} <= set(fsync["files"])
    assert fsync["rounds"] >= 5  # ~8 rounds in 4 s plus the final one; load may delay some
