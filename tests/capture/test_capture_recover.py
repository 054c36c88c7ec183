"""What ``capture recover`` costs: one rewrite of ``frames.mp4``, one read of a damaged
``events.parquet``, and a disk-space check that counts the copies made where the file system
refuses hard links (FAT/exFAT, another file system, some network shares).

Real sessions recorded on the suite's Xvfb: a finished one whose journal is then cut short (the
events end before the video), and one SIGKILLed while recording moving content.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pyarrow.parquet as pq
import pytest

from aiconfig import ConfigFileError
from capture._events import read_journal
from capture._recover import _SLACK, BACKUP_DIR, recover_session
from capture._storage import RESERVE_FILE
from capture._validate import validate_session
from tests.capture.capture_helpers import (
    REPO,
    cut_journal,
    record_session,
    run_cli,
    start_recording,
)

pytestmark = [pytest.mark.x11, pytest.mark.slow]

KEPT = (
    "frames.mp4",
    "webcam.mp4",
    "audio.wav",
    "events.parquet",
    "events.journal.arrows",
    "metadata.json",
    "manifest.json",
)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, xvfb_server: str) -> Path:
    return record_session(tmp_path_factory.mktemp("finished"), xvfb_server)


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory, xvfb_server: str) -> Iterator[Path]:
    """A session SIGKILLed ~3 s in while the screen changes every frame (the video grows)."""
    os.environ["DISPLAY"] = xvfb_server
    code = "import sys; sys.path.insert(0, %r)\nfrom benchmarks.bench_capture import PAINTER\n"
    painter = subprocess.Popen(
        [sys.executable, "-c", code % str(REPO) + "exec(PAINTER)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert painter.stdout is not None
    assert painter.stdout.readline().strip() == "ready"
    out = tmp_path_factory.mktemp("killed")
    try:
        proc = start_recording(
            out, "--allow-any", "--quiet", "--no-input", "--no-game-state", "--fps", "30",
            output=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(3.0)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        painter.kill()
        painter.wait()
        painter.stdout.close()
    session = next(out.glob("session_*"))
    assert json.loads((session / "manifest.json").read_text())["status"] == "recording"
    assert (session / RESERVE_FILE).is_file()  # a killed recorder leaves its space reserve
    yield session


def _copy(src: Path, tmp_path: Path) -> Path:
    session = tmp_path / src.name
    shutil.copytree(src, session)
    return session


def _state(folder: Path) -> dict[str, tuple[str, int]]:
    """Every entry under ``folder`` (hidden ones too): digest and inode of each file."""
    out: dict[str, tuple[str, int]] = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if p.is_file():
            out[rel] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_ino)
        else:
            out[rel] = ("dir", p.stat().st_ino)
    return out


def _packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as src:
        stream = src.streams.video[0]
        return [bytes(p) for p in src.demux(stream) if p.size and p.dts is not None]


def _count_video_writes(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    """Record every ``av.open`` that writes ``name`` (through its temp file beside it)."""
    real: Any = av.open
    writes: list[str] = []

    def counting(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if mode.startswith("w") and Path(str(file)).name.startswith(f".{name}."):
            writes.append(str(file))
        return real(file, mode, *args, **kwargs)

    monkeypatch.setattr(av, "open", counting)
    return writes


def test_frames_are_rewritten_once_when_the_events_end_before_the_video(
    finished: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = _copy(finished, tmp_path)
    cut_journal(session, keep=0.5)  # more lost from the journal than from the video
    original = _packets(session / "frames.mp4")
    journal, truncated = read_journal(session / "events.journal.arrows")
    rows = journal.to_pydict()
    frame_rows = [
        r
        for r, k, s in zip(rows["frame_ref"], rows["event_type"], rows["stream"], strict=True)
        if k == "frame" and s == "screen"
    ]
    assert truncated and frame_rows == list(range(len(frame_rows)))
    assert 0 < len(frame_rows) < len(original)  # the premise: the events end first

    writes = _count_video_writes(monkeypatch, "frames.mp4")
    meta = recover_session(session)

    assert len(writes) == 1, writes  # one rewrite of the video, not two
    n = len(frame_rows)
    assert meta["frame_count"] == n and meta["status"] == "recovered"
    assert meta["recovery"]["video_frames_readable"] == len(original)
    assert meta["recovery"]["video_frames_without_rows"] == len(original) - n
    assert meta["recovery"]["frame_rows_in_journal"] == n
    assert meta["recovery"]["lost_frames"] == 0
    assert meta["recovery"]["journal_truncated"] is True
    assert meta["recovery"]["events_from"] == "events.journal.arrows"
    assert meta["validation"]["ok"] is True and meta["validation"]["video_frames"] == n
    # The kept frames are the first n packets, byte for byte (no re-encode).
    assert _packets(session / "frames.mp4") == original[:n]
    events = pq.read_table(session / "events.parquet").to_pydict()
    kept = [
        r
        for r, k, s in zip(events["frame_ref"], events["event_type"], events["stream"], strict=True)
        if k == "frame" and s == "screen"
    ]
    assert kept == list(range(n))
    inputs = [r for r, s in zip(events["frame_ref"], events["stream"], strict=True) if s == "input"]
    assert all(0 <= r < n for r in inputs)
    assert validate_session(session) == []
    assert run_cli("validate", str(session)).returncode == 0


def test_a_damaged_events_parquet_is_read_once(
    finished: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = _copy(finished, tmp_path)
    data = bytearray((session / "events.parquet").read_bytes())
    at = len(data) // 2
    for i in range(at, at + 16):
        data[i] ^= 0xFF
    (session / "events.parquet").write_bytes(bytes(data))

    import capture._events

    real = capture._events.read_events_salvage
    reads: list[str] = []

    def counting(path: Path) -> tuple[Any, str | None]:
        reads.append(str(path))
        return real(path)

    for mod in [m for k, m in sys.modules.items() if k == "capture" or k.startswith("capture.")]:
        if getattr(mod, "read_events_salvage", None) is real:
            monkeypatch.setattr(mod, "read_events_salvage", counting)
    meta = recover_session(session)

    assert reads == [str(session / "events.parquet")]
    assert meta["status"] == "recovered" and meta["recovery"]["cause"] == "damaged"
    assert meta["recovery"]["events_from"] == "events.parquet"
    assert meta["recovery"]["journal_truncated"] is True  # a damaged row group was dropped
    whole = json.loads((finished / "metadata.json").read_text())["frame_count"]
    assert 0 < meta["frame_count"] < whole
    assert validate_session(session) == []


def _refuse_links(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``os.link`` as on FAT/exFAT or across file systems: EPERM / EXDEV, nothing created."""
    tried: list[str] = []

    def no_link(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        tried.append(str(dst))
        raise OSError(errno.EPERM, "Operation not permitted", str(src), None, str(dst))

    monkeypatch.setattr(os, "link", no_link)
    return tried


def _fake_free(monkeypatch: pytest.MonkeyPatch, session: Path, free: int) -> None:
    """``free`` bytes on the session's disk while the space reserve is gone; the reserve, while
    it is there, holds its own size of that (deleting it frees its space, as on a real disk)."""
    real = shutil.disk_usage

    def usage(path: Any) -> Any:
        reserve = session / RESERVE_FILE
        held = reserve.stat().st_size if reserve.is_file() else 0
        return real(path)._replace(free=free - held)

    monkeypatch.setattr(shutil, "disk_usage", usage)


def _sizes(session: Path) -> tuple[int, int, int]:
    """(rewritten: the videos and the WAV, events: the journal, kept: every file recovery
    keeps in .original/)."""

    def size(name: str) -> int:
        p = session / name
        return p.stat().st_size if p.is_file() else 0

    rewritten = sum(size(n) for n in ("frames.mp4", "webcam.mp4", "audio.wav"))
    return rewritten, size("events.journal.arrows"), sum(size(n) for n in KEPT)


def _between_one_and_two_copies(session: Path) -> int:
    """A free-space figure enough for the rewritten files beside hard-linked originals, but not
    for copies of the originals as well."""
    rewritten, events, kept = _sizes(session)
    assert events < kept // 2  # the premise: the video outweighs the events
    return rewritten + _SLACK + kept // 2


def test_recover_refuses_when_copies_would_not_fit_and_changes_nothing(
    killed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = _copy(killed, tmp_path)
    before = _state(session)
    tried = _refuse_links(monkeypatch)
    _fake_free(monkeypatch, session, _between_one_and_two_copies(session))

    with pytest.raises(ConfigFileError) as caught:
        recover_session(session)

    message = str(caught.value)
    assert "\n" not in message
    assert "not enough free space to recover" in message and "nothing was changed" in message
    assert "hard links" in message  # it says why two copies are needed
    assert tried  # it found out by trying
    assert _state(session) == before  # the reserve, the journal, every byte as it was
    assert not (session / BACKUP_DIR).exists()


def test_recover_with_links_fits_where_copies_would_not(
    killed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = _copy(killed, tmp_path)
    inode = (session / "frames.mp4").stat().st_ino
    before = _state(session)
    rewritten, _, _ = _sizes(session)
    _fake_free(monkeypatch, session, rewritten)  # not even room for the new video
    with pytest.raises(ConfigFileError, match="nothing was changed") as caught:
        recover_session(session)
    assert "hard links" not in str(caught.value)
    # The reserve is still there, and the link tried is gone again.
    assert _state(session) == before and not (session / BACKUP_DIR).exists()

    _fake_free(monkeypatch, session, _between_one_and_two_copies(session))
    meta = recover_session(session)

    assert meta["status"] == "recovered" and validate_session(session) == []
    assert (session / BACKUP_DIR / "frames.mp4").stat().st_ino == inode  # linked, not copied


def test_recover_copies_the_originals_where_links_are_refused(
    killed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = _copy(killed, tmp_path)
    before = {n: (session / n).read_bytes() for n in KEPT if (session / n).is_file()}
    inode = (session / "frames.mp4").stat().st_ino
    rewritten, events, kept = _sizes(session)
    _refuse_links(monkeypatch)
    # Room for copies of the originals beside the rewritten files and the new events.parquet.
    _fake_free(monkeypatch, session, kept + rewritten + events + _SLACK)

    meta = recover_session(session)

    assert meta["status"] == "recovered" and meta["stop_reason"] == "killed"
    assert validate_session(session) == []
    assert run_cli("validate", str(session)).returncode == 0
    kept_files = {p.name: p for p in (session / BACKUP_DIR).iterdir()}
    assert set(kept_files) == set(before)
    for name, path in kept_files.items():
        assert path.read_bytes() == before[name], name
        assert path.stat().st_nlink == 1, name
    assert kept_files["frames.mp4"].stat().st_ino != inode  # a copy
    assert not (session / RESERVE_FILE).exists()
    assert not [p for p in session.rglob("*") if p.name.endswith(".tmp")]
