"""Timing helpers shared by the benchmarks (medians of repeated runs, in milliseconds)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def time_ms(fn: Callable[[], Any], repeat: int = 50, warmup: int = 3) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples), 4),
        "p90_ms": round(samples[int(len(samples) * 0.9) - 1], 4),
        "min_ms": round(samples[0], 4),
    }


def process_ms(
    argv: Sequence[str],
    repeat: int = 10,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, float]:
    def run() -> None:
        subprocess.run(argv, check=True, capture_output=True, cwd=cwd, env=env)

    return time_ms(run, repeat=repeat, warmup=2)


def python() -> str:
    return sys.executable
