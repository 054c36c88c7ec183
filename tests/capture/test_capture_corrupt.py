"""Corrupted copies of a real session: ``capture validate`` and ``capture recover`` diagnose each
in one line per problem, recover what can be recovered, never crash and never lose the original
bytes (recover keeps them in ``.original/``, or changes nothing when it refuses)."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.capture.capture_helpers import cut_journal, record_session, run_cli

pytestmark = [pytest.mark.x11, pytest.mark.slow]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, xvfb_server: str) -> Path:
    return record_session(tmp_path_factory.mktemp("recorded"), xvfb_server)


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def _truncate_video(s: Path) -> None:
    data = (s / "frames.mp4").read_bytes()
    (s / "frames.mp4").write_bytes(data[: int(len(data) * 0.6)])


def _flip_events(s: Path) -> None:
    data = bytearray((s / "events.parquet").read_bytes())
    at = len(data) // 2
    for i in range(at, at + 16):
        data[i] ^= 0xFF
    (s / "events.parquet").write_bytes(bytes(data))


def _no_footer(s: Path) -> None:
    data = (s / "events.parquet").read_bytes()
    (s / "events.parquet").write_bytes(data[: len(data) - 600])


def _garbage_metadata(s: Path) -> None:
    (s / "metadata.json").write_bytes(b'{"format_version": "1.0.0", "fps": \x00\xff garbage')


# (damage, recover's exit status, what its one line says)
CASES: dict[str, tuple[Callable[[Path], None], int, str]] = {
    "truncated frames.mp4": (_truncate_video, 0, "recovered"),
    "flipped bytes in events.parquet": (_flip_events, 0, "recovered"),
    "events.parquet without footer": (_no_footer, 1, "no journal remains"),
    "garbage metadata.json": (_garbage_metadata, 1, "metadata.json: unreadable"),
    "journal cut mid-record": (cut_journal, 0, "recovered"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_corrupt_session(case: str, recorded: Path, tmp_path: Path) -> None:
    damage, recover_rc, says = CASES[case]
    session = tmp_path / recorded.name
    shutil.copytree(recorded, session)
    damage(session)
    damaged = _digests(session)

    bad = run_cli("validate", str(session))
    assert bad.returncode == 1, bad.stdout
    assert "Traceback" not in bad.stderr
    lines = bad.stderr.splitlines()
    assert lines and all(line.startswith("invalid: ") for line in lines), bad.stderr

    fixed = run_cli("recover", str(session))
    assert "Traceback" not in fixed.stderr
    assert fixed.returncode == recover_rc, fixed.stdout + fixed.stderr
    assert says in fixed.stdout + fixed.stderr
    if recover_rc == 0:
        good = run_cli("validate", str(session))
        assert good.returncode == 0, good.stderr
        meta = json.loads((session / "metadata.json").read_text())
        assert meta["status"] == "recovered" and meta["frame_count"] > 0
        # Every damaged file is kept, byte for byte, beside the recovered ones.
        originals = _digests(session / ".original")
        assert all(damaged[name] == digest for name, digest in originals.items())
        assert set(originals) >= set(damaged) - {"events.parquet"} - {"audio.wav"}
    else:
        assert fixed.stderr.count("\n") == 1 and fixed.stderr.startswith("error: ")
        assert _digests(session) == damaged and not (session / ".original").exists()
