"""The portability leaf: real POSIX calls here, the Windows branch over a documented ``msvcrt``.

The Windows branch is loaded by executing ``aiconfig/_platform_io.py`` again with
``sys.platform == "win32"`` and a fake ``msvcrt`` that behaves as its documentation says:
``locking(fd, mode, nbytes)`` locks ``nbytes`` from the current file position; ``LK_NBLCK``
raises OSError (EACCES) when another handle holds the bytes; ``LK_LOCK`` retries and raises
OSError (EDEADLOCK) after its ten attempts; ``LK_UNLCK`` of bytes not locked raises OSError.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from aiconfig import _platform_io as pio
from aiconfig._errors import DeviceLockedError
from aiconfig.harness import RunContext, budget, context, locks

from .util import REPO

_SOURCE = Path(pio.__file__)


class FakeMsvcrt(types.ModuleType):
    LK_UNLCK, LK_LOCK, LK_NBLCK, LK_RLCK, LK_NBRLCK = 0, 1, 2, 3, 4

    def __init__(self) -> None:
        super().__init__("msvcrt")
        self.held: dict[tuple[int, int, int], int] = {}  # (dev, ino, offset) -> holder fd
        self.calls: list[tuple[int, int]] = []
        self.free_after_failures: int | None = None  # LK_LOCK: the holder lets go meanwhile

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        assert nbytes == 1
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino, os.lseek(fd, 0, os.SEEK_CUR))
        self.calls.append((mode, key[2]))
        holder = self.held.get(key)
        if mode == self.LK_UNLCK:
            if holder != fd:
                raise OSError(errno.EACCES, "Permission denied")
            del self.held[key]
        elif mode in (self.LK_NBLCK, self.LK_LOCK):
            # Windows byte-range locks are not reentrant: a region locked through this very
            # descriptor refuses a second lock just as one held through another does.
            if holder is not None:
                if mode == self.LK_LOCK and self.free_after_failures is not None:
                    self.free_after_failures -= 1
                    if self.free_after_failures <= 0:
                        holder = None  # the holder let go while LK_LOCK was retrying
                if holder is not None and mode == self.LK_NBLCK:
                    raise OSError(errno.EACCES, "Permission denied")
                if holder is not None:
                    raise OSError(errno.EDEADLOCK, "Resource deadlock avoided")
            self.held[key] = fd
        else:  # pragma: no cover - modes this code never uses
            raise ValueError(mode)


def _load_win32(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, FakeMsvcrt]:
    fake = FakeMsvcrt()
    monkeypatch.setitem(sys.modules, "msvcrt", fake)
    spec = importlib.util.spec_from_file_location("aiconfig._platform_io_win32", _SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with monkeypatch.context() as m:
        m.setattr(sys, "platform", "win32")
        spec.loader.exec_module(module)
    return module, fake


@pytest.fixture
def win(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, FakeMsvcrt]:
    return _load_win32(monkeypatch)


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


# -- POSIX, for real ---------------------------------------------------------------------------


def test_posix_lock_is_exclusive_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    fd = _open(path)
    pio.lock_exclusive(fd, blocking=False)
    probe = (
        "import os, sys\nfrom aiconfig import _platform_io as p\n"
        f"fd = os.open({str(path)!r}, os.O_RDWR)\n"
        "try:\n    p.lock_exclusive(fd, blocking=False)\nexcept BlockingIOError:\n"
        "    sys.exit(3)\np.unlock(fd)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    assert subprocess.run([sys.executable, "-c", probe], env=env, check=False).returncode == 3
    pio.unlock(fd)
    assert subprocess.run([sys.executable, "-c", probe], env=env, check=False).returncode == 0
    os.close(fd)


def test_posix_pwrite_keeps_the_position(tmp_path: Path) -> None:
    fd = _open(tmp_path / "f")
    os.write(fd, b"abcdef")
    assert pio.pwrite(fd, b"XY", 1) == 2
    assert os.lseek(fd, 0, os.SEEK_CUR) == 6
    os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"aXYdef"


def test_posix_available_cpus_is_the_affinity_mask() -> None:
    assert pio.available_cpus() == len(os.sched_getaffinity(0))


def test_posix_memory_limit_is_enforced_in_a_child(tmp_path: Path) -> None:
    code = (
        "import json, resource\nfrom aiconfig import _platform_io as p\n"
        "done = p.apply_memory_limit(4096 << 20)\n"
        "done['soft'] = resource.getrlimit(resource.RLIMIT_DATA)[0]\nprint(json.dumps(done))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    done = json.loads(out)
    assert done["memory_limit"] == "enforced"
    assert done["memory_rlimit"] == "RLIMIT_DATA"
    assert done["soft"] == 4096 << 20


def test_posix_open_nofollow_refuses_a_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "link").symlink_to(victim)
    with pytest.raises(OSError) as info:
        pio.open_nofollow(tmp_path / "link", os.O_RDWR)
    assert info.value.errno == errno.ELOOP
    assert victim.read_text() == "keep"


# -- Windows branch over the documented msvcrt -------------------------------------------------


def test_win_nonblocking_lock_held_raises_blocking_io(
    win: tuple[Any, FakeMsvcrt], tmp_path: Path
) -> None:
    mod, fake = win
    a, b = _open(tmp_path / "l"), _open(tmp_path / "l")
    mod.lock_exclusive(a, blocking=False)
    with pytest.raises(BlockingIOError):
        mod.lock_exclusive(b, blocking=False)
    assert (fake.LK_NBLCK, mod.WIN_LOCK_OFFSET) in fake.calls  # one byte past any record
    mod.unlock(a)
    mod.lock_exclusive(b, blocking=False)
    with pytest.raises(OSError):  # unlocking what this handle does not hold fails, as documented
        mod.unlock(a)
    mod.unlock(b)
    os.close(a)
    os.close(b)


def test_win_lock_leaves_the_position_and_the_record_readable(
    win: tuple[Any, FakeMsvcrt], tmp_path: Path
) -> None:
    mod, _ = win
    fd = _open(tmp_path / "l")
    mod.lock_exclusive(fd, blocking=False)
    assert os.lseek(fd, 0, os.SEEK_CUR) == 0
    mod.pwrite(fd, b'{"pid": 1}\n', 0)
    assert (tmp_path / "l").read_bytes() == b'{"pid": 1}\n'
    mod.unlock(fd)
    os.close(fd)


def test_win_blocking_lock_waits_past_lk_lock_timeouts(
    win: tuple[Any, FakeMsvcrt], tmp_path: Path
) -> None:
    mod, fake = win
    a, b = _open(tmp_path / "l"), _open(tmp_path / "l")
    mod.lock_exclusive(a)
    fake.free_after_failures = 3  # LK_LOCK gives up (EDEADLOCK) twice before the holder leaves
    mod.lock_exclusive(b)
    assert [m for m, _ in fake.calls].count(fake.LK_LOCK) == 4
    os.close(a)
    os.close(b)


def test_win_device_lock_held_is_device_locked_error(
    win: tuple[Any, FakeMsvcrt], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mod, _ = win
    for name in ("lock_exclusive", "unlock", "pwrite"):
        monkeypatch.setattr(locks, name, getattr(mod, name))
    first = locks.DeviceLock(tmp_path, "screen", run_id="r1", job="capture").acquire()
    with pytest.raises(DeviceLockedError, match="run 'r1'"):
        locks.DeviceLock(tmp_path, "screen", run_id="r2", job="capture").acquire()
    first.release()
    locks.DeviceLock(tmp_path, "screen", run_id="r2", job="capture").acquire().release()


def test_win_pwrite_writes_at_the_offset(win: tuple[Any, FakeMsvcrt], tmp_path: Path) -> None:
    mod, _ = win
    fd = _open(tmp_path / "f")
    os.write(fd, b"abcdef")
    assert mod.pwrite(fd, b"XY", 4) == 2
    os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"abcdXY"


def test_win_available_cpus_counts_usable_cpus(
    win: tuple[Any, FakeMsvcrt], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows has no sched_getaffinity: the usable count (3.13's process_cpu_count, else
    cpu_count) is used, and an unknown count (None) is one CPU, never zero."""
    mod, _ = win

    def no_affinity(pid: int) -> set[int]:
        raise AssertionError("sched_getaffinity does not exist on Windows")

    monkeypatch.setattr(os, "sched_getaffinity", no_affinity, raising=False)
    monkeypatch.delattr(os, "process_cpu_count", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert mod.available_cpus() == 3
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert mod.available_cpus() == 1


def test_win_memory_budget_is_advisory_and_said_so(
    win: tuple[Any, FakeMsvcrt],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    mod, _ = win
    assert mod.MEMORY_ENFORCED is False
    assert mod.memory_limit_state() is None
    done = mod.apply_memory_limit(512 << 20)
    assert done["memory_limit"] == "advisory"
    assert "Windows" in done["memory_limit_reason"]
    assert budget.Budget.from_limits(1, 100_000).limit_memory()["memory_limit"] == "enforced"
    monkeypatch.setattr(budget, "apply_memory_limit", mod.apply_memory_limit)
    monkeypatch.setattr(context, "memory_limit_state", mod.memory_limit_state)
    monkeypatch.setattr(context, "restore_memory_limit", mod.restore_memory_limit)
    assert budget.Budget.from_limits(1, 100_000).limit_memory()["memory_limit"] == "advisory"
    env = {"AP_OUT_DIR": str(tmp_path / "out"), "AP_RUN_ID": "w1", "AP_MEM_LIMIT_MB": "100000"}
    with RunContext.from_env("capture", env=env):
        pass
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["memory_limit"] == "advisory"
    assert "budget.memory_advisory" in capfd.readouterr().err


def test_win_open_nofollow_refuses_links_before_opening(
    win: tuple[Any, FakeMsvcrt], tmp_path: Path
) -> None:
    mod, _ = win
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "link").symlink_to(victim)
    with pytest.raises(OSError) as info:
        mod.open_nofollow(tmp_path / "link", os.O_RDWR | os.O_TRUNC)
    assert info.value.errno == errno.ELOOP
    assert victim.read_text() == "keep"
    fd = mod.open_nofollow(tmp_path / "new", os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    assert (tmp_path / "new").is_file()


def test_wav_header_fix_never_rewrites_through_a_link(tmp_path: Path) -> None:
    from capture._audio_recorder import fix_wav_header, wav_header

    victim = tmp_path / "victim.wav"
    victim.write_bytes(wav_header(48000, 2, 0) + b"\0" * 400)
    before = victim.read_bytes()
    (tmp_path / "audio.wav").symlink_to(victim)
    with pytest.raises(OSError) as info:
        fix_wav_header(tmp_path / "audio.wav")
    assert info.value.errno == errno.ELOOP
    assert victim.read_bytes() == before
    assert fix_wav_header(victim) == 100  # the real file itself is fixed


def test_preallocate_gives_real_blocks_on_both_branches(
    win: tuple[Any, FakeMsvcrt], tmp_path: Path
) -> None:
    mod, _ = win
    for name, impl in (("posix", pio.preallocate), ("win", mod.preallocate)):
        fd = _open(tmp_path / name)
        impl(fd, 1 << 16)
        os.close(fd)
        st = (tmp_path / name).stat()
        assert st.st_size == 1 << 16
        assert st.st_blocks * 512 >= 1 << 16  # not a sparse hole
