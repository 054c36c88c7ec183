"""Bad input: damaged sessions are skipped and counted (never a crash mid-epoch, never a wrong
label); a key map naming an unknown action is a validation error naming the file and key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from aiconfig._errors import SessionError
from aiconfig.sessions import ActionSpec, SessionDataset, bin_actions, open_session
from aiconfig.sessions._decode import FrameReader
from tests.capture.capture_helpers import REPO, run_env
from tests.sessions.replicate import replicate

from .conftest import TimedRoot

pytestmark = [pytest.mark.x11, pytest.mark.slow]

SPEC = ActionSpec(("move", "q"), ("q", "w"), {"mouse_right": "move", "q": "q"})


def _keep_packets(video: Path, n: int) -> None:
    """``video`` cut to its first ``n`` packets (a well-formed but short MP4)."""
    tmp = video.with_suffix(".tmp.mp4")
    with av.open(str(video)) as inp, av.open(str(tmp), "w") as out:
        ost = out.add_stream_from_template(inp.streams.video[0])
        for i, packet in enumerate(inp.demux(inp.streams.video[0])):
            if packet.dts is None or i >= n:
                continue
            packet.stream = ost
            out.mux(packet)
    tmp.replace(video)


def _frame_ref_out_of_range(session: Path) -> None:
    table = pq.read_table(session / "events.parquet")
    inputs = pc.equal(table["stream"], "input").to_pylist()
    first = inputs.index(True)
    refs = table["frame_ref"].to_pylist()
    refs[first] = 10_000
    table = table.set_column(
        table.schema.get_field_index("frame_ref"), "frame_ref", pa.array(refs, pa.int32())
    )
    pq.write_table(table, session / "events.parquet")


@pytest.fixture
def damaged(timed: TimedRoot, tmp_path: Path) -> Path:
    root = tmp_path / "sessions"
    good = timed.injected[0].session
    replicate(good, root / "session_20990101_000000")
    short = replicate(good, root / "session_20990101_000001")
    _keep_packets(short / "frames.mp4", 60)
    cut = replicate(good, root / "session_20990101_000002")
    data = (cut / "frames.mp4").read_bytes()
    (cut / "frames.mp4").write_bytes(data[: len(data) // 2])
    _frame_ref_out_of_range(replicate(good, root / "session_20990101_000003"))
    open_ = replicate(good, root / "session_20990101_000004")
    manifest = json.loads((open_ / "manifest.json").read_text())
    manifest["status"] = "recording"
    (open_ / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_damaged_sessions_are_skipped_and_counted(damaged: Path) -> None:
    ds = SessionDataset([damaged], spec=SPEC)
    summary = ds.summary()
    assert [s.id for s in ds.sources] == ["session_20990101_000000"]
    assert summary["skipped"] == {"invalid": 3, "unfinished": 1}
    reasons = {s["session"]: s["reason"] for s in summary["skipped_sessions"]}
    assert "frame" in reasons["session_20990101_000001"]  # video shorter than its rows
    assert "frames.mp4" in reasons["session_20990101_000002"]  # truncated
    assert "frame_ref" in reasons["session_20990101_000003"]
    assert "recording" in reasons["session_20990101_000004"]
    for j in range(len(ds)):  # a whole epoch, no crash
        assert ds[j]["frames"].shape[0] == 4


def test_bin_actions_refuses_a_frame_ref_outside_the_video(damaged: Path) -> None:
    session = open_session(damaged / "session_20990101_000003")
    with pytest.raises(SessionError, match=r"frame_ref outside 0\.\.89.*10000"):
        bin_actions(session, SPEC)


def test_the_reader_names_a_missing_frame_instead_of_returning_another(damaged: Path) -> None:
    video = damaged / "session_20990101_000001" / "frames.mp4"
    reader = FrameReader((64, 36))
    assert reader.frames(video, 30.0, 30, [59])[0].shape == (3, 36, 64)
    with pytest.raises(SessionError, match="frame 75 is past the end of the video"):
        reader.frames(video, 30.0, 30, [75])


def test_an_unknown_action_in_the_key_map_is_a_validation_error(tmp_path: Path) -> None:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(
        "meta: {name: x, version: 1}\n"
        "model:\n"
        "  action_space: [move, q]\n"
        "  action_map: {mouse_right: mvoe, q: q}\n"
    )
    res = subprocess.run(
        [sys.executable, "-m", "aiconfig", "validate", "--allow-unsigned", str(cfg)],
        capture_output=True, text=True, env=run_env(), cwd=REPO, check=False,
    )  # fmt: skip
    assert res.returncode == 1 and "Traceback" not in res.stderr
    error = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(error) == 1
    assert f"{cfg}:4: model.action_map:" in error[0]
    assert "'mouse_right' maps to 'mvoe'" in error[0] and "did you mean 'move'" in error[0]


def test_a_session_too_big_to_load_whole_is_still_judged_by_the_validator(
    damaged: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading a session's whole event table can run out of the run's memory budget; the
    validator then streams it (as it always did) and the damaged sessions are still skipped
    with their reasons, instead of the dataset failing on the first one."""
    from aiconfig._errors import BudgetError
    from aiconfig.sessions import _session

    real = _session.Session.events

    def events(self: _session.Session, **kw: object) -> object:
        if self.id != "session_20990101_000000":  # the damaged ones are "too big"
            raise BudgetError("reading events.parquet ran out of the memory budget")
        return real(self, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(_session.Session, "events", events)
    ds = SessionDataset([damaged], spec=SPEC)
    assert [s.id for s in ds.sources] == ["session_20990101_000000"]
    assert ds.summary()["skipped"] == {"invalid": 3, "unfinished": 1}
