"""Ray Data on a local cluster (ray.init(num_cpus=2)): the same samples as the local dataset,
and the LeRobot export with --engine ray equal to the local one."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from aiconfig import AIConfig
from aiconfig.sessions import ActionSpec, SessionDataset, export_lerobot
from tests.capture.capture_helpers import REPO

from ..reads import count_binning, count_event_reads
from .conftest import TimedRoot

ray = pytest.importorskip("ray")  # the 'ray' extra; CI installs it (scripts/setup.sh)

pytestmark = [
    pytest.mark.x11,
    pytest.mark.slow,
    # Ray Data warns about its own deprecated settings while it runs (ray/data/context.py).
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray"),
]

CFG = AIConfig.model_validate(
    {"meta": {"name": "t", "version": 1}, "training": {"dataset": {"min_session_s": 1}}}
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    os.environ["PYTHONPATH"] = f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_read_sessions_gives_the_local_samples(timed: TimedRoot, cluster: None) -> None:
    from aiconfig.sessions.ray import read_sessions

    summary: dict[str, object] = {}
    ds = read_sessions([timed.root], config=CFG, summary=summary).materialize()
    assert ds.num_blocks() == 4  # one read task per clip: 2 sessions x 2 clips of 2 GOPs
    rows = ds.take_all()
    local = SessionDataset.from_config(CFG, split="all", root=timed.root)
    assert len(rows) == len(local) == 180 and summary["sessions_used"] == 2
    by_key = {(r["session_id"], int(r["frame_index"])): r for r in rows}
    for j in range(len(local)):
        s = local[j]
        r = by_key[(s["session_id"], s["frame_index"])]
        assert r["frames"].dtype == np.uint8 and r["frames"].shape == (4, 3, 144, 256)
        for key in ("frames", "action", "keys", "buttons", "mouse"):
            assert np.array_equal(r[key], s[key].numpy()), key
        assert (
            float(r["scroll"]) == float(s["scroll"]) and bool(r["mouse_known"]) == s["mouse_known"]
        )


def test_export_with_ray_equals_the_local_export(
    timed: TimedRoot, cluster: None, tmp_path: Path
) -> None:
    spec = ActionSpec.from_model(CFG.model)
    local = export_lerobot([timed.root], tmp_path / "local", spec=spec)
    remote = export_lerobot([timed.root], tmp_path / "ray", spec=spec, engine="ray")
    assert remote.engine == "ray" and (remote.episodes, remote.frames) == (
        local.episodes,
        local.frames,
    )
    for rel in ("data/chunk-000/file-000.parquet", "data/chunk-000/file-001.parquet"):
        assert pq.read_table(tmp_path / "local" / rel).equals(pq.read_table(tmp_path / "ray" / rel))
    for video in (tmp_path / "local").rglob("*.mp4"):
        twin = tmp_path / "ray" / video.relative_to(tmp_path / "local")
        assert twin.read_bytes() == video.read_bytes()
    assert (tmp_path / "local/meta/stats.json").read_text() == (
        tmp_path / "ray/meta/stats.json"
    ).read_text()


@contextmanager
def _events_hidden(root: Path) -> Iterator[None]:
    """Every session's events.parquet moved away: what still works needs only the videos."""
    moved = [(p, p.with_name("events.parquet.away")) for p in root.rglob("events.parquet")]
    for src, dst in moved:
        src.rename(dst)
    try:
        yield
    finally:
        for src, dst in moved:
            dst.rename(src)


def test_read_tasks_are_handed_the_planned_actions(
    timed: TimedRoot, cluster: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan reads and bins each session once; the read tasks (other processes) decode
    the video and are handed the rest."""
    from aiconfig.sessions.ray import read_sessions

    root = tmp_path / "sessions"
    shutil.copytree(timed.root, root)
    reads, bins = count_event_reads(monkeypatch), count_binning(monkeypatch)
    ds = read_sessions([root], config=CFG)
    once = {p.parent.resolve(): 1 for p in root.rglob("events.parquet")}
    assert len(once) == 2 and reads == once and bins == once
    with _events_hidden(root):
        rows = ds.take_all()
    assert len(rows) == 180


def test_export_tasks_are_handed_the_planned_episodes(
    timed: TimedRoot, cluster: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiconfig.sessions import ray as sessions_ray

    root = tmp_path / "sessions"
    shutil.copytree(timed.root, root)
    reads, bins = count_event_reads(monkeypatch), count_binning(monkeypatch)
    real = sessions_ray.export_episodes

    def tasks_without_events(*args: Any, **kwargs: Any) -> Any:
        with _events_hidden(root):
            return real(*args, **kwargs)

    monkeypatch.setattr(sessions_ray, "export_episodes", tasks_without_events)
    spec = ActionSpec.from_model(CFG.model)
    res = export_lerobot([root], tmp_path / "ray", spec=spec, engine="ray")
    once = {p.parent.resolve(): 1 for p in root.rglob("events.parquet")}
    assert res.episodes == 2 and reads == once and bins == once
