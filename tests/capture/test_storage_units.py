"""capture._storage on real files: ENOSPC recognised from each writer library, the reserve, the
fsync thread, the writable probe."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest

from capture._events import EventJournal, frame_row, read_journal
from capture._storage import (
    SpaceReserve,
    StorageFault,
    Syncer,
    check_writable,
    fault_reason,
    is_disk_full,
)


def test_disk_full_is_recognised_from_python_pyav_and_pyarrow() -> None:
    import av

    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(av.error.OSError(errno.ENOSPC, "No space left on device"))
    arrow = OSError("Error writing bytes to file. Detail: [errno 28] No space left on device")
    assert is_disk_full(arrow) and fault_reason(arrow) == "disk full"
    try:
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        except OSError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert is_disk_full(outer)
    eio = OSError(errno.EIO, "Input/output error")
    assert not is_disk_full(eio) and fault_reason(eio) == "write failed (Input/output error)"


def test_the_first_fault_wins_and_stops() -> None:
    stop = threading.Event()
    faults = StorageFault(stop)
    faults.handler("frames.mp4")(OSError(errno.ENOSPC, "No space left on device"))
    faults.report("audio.wav", OSError(errno.ENOSPC, "No space left on device"))
    assert stop.is_set() and faults.first is not None
    assert faults.first.what == "frames.mp4" and faults.later == 1
    doc = faults.first.to_dict(t0_ns=faults.first.monotonic_ns - 2_000_000_000)
    assert doc["reason"] == "disk full" and doc["after_s"] == 2.0 and doc["at"].endswith("Z")


def test_reserve_holds_real_blocks_until_released(tmp_path: Path) -> None:
    reserve = SpaceReserve(tmp_path, size=1 << 20)
    assert reserve.path.stat().st_blocks * 512 >= 1 << 20  # allocated, not a sparse hole
    reserve.release()
    reserve.release()
    assert not reserve.path.exists()


def test_syncer_fsyncs_files_that_appear_later(tmp_path: Path) -> None:
    errors: list[str] = []
    syncer = Syncer(0.05, on_error=lambda name, exc: errors.append(name))
    late = tmp_path / "frames.mp4"
    syncer.add(late)  # PyAV creates the video with its first fragment
    syncer.start()
    late.write_bytes(b"x" * 1000)
    deadline = threading.Event()
    deadline.wait(0.5)
    syncer.stop()
    info = syncer.info()
    assert info["files"] == ["frames.mp4"] and info["rounds"] >= 3 and not errors
    off = Syncer(0)
    off.add(late)
    off.start()
    off.stop()
    assert off.info()["rounds"] == 0


def test_journal_reports_a_failed_write_once_and_keeps_what_it_wrote(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.fail("/dev/full is missing")
    seen: list[BaseException] = []
    good = EventJournal(tmp_path / "j.arrows", on_error=seen.append)
    good.add(frame_row(0, 0, 0, False, stream="screen", window_id=None, session_id="s"))
    assert good.flush() == 1
    good.close()
    table, truncated = read_journal(tmp_path / "j.arrows")
    assert table.num_rows == 1 and not truncated
    # /dev/full: every write fails with ENOSPC, as on a full disk.
    full = EventJournal(Path("/dev/full"), on_error=seen.append)
    full.add(frame_row(0, 0, 0, False, stream="screen", window_id=None, session_id="s"))
    assert full.flush() == 0 and full.failed is not None
    full.add(frame_row(1, 1, 1, False, stream="screen", window_id=None, session_id="s"))
    assert full.flush() == 0 and full.rows_lost == 2
    full.close()
    full.close()
    assert len(seen) == 1 and is_disk_full(seen[0])


def test_check_writable(tmp_path: Path) -> None:
    assert check_writable(tmp_path / "not" / "yet") is None
    (tmp_path / "file").write_text("x")
    assert "not a directory" in str(check_writable(tmp_path / "file"))
    if os.geteuid() != 0:
        os.chmod(tmp_path, 0o500)
        try:
            assert "Permission denied" in str(check_writable(tmp_path))
        finally:
            os.chmod(tmp_path, 0o700)


def test_a_name_created_in_a_round_gets_its_directory_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The directory is fsynced in the round a file first opens, even when a file listed after
    it does not exist yet (frames.mp4 before its first fragment)."""
    import aiconfig._files

    synced: list[Path] = []
    monkeypatch.setattr(aiconfig._files, "fsync_dir", synced.append)
    syncer = Syncer(1.0)
    first, later = tmp_path / "events.journal", tmp_path / "frames.mp4"
    syncer.add(first)
    syncer.add(later)
    syncer.sync_all()  # round 0: the directory is always synced
    assert synced == [tmp_path]
    first.write_bytes(b"row")
    syncer.sync_all()  # events.journal opens now, frames.mp4 is still missing
    assert synced == [tmp_path, tmp_path]
    syncer.sync_all()  # nothing new: no directory fsync
    assert synced == [tmp_path, tmp_path]
    syncer.stop()


def test_the_syncer_opens_what_it_may_fsync(tmp_path: Path) -> None:
    """Windows' fsync (FlushFileBuffers) needs write access, POSIX's does not; neither may
    create or truncate the writer's file."""
    from capture._storage import _open, _sync_flags

    assert _sync_flags("win32") & os.O_ACCMODE == os.O_RDWR
    assert _sync_flags("linux") & os.O_ACCMODE == os.O_RDONLY
    for platform in ("win32", "linux", "darwin"):
        assert not _sync_flags(platform) & (os.O_TRUNC | os.O_CREAT)
    path = tmp_path / "frames.mp4"
    path.write_bytes(b"data")
    fd = _open(path)
    assert fd is not None
    os.fsync(fd)  # what the Syncer does with it
    os.close(fd)
    assert path.read_bytes() == b"data"
