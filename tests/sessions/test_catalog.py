"""``aiconfig sessions list/index/query/stats/validate`` on real recordings and on copies broken
in the ways the issue names: half-written, truncated Parquet, corrupt metadata, a future format
version, an unreadable directory."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from aiconfig.sessions import Catalog
from tests.conftest import REPO

from .conftest import Recorded, copy_session, session_dirs

pytestmark = [pytest.mark.x11, pytest.mark.audio, pytest.mark.slow]


def cli(
    *args: str, cwd: Path | None = None, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [*prefix, sys.executable, "-m", "aiconfig", "sessions", *args],
        capture_output=True, text=True, env=env, cwd=cwd or REPO, timeout=120, check=False,
    )  # fmt: skip


GOOD = 2
AS_USER = ("unshare", "--user", "--map-user=1000", "--map-group=1000")
EXPECTED = {
    "session_20990101_000001": ("recording", "not finalized"),
    "session_20990101_000002": ("failed", "events.parquet"),
    "session_20990101_000003": ("failed", "metadata.json: unreadable"),
    "session_20990101_000004": ("failed", "format_version 9.0.0 is newer"),
}


def test_list_shows_every_session_and_each_problem(broken_root: Path) -> None:
    res = cli("list", str(broken_root))
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert res.stdout.splitlines()[-1] == "6 sessions, 4 with problems"
    rows = json.loads(cli("list", "--json", str(broken_root)).stdout)
    by_path = {Path(r["path"]).name: r for r in rows}
    for name, (status, words) in EXPECTED.items():
        assert by_path[name]["status"] == status, by_path[name]
        assert words in by_path[name]["problem"], by_path[name]["problem"]
        assert name in res.stderr  # one "problem:" line each
    good = [r for r in rows if r["problem"] is None]
    assert len(good) == GOOD and {r["status"] for r in good} == {"complete"}
    played = next(r for r in good if r["input_status"] == "complete")
    streams = set(played["streams"].split())
    assert {"audio=complete", "input=complete", "screen=complete", "webcam=off"} <= streams
    assert played["frame_count"] == 90 and played["fps"] == 30.0 and played["width"] == 320
    assert played["event_counts"]["frame"] == 90 and played["input_events"] > 0


def test_query_runs_over_the_good_sessions_despite_the_bad(
    broken_root: Path, recorded: Recorded
) -> None:
    sql = ("SELECT session_id, count(*) AS presses FROM inputs WHERE event_type = 'key_press' "
           "GROUP BY session_id")  # fmt: skip
    res = cli("query", str(broken_root), sql, "--json")
    assert res.returncode == 0, res.stderr
    assert [r["presses"] for r in json.loads(res.stdout)] == [recorded.injected["key_press"]]
    frames = cli(
        "query",
        str(broken_root),
        "SELECT count(*) AS n FROM frames WHERE stream = 'screen'",
        "--csv",
    )
    assert frames.stdout == "n\n150\n"  # 90 + 60 frames of the two good sessions


def test_unreadable_directory_is_listed_with_its_problem(sessions_root: Path) -> None:
    locked = sessions_root / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        # As root every directory is readable: run as an unprivileged user (a user namespace in
        # which this tree belongs to uid 1000) so the mode is enforced.
        res = cli("list", "--json", str(sessions_root), prefix=AS_USER)
        sql = "SELECT count(DISTINCT session_id) AS n FROM events"
        q = cli("query", str(sessions_root), sql, "--csv", prefix=AS_USER)
    finally:
        locked.chmod(0o755)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    bad = [r for r in rows if r["path"] == "locked"]
    assert (
        len(bad) == 1 and "Permission denied" in bad[0]["problem"] and bad[0]["status"] == "failed"
    )
    assert sum(1 for r in rows if r["problem"] is None) == GOOD
    assert q.returncode == 0 and q.stdout == "n\n2\n"  # the two good sessions are queried


def test_validate_exits_1_and_names_each_invalid_session(broken_root: Path) -> None:
    res = cli("validate", "--json", str(broken_root))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    doc = json.loads(res.stdout)
    assert doc["sessions"] == 6 and doc["invalid"] == 4
    verdicts = {Path(v["path"]).name: v for v in doc["results"]}
    assert "recover" in verdicts["session_20990101_000001"]["problems"][0]
    text = cli("validate", str(broken_root))
    assert text.stdout.splitlines()[-1] == "2/6 sessions valid"
    for good in session_dirs(broken_root / "played") + session_dirs(broken_root / "plain"):
        assert verdicts[good.name]["valid"], verdicts[good.name]


def test_index_is_incremental(sessions_root: Path, recorded: Recorded) -> None:
    first = json.loads(cli("index", "--json", str(sessions_root)).stdout)
    assert (first["sessions"], first["read"], first["unchanged"]) == (2, 2, 0)
    again = json.loads(cli("index", "--json", str(sessions_root)).stdout)
    assert (again["read"], again["unchanged"]) == (0, 2)
    copy_session(
        session_dirs(sessions_root / "played")[0], sessions_root, "session_20990101_000010"
    )
    shutil.rmtree(session_dirs(sessions_root / "plain")[0])
    third = json.loads(cli("index", "--json", str(sessions_root)).stdout)
    assert (third["sessions"], third["read"], third["unchanged"], third["removed"]) == (2, 1, 1, 1)
    table = pq.read_table(sessions_root / "sessions.parquet")
    assert sorted(table["session_id"].to_pylist())[-1] == "session_20990101_000010"
    # The catalog trusts an unchanged row without opening the session again.
    cat = Catalog(sessions_root)
    assert cat.refresh().read == 0


def test_a_session_whose_video_alone_changed_is_read_again(
    sessions_root: Path, tmp_path: Path
) -> None:
    cat = Catalog(sessions_root)
    assert cat.index().read == 2
    played = session_dirs(sessions_root / "played")[0]
    video = played / "frames.mp4"

    def played_row() -> dict[str, object]:
        table = pq.read_table(sessions_root / "sessions.parquet")
        return next(r for r in table.to_pylist() if r["session_id"] == played.name)

    assert played_row()["status"] == "complete"
    kept = tmp_path / "frames.mp4"
    shutil.move(video, kept)  # the video is gone; no other file of the session changed
    result = cat.index()
    assert (result.read, result.reused) == (1, 1)
    row = played_row()
    assert row["status"] == "failed" and "frames.mp4 is missing" in str(row["problem"])
    shutil.copyfile(kept, video)  # repaired: the same bytes written again (a new mtime)
    result = cat.index()
    assert (result.read, result.reused) == (1, 1)
    row = played_row()
    assert row["status"] == "complete" and row["problem"] is None
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # re-recorded in place
    assert cat.index().read == 1
    assert cat.index().read == 0  # and unchanged after that


def test_query_outputs_and_errors(sessions_root: Path, tmp_path: Path) -> None:
    sql = "SELECT session_id, frame_count, padded_frames FROM sessions ORDER BY session_id"
    table = cli("query", str(sessions_root), sql)
    assert table.returncode == 0 and table.stdout.splitlines()[-1] == "(2 rows)"
    rows = list(csv.DictReader(io.StringIO(cli("query", str(sessions_root), sql, "--csv").stdout)))
    assert sorted(int(r["frame_count"]) for r in rows) == [60, 90]
    out = tmp_path / "result.parquet"
    res = cli("query", str(sessions_root), sql, "--parquet", str(out))
    assert res.returncode == 0 and pq.read_table(out).num_rows == 2
    bad = cli("query", str(sessions_root), "SELECT nope FROM sessions")
    assert bad.returncode == 1 and bad.stdout == ""
    lines = bad.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "nope" in lines[0]
    for sql in (
        f"COPY (SELECT 1) TO '{sessions_root}/x.csv'",
        "SELECT 1; SELECT 2",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SET enable_external_access = true",
    ):
        refused = cli("query", str(sessions_root), sql)
        assert refused.returncode == 1, sql
        assert len(refused.stderr.splitlines()) == 1 and "Traceback" not in refused.stderr
    assert not (sessions_root / "x.csv").exists()
    usage = cli("query", str(sessions_root))
    assert usage.returncode == 2


def test_stats_text_and_json(sessions_root: Path) -> None:
    res = cli("stats", "--json", str(sessions_root))
    assert res.returncode == 0, res.stderr
    st = json.loads(res.stdout)
    assert st["sessions"] == 2 and st["frames"] == 150
    assert st["events_by_type"]["frame"] == 150 and st["events_by_type"]["key_press"] > 0
    assert st["hours_recorded"] == pytest.approx(5 / 3600, abs=1e-4)
    assert set(st["distributions"]) == {"duration_s", "actual_fps", "padded_rate", "dropped_rate"}
    text = cli("stats", str(sessions_root)).stdout
    assert "150 frames" in text and "focus lost" in text


def test_missing_root_is_one_line(tmp_path: Path) -> None:
    res = cli("list", str(tmp_path / "nowhere"))
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "no such directory" in res.stderr


def test_a_session_given_as_root_is_listed_but_not_indexed(sessions_root: Path) -> None:
    played = session_dirs(sessions_root / "played")[0]
    rows = json.loads(cli("list", "--json", str(played)).stdout)
    assert [r["session_id"] for r in rows] == [played.name] and rows[0]["path"] == "."
    q = cli("query", str(played), "SELECT count(*) AS n FROM frames", "--csv")
    assert q.stdout == "n\n90\n"
    res = cli("index", str(played))
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "is a session" in res.stderr
    assert not (played / "sessions.parquet").exists()
