"""CPU and memory budgets from ``AP_CPU_LIMIT`` / ``AP_MEM_LIMIT_MB`` as hard operational limits.

A :class:`Budget` turns the two numbers into the sizes a job needs: worker threads, encoder and
decoder threads, queue lengths and in-memory buffer bytes. :meth:`Budget.apply` caps native thread
pools (OpenMP, BLAS, Arrow, torch) and sets ``RLIMIT_AS`` so a run that grows past its budget gets
a ``MemoryError`` it can report, instead of being OOM-killed silently.
"""

from __future__ import annotations

import math
import os
import resource
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import BudgetError

__all__ = ["Budget"]

_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "ARROW_NUM_THREADS",
)
_MIB = 1024 * 1024
# Share of the memory budget a job may keep in queues and buffers; the rest is the interpreter,
# imported libraries (pyarrow + PyAV + numpy take about 150 MiB of address space) and the codec.
BUFFER_SHARE = 0.25
MIN_QUEUE = 2
MAX_QUEUE = 256


def _cgroup_cpus() -> float | None:
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return int(quota) / int(period)


def _host_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Budget:
    """What one run may use. ``cpus`` is fractional cores; ``mem_limit_mb`` None means unlimited."""

    cpus: float
    mem_limit_mb: int | None = None
    cpu_source: str = "host"

    @classmethod
    def from_limits(cls, cpu_limit: float | None, mem_limit_mb: int | None) -> Budget:
        """Budget from resolved limits; without a CPU limit: the affinity mask or cgroup quota."""
        if cpu_limit is not None:
            return cls(cpus=cpu_limit, mem_limit_mb=mem_limit_mb, cpu_source="AP_CPU_LIMIT")
        host = float(_host_cpus())
        cgroup = _cgroup_cpus()
        if cgroup is not None and cgroup < host:
            return cls(cpus=cgroup, mem_limit_mb=mem_limit_mb, cpu_source="cgroup")
        return cls(cpus=host, mem_limit_mb=mem_limit_mb, cpu_source="host")

    @property
    def threads(self) -> int:
        """Worker threads for CPU-bound pools: whole cores, at least one."""
        return max(1, math.floor(self.cpus + 1e-9))

    @property
    def encoder_threads(self) -> int:
        """Threads for a video encoder or decoder (libx264/ffmpeg ``threads``)."""
        return self.threads

    @property
    def io_threads(self) -> int:
        """Threads for I/O-bound pools (writers, hashing): a little above the cores, at most 8."""
        return min(8, self.threads + 1)

    @property
    def buffer_bytes(self) -> int | None:
        """Bytes a job may hold in queues and buffers; None when memory is not limited."""
        if self.mem_limit_mb is None:
            return None
        return int(self.mem_limit_mb * _MIB * BUFFER_SHARE)

    def queue_size(self, item_bytes: int, wanted: int, *, what: str = "queue") -> int:
        """Queue length for items of ``item_bytes``: ``wanted`` if it fits, fewer if not (degrade).

        Raises BudgetError when not even :data:`MIN_QUEUE` items fit in :attr:`buffer_bytes`.
        """
        wanted = max(MIN_QUEUE, min(wanted, MAX_QUEUE))
        budget = self.buffer_bytes
        if budget is None:
            return wanted
        fits = budget // max(1, item_bytes)
        if fits < MIN_QUEUE:
            raise BudgetError(
                f"{what} needs {MIN_QUEUE} x {item_bytes / _MIB:.1f} MiB buffers but the budget "
                f"allows {budget / _MIB:.1f} MiB",
                path="AP_MEM_LIMIT_MB",
                hint="raise AP_MEM_LIMIT_MB or lower the resolution",
            )
        return int(min(wanted, fits))

    def chunk_bytes(self, wanted: int = 8 * _MIB) -> int:
        """Read/hash chunk size: ``wanted`` capped at 1/16 of the buffer budget, at least 64 KiB."""
        budget = self.buffer_bytes
        if budget is None:
            return wanted
        return max(64 * 1024, min(wanted, budget // 16))

    def thread_env(self) -> dict[str, str]:
        """Environment that caps native thread pools, for this process and its children."""
        return {name: str(self.threads) for name in _THREAD_VARS}

    def apply(self) -> dict[str, object]:
        """Cap thread pools and set the soft ``RLIMIT_AS``; returns what was done (for the log).

        The environment variables only reach libraries imported after this call (and children);
        already-imported pyarrow and torch are capped through their APIs.
        """
        done: dict[str, object] = {"threads": self.threads}
        os.environ.update(self.thread_env())
        if "pyarrow" in sys.modules:
            pa = sys.modules["pyarrow"]
            pa.set_cpu_count(self.threads)
            pa.set_io_thread_count(self.io_threads)
            done["pyarrow"] = True
        if "torch" in sys.modules:
            torch = sys.modules["torch"]
            torch.set_num_threads(self.threads)
            done["torch"] = True
        if self.mem_limit_mb is not None:
            limit = self.mem_limit_mb * _MIB
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            if hard != resource.RLIM_INFINITY:
                limit = min(limit, hard)
            if soft == resource.RLIM_INFINITY or limit < soft:
                resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
                done["rlimit_as_mb"] = limit // _MIB
        return done
