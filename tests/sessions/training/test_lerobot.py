"""The LeRobot v3 export: layout and dtypes as LeRobot 0.4.4 writes them, frames decoded at
``timestamp`` equal to the dataset's, actions and provenance per episode, the CLI."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aiconfig import AIConfig
from aiconfig.sessions import ActionSpec, SessionDataset, export_lerobot, open_session
from aiconfig.sessions._catalog import read_row
from aiconfig.sessions._decode import to_array
from aiconfig.sessions._report import render_session
from tests.capture.capture_helpers import REPO, run_env

from ..reads import count_binning, count_event_reads
from .conftest import TimedRoot

pytestmark = [pytest.mark.x11, pytest.mark.slow]

CFG = AIConfig.model_validate(
    {"meta": {"name": "t", "version": 1}, "training": {"dataset": {"min_session_s": 1}}}
)
SPEC = ActionSpec.from_model(CFG.model)
KEY = "observation.images.screen"


@pytest.fixture(scope="module")
def exported(timed: TimedRoot, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lerobot") / "out"
    result = export_lerobot([timed.root], out, spec=SPEC)
    assert result.episodes == 2 and result.frames == 180 and result.fps == 30
    return out


def decode_at_timestamps(video: Path) -> dict[float, Any]:
    """Frame by presentation time in seconds (what LeRobot asks its decoder for)."""
    out = {}
    with av.open(str(video)) as c:
        s = c.streams.video[0]
        assert s.time_base is not None
        for f in c.decode(s):
            assert f.pts is not None
            out[round(float(Fraction(f.pts) * s.time_base), 6)] = f
    return out


def test_layout_and_dtypes_are_lerobots(exported: Path) -> None:
    files = sorted(str(p.relative_to(exported)) for p in exported.rglob("*") if p.is_file())
    assert files == [
        "data/chunk-000/file-000.parquet",
        "data/chunk-000/file-001.parquet",
        "meta/episodes/chunk-000/file-000.parquet",
        "meta/info.json",
        "meta/stats.json",
        "meta/tasks.parquet",
        f"videos/{KEY}/chunk-000/file-000.mp4",
        f"videos/{KEY}/chunk-000/file-001.mp4",
    ]
    info = json.loads((exported / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 30
    assert info["total_episodes"] == 2 and info["total_frames"] == 180
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert (
        info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    )
    f = info["features"]
    assert f[KEY]["dtype"] == "video" and f[KEY]["shape"] == [240, 320, 3]
    assert f[KEY]["names"] == ["height", "width", "channels"]
    assert f[KEY]["info"]["video.codec"] == "h264" and f[KEY]["info"]["video.fps"] == 30
    assert f["action"] == {
        "dtype": "float32", "shape": [11],
        "names": [*SPEC.action_space, "mouse_x", "mouse_y", "scroll"],
    }  # fmt: skip
    assert f["observation.state"]["shape"] == [len(SPEC.key_vocabulary) + 6]
    for name in ("frame_index", "episode_index", "index", "task_index"):
        assert f[name] == {"dtype": "int64", "shape": [1], "names": None}
    assert f["timestamp"]["dtype"] == "float32"
    data = pq.read_table(exported / "data/chunk-000/file-000.parquet")
    assert data.schema.field("action").type == pa.list_(pa.float32(), 11)
    assert data.schema.field("timestamp").type == pa.float32()
    for name in ("frame_index", "episode_index", "index", "task_index"):
        assert data.schema.field(name).type == pa.int64()
    tasks = pq.read_table(exported / "meta/tasks.parquet")
    assert tasks.column_names == ["task_index", "__index_level_0__"]
    assert tasks.to_pylist() == [{"task_index": 0, "__index_level_0__": "play League of Legends"}]
    assert b"pandas" in (tasks.schema.metadata or {})
    stats = json.loads((exported / "meta/stats.json").read_text())
    assert set(stats[KEY]) == {
        "min",
        "max",
        "mean",
        "std",
        "count",
        "q01",
        "q10",
        "q50",
        "q90",
        "q99",
    }
    assert np.asarray(stats[KEY]["mean"]).shape == (3, 1, 1)
    assert stats["frame_index"]["max"] == [89] and stats["index"]["count"] == [180]


def test_frames_at_timestamp_equal_ours_and_actions_match(timed: TimedRoot, exported: Path) -> None:
    ds = SessionDataset.from_config(CFG, split="all", root=timed.root)
    episodes = pq.read_table(exported / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["dataset_from_index"] for e in episodes] == [0, 90]
    for e, ep in enumerate(episodes):
        src = next(s for s in ds.sources if s.id == ep["aiconfig/session_id"])
        assert ep["length"] == src.frame_count and ep[f"videos/{KEY}/from_timestamp"] == 0.0
        rows = pq.read_table(exported / f"data/chunk-000/file-{e:03d}.parquet").to_pylist()
        frames = decode_at_timestamps(exported / f"videos/{KEY}/chunk-000/file-{e:03d}.mp4")
        assert len(frames) == len(rows) == src.frame_count
        base = ds._starts[ds.sources.index(src)]
        for row in rows:
            i = row["frame_index"]
            assert row["index"] == ep["dataset_from_index"] + i and row["episode_index"] == e
            assert abs(row["timestamp"] - i / 30) < 1e-6
            ours = ds[base + i]
            got = to_array(frames[round(i / 30, 6)], ds.resolution)
            assert np.array_equal(got, ours["frames"][-1].numpy()), (e, i)
            want = [*ours["action"].tolist(), *ours["mouse"].tolist(), float(ours["scroll"])]
            np.testing.assert_allclose(row["action"], want)


def test_provenance_is_kept_per_episode(timed: TimedRoot, exported: Path) -> None:
    episodes = pq.read_table(exported / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    by_session = {e["aiconfig/session_id"]: e for e in episodes}
    signed = by_session[open_session(timed.injected[1].session).id]
    assert signed["aiconfig/config_name"] == "lol-bc-baseline"
    assert (
        signed["aiconfig/config_digest"]
        == open_session(timed.injected[1].session).provenance["sha256"]
    )
    assert signed["aiconfig/signers"] == ["lead@aiconfig.dev", "research@aiconfig.dev"]
    assert signed["aiconfig/run_id"] == "timed-run"
    plain = by_session[open_session(timed.injected[0].session).id]
    assert plain["aiconfig/config_digest"] is None and plain["aiconfig/signers"] == []


def test_a_lower_fps_keeps_every_tap(timed: TimedRoot, tmp_path: Path) -> None:
    out = tmp_path / "out15"
    res = export_lerobot([timed.root], out, spec=SPEC, fps=15)
    assert res.frames == 90 and json.loads((out / "meta/info.json").read_text())["fps"] == 15
    for inj in timed.injected:
        sid = open_session(inj.session).id
        episodes = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
        e = next(ep["episode_index"] for ep in episodes if ep["aiconfig/session_id"] == sid)
        rows = pq.read_table(out / f"data/chunk-000/file-{e:03d}.parquet").to_pylist()
        for key, frame in inj.keys.items():
            if key in SPEC.action_map:
                col = SPEC.action_space.index(SPEC.action_map[key])
                hot = [r["frame_index"] for r in rows if r["action"][col] == 1.0]
                assert hot == [frame // 2], key
        # Export frame j is session frame 2j, losslessly.
        src = decode_at_timestamps(inj.session / "frames.mp4")
        got = decode_at_timestamps(out / f"videos/{KEY}/chunk-000/file-{e:03d}.mp4")
        for j in (0, 10, 44):
            a = to_array(got[round(j / 15, 6)], (320, 240))
            b = to_array(src[round(2 * j / 30, 6)], (320, 240))
            assert np.array_equal(a, b)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aiconfig", "sessions", "export", *args],
        capture_output=True, text=True, env=run_env(), cwd=REPO, check=False,
    )  # fmt: skip


def test_the_cli(timed: TimedRoot, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    res = _cli(str(timed.root), str(out), "--format", "lerobot", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["episodes"] == 2 and doc["codebase_version"] == "v3.0"
    again = _cli(str(timed.root), str(out))
    assert again.returncode == 1 and "already exists" in again.stderr
    assert "Traceback" not in again.stderr
    bad = _cli(str(timed.root), str(tmp_path / "odd"), "--fps", "7")
    assert bad.returncode == 1 and "--fps 7 does not divide the sessions' fps (30)" in bad.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli"]  # nothing half-written
    usage = _cli(str(timed.root), str(tmp_path / "u"), "--fps", "0")
    assert usage.returncode == 2


def test_the_export_reads_and_bins_each_session_once(
    timed: TimedRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan reads, validates and bins every session; the episodes are made from that."""
    reads, bins = count_event_reads(monkeypatch), count_binning(monkeypatch)
    res = export_lerobot([timed.root], tmp_path / "out", spec=SPEC, fps=15)
    assert res.episodes == 2
    once = {inj.session.resolve(): 1 for inj in timed.injected}
    assert reads == once and bins == once


def _report_provenance(session: Path) -> dict[str, str]:
    text = render_session(session)
    table = re.search(r"<h2>Provenance</h2><table>(.*?)</table>", text)
    assert table is not None
    return {
        html.unescape(k): html.unescape(v)
        for k, v in re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", table.group(1))
    }


def test_the_catalog_the_report_and_the_export_agree_on_provenance(
    timed: TimedRoot, exported: Path
) -> None:
    episodes = pq.read_table(exported / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    by_session = {e["aiconfig/session_id"]: e for e in episodes}
    for inj in timed.injected:
        row = read_row(inj.session, timed.root)
        ep = by_session[row["session_id"]]
        shown = _report_provenance(inj.session)
        assert ep["aiconfig/session_path"] == str(inj.session)
        assert ep["aiconfig/format_version"] == row["format_version"] == "1.0.0"
        assert ep["aiconfig/run_id"] == row["run_id"] == shown["run id"]
        assert ep["aiconfig/config_name"] == row["config_name"]
        assert ep["aiconfig/config_path"] == row["config_path"]
        assert ep["aiconfig/config_digest"] == row["config_digest"]
        assert shown["config"] == (row["config_path"] or "-")
        assert shown["sha256"] == (row["config_digest"] or "-")
        assert ep["aiconfig/signers"] == (row["signers"] or [])
        listed = [] if shown["signers"] == "-" else shown["signers"].split(", ")
        assert [s.split(" (")[0] for s in listed] == ep["aiconfig/signers"]
    signed = read_row(timed.injected[1].session, timed.root)
    assert signed["config_name"] == "lol-bc-baseline"  # the config's meta.name
