"""CPU and memory budgets from ``AP_CPU_LIMIT`` / ``AP_MEM_LIMIT_MB`` as hard operational limits.

A :class:`Budget` turns the two numbers into the sizes a job needs: worker threads, encoder and
decoder threads, queue lengths and in-memory buffer bytes. :meth:`Budget.apply` caps native thread
pools (OpenMP, BLAS, Arrow, torch) and sets ``RLIMIT_DATA`` so a run that grows past its budget
gets a ``MemoryError`` it can report, instead of being OOM-killed silently.

Why ``RLIMIT_DATA`` and not ``RLIMIT_AS``: the address space counts every mapped shared library,
and numpy + pyarrow + PyAV map about 450 MB before doing any work (VmPeak, measured here) while
their private writable memory is about 100 MB (VmData). ``RLIMIT_DATA`` (Linux >= 4.7) counts
heap, anonymous mappings and thread stacks: the memory a job actually grows. Allocators that
reserve large arenas up front are tamed when a memory limit is set: Arrow uses the system
allocator (jemalloc reserved about 1 GB of VmData here) and glibc keeps few malloc arenas.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .._errors import BudgetError
from .._platform_io import apply_memory_limit, available_cpus

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
# Room a job needs above what it already uses when the budget is applied: thread stacks (8 MiB
# each), codec and Parquet page buffers. A smaller budget is refused before any work.
HEADROOM_MB = 32


def data_memory_mb() -> float | None:
    """This process's private writable memory (``VmData``: what ``RLIMIT_DATA`` limits), MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmData:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return None
    return None  # pragma: no cover


def _cgroup_cpus() -> float | None:
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return int(quota) / int(period)


def _host_cpus() -> int:
    return available_cpus()


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

    def memory_env(self) -> dict[str, str]:
        """Allocator settings that keep reserved-but-unused memory low under a memory limit."""
        if self.mem_limit_mb is None:
            return {}
        return {
            "ARROW_DEFAULT_MEMORY_POOL": os.environ.get("ARROW_DEFAULT_MEMORY_POOL", "system"),
            "MALLOC_ARENA_MAX": str(max(2, self.threads)),
        }

    def apply(self) -> dict[str, object]:
        """:meth:`export_env`, :meth:`apply_libraries`, then :meth:`limit_memory`."""
        done = self.export_env()
        done.update(self.apply_libraries())
        done.update(self.limit_memory())
        return done

    def export_env(self) -> dict[str, object]:
        """Thread-pool and allocator settings for libraries loaded from now on and for children.

        OpenBLAS (numpy) and Arrow read them when they load: import heavy libraries after this.
        """
        done: dict[str, object] = {"threads": self.threads}
        os.environ.update(self.thread_env())
        os.environ.update(self.memory_env())
        if self.mem_limit_mb is not None:
            done["malloc_arenas"] = _set_malloc_arenas(max(2, self.threads))
        return done

    def limit_memory(self) -> dict[str, object]:
        """Check the headroom (BudgetError if none) and set the soft ``RLIMIT_DATA``.

        On Windows nothing can enforce it: the result holds ``memory_limit: "advisory"`` and the
        reason, which the run logs as a warning and records in its manifest.
        """
        done: dict[str, object] = {}
        used = self.check_headroom()
        if used is not None:
            done["data_memory_mb"] = round(used, 1)
        if self.mem_limit_mb is not None:
            done.update(apply_memory_limit(self.mem_limit_mb * _MIB))
        return done

    def check_headroom(self) -> float | None:
        """Refuse (BudgetError) a memory budget that leaves under HEADROOM_MB above current use.

        Returns the current data memory in MiB (None where it cannot be read).
        """
        used = data_memory_mb()
        if (
            self.mem_limit_mb is not None
            and used is not None
            and self.mem_limit_mb < used + HEADROOM_MB
        ):
            raise BudgetError(
                f"a memory budget of {self.mem_limit_mb} MiB leaves no room: this process "
                f"already uses {used:.0f} MiB (interpreter and libraries) and needs "
                f"{HEADROOM_MB} MiB more to work",
                path="AP_MEM_LIMIT_MB",
                hint=f"allow at least {int(used + HEADROOM_MB) + 1} MiB",
            )
        return used

    def apply_libraries(self) -> dict[str, object]:
        """Cap the thread pools (and Arrow's allocator) of pyarrow and torch if imported.

        Call it again after importing them late (it also re-checks the memory headroom).
        """
        self.check_headroom()
        done: dict[str, object] = {}
        if "pyarrow" in sys.modules:
            pa = sys.modules["pyarrow"]
            pa.set_cpu_count(self.threads)
            pa.set_io_thread_count(self.io_threads)
            if self.mem_limit_mb is not None:
                pa.set_memory_pool(pa.system_memory_pool())
            done["pyarrow"] = True
        if "torch" in sys.modules:
            torch = sys.modules["torch"]
            torch.set_num_threads(self.threads)
            done["torch"] = True
        return done


def _set_malloc_arenas(count: int) -> bool:
    """glibc ``mallopt(M_ARENA_MAX, count)`` for this process; False where not glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:  # pragma: no cover - no libc found
        return False
    try:
        libc = ctypes.CDLL(name)
        m_arena_max = -8
        return bool(libc.mallopt(m_arena_max, count))
    except (OSError, AttributeError):  # pragma: no cover - musl and others have no mallopt
        return False
