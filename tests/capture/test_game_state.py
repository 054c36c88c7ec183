"""The League game-state stream against a local Live Client Data API over real TLS (a CA made
in the test signs the server's certificate): rows at the right frames, TLS never switched off,
and the stream degrading alone when the game is not there or goes away."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from aiconfig import CaptureConfig, GameStateConfig
from capture._events import EventJournal, read_journal
from capture._game_state import BUNDLED_CA, GameStateStream, load_ca
from capture._timeline import FrameClock
from tests.capture.game_server import GameServer, make_ca, make_server_cert


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    ca_key, ca_cert, ca_path = make_ca(tmp_path)
    cert, key = make_server_cert(tmp_path, ca_key, ca_cert)
    _, _, other = make_ca(tmp_path, "Someone Else")
    return {"ca": ca_path, "cert": cert, "key": key, "other_ca": other}


@pytest.fixture
def game(pki: dict[str, Path]) -> Iterator[GameServer]:
    server = GameServer(pki["cert"], pki["key"])
    try:
        yield server
    finally:
        server.close()


def _rows(tmp_path: Path) -> list[dict[str, Any]]:
    table = read_journal(tmp_path / "events.journal.arrows")[0].to_pydict()
    return [dict(zip(table, values, strict=True)) for values in zip(*table.values(), strict=True)]


def _run(cfg: GameStateConfig, tmp_path: Path, seconds: float, fps: int = 60) -> Any:
    tmp_path.mkdir(parents=True, exist_ok=True)
    journal = EventJournal(tmp_path / "events.journal.arrows")
    clock = FrameClock(time.monotonic_ns(), fps)
    stream = GameStateStream(cfg, journal, session_id="s", window_id="League of Legends", fps=fps)
    stream.start(clock)
    return stream, journal, clock


def test_state_and_events_land_at_their_frames(
    game: GameServer, pki: dict[str, Path], tmp_path: Path
) -> None:
    cfg = GameStateConfig(url=game.url, ca_file=str(pki["ca"]), poll_hz=4)
    kill_at = time.monotonic_ns() + 700_000_000
    game.schedule(7, "ChampionKill", kill_at, KillerName="Player#EUW", VictimName="Enemy#EUW")
    game.schedule(8, "DragonKill", kill_at + 333_000_000, DragonType="Fire", Stolen="False")
    stream, journal, clock = _run(cfg, tmp_path, 1.6)
    time.sleep(1.6)
    info = stream.stop()
    journal.close()
    assert info["status"] == "complete" and info["error"] is None and info["tls_verified"]
    assert info["events_before_recording"] == 2  # GameStart, MinionsSpawning: counted only
    rows = _rows(tmp_path)
    assert {r["stream"] for r in rows} == {"game"}
    states = [r for r in rows if r["event_type"] == "game_state"]
    events = [r for r in rows if r["event_type"] == "game_event"]
    assert 4 <= len(states) <= 8 and info["state_rows"] == len(states)
    first = json.loads(states[0]["metadata"])
    assert first["game_mode"] == "CLASSIC" and first["active_player"]["current_gold"] == 512.5
    assert first["players"][1] == {
        "championName": "Garen",
        "team": "CHAOS",
        "level": 2,
        "isDead": True,
        "respawnTimer": 9.5,
        "position": "TOP",
        "name": "Enemy#EUW",
        "scores": {"kills": 0, "deaths": 1, "assists": 0, "creepScore": 8},
    }
    assert [json.loads(e["metadata"])["event"]["EventName"] for e in events] == [
        "ChampionKill",
        "DragonKill",
    ]
    for row, at in zip(events, (kill_at, kill_at + 333_000_000), strict=True):
        assert abs(row["t_ns"] - at) < 5_000_000  # game time -> recorder clock, within 5 ms
        assert row["frame_ref"] == clock.index_at(row["t_ns"])
        assert abs(row["frame_ref"] - clock.index_at(at)) <= 1
    for row in states:
        assert row["frame_ref"] == clock.index_at(row["t_ns"])
    times = [r["t_ns"] for r in rows]
    assert times == sorted(times)  # one stream, in time order


def test_tls_is_verified_never_skipped(
    game: GameServer, pki: dict[str, Path], tmp_path: Path
) -> None:
    for ca in (str(pki["other_ca"]), None):  # a stranger's CA, and Riot's own root
        cfg = GameStateConfig(url=game.url, ca_file=ca, poll_hz=10)
        stream, journal, _ = _run(cfg, tmp_path / str(ca is None), 0.3)
        time.sleep(0.3)
        info = stream.stop()
        journal.close()
        assert info["status"] == "failed", info
        assert "TLS verification failed" in info["error"]
        assert "CERTIFICATE_VERIFY_FAILED" in info["error"]
        assert info["state_rows"] == 0
    # The right CA but another expected name: the name is checked too.
    cfg = GameStateConfig(url=game.url, ca_file=str(pki["ca"]), server_name="rclient", poll_hz=10)
    stream, journal, _ = _run(cfg, tmp_path / "name", 0.3)
    time.sleep(0.3)
    info = stream.stop()
    journal.close()
    assert info["status"] == "failed" and "server_name" in info["error"], info
    assert game.requests == 0  # no request was ever sent over an unverified connection


def test_no_game_then_game_ends(game: GameServer, pki: dict[str, Path], tmp_path: Path) -> None:
    closed_port = game.url.replace(str(game.port), "9")  # nothing listens on port 9
    cfg = GameStateConfig(url=closed_port, ca_file=str(pki["ca"]), poll_hz=10)
    stream, journal, _ = _run(cfg, tmp_path / "a", 0.3)
    time.sleep(0.3)
    info = stream.stop()
    journal.close()
    assert info["status"] == "no_game" and info["polls"] >= 2
    assert "connection refused" in info["last_refusal"].lower()

    cfg = GameStateConfig(url=game.url, ca_file=str(pki["ca"]), poll_hz=10)
    stream, journal, _ = _run(cfg, tmp_path / "b", 0.6)
    time.sleep(0.4)
    game.close()  # the game ended: the API goes away
    time.sleep(0.4)
    info = stream.stop()
    journal.close()
    assert info["status"] == "complete" and info["api_closed_at_ns"] is not None
    assert info["answered"] >= 2


@pytest.mark.parametrize(
    ("gap", "game_time_at_start_s", "before_recording"),
    [
        (True, 0.0, 2),  # the API closes between games; the next game's clock starts at 0
        (False, 200.0, 3),  # no poll saw the gap, the clock went forward: EventIDs restarted
    ],
    ids=["api-closed-then-game-time-from-0", "event-ids-restarted"],
)
def test_a_second_game_in_one_recording_is_recorded_whole(
    game: GameServer,
    pki: dict[str, Path],
    tmp_path: Path,
    gap: bool,
    game_time_at_start_s: float,
    before_recording: int,
) -> None:
    """Every event of the second game is written, at its own game's clock, numbered game 2
    (before, its EventIDs 0, 1, 2 were taken for the first game's and dropped, and its game
    time was mapped through the first game's clock offset)."""
    cfg = GameStateConfig(url=game.url, ca_file=str(pki["ca"]), poll_hz=10)
    kill_at = time.monotonic_ns() + 300_000_000
    game.schedule(2, "ChampionKill", kill_at, KillerName="Player#EUW")
    stream, journal, _ = _run(cfg, tmp_path, 1.8)
    time.sleep(0.6)
    if gap:
        game.end_game()
        time.sleep(0.3)
    game.new_game(game_time_at_start_s=game_time_at_start_s, start_event_time=0.031)
    second_ns = game.start_ns
    at = (time.monotonic_ns() + 300_000_000, time.monotonic_ns() + 500_000_000)
    game.schedule(1, "ChampionKill", at[0], KillerName="Enemy#EUW")
    game.schedule(2, "DragonKill", at[1], DragonType="Fire")
    time.sleep(0.9)
    info = stream.stop()
    journal.close()
    rows = _rows(tmp_path)
    events = [
        json.loads(r["metadata"]) | {"t_ns": r["t_ns"]}
        for r in rows
        if r["event_type"] == "game_event"
    ]
    expected: list[tuple[int, str, int]] = [(1, "ChampionKill", kill_at)]
    if game_time_at_start_s == 0.0:  # the second game's start falls inside the recording
        expected.append((2, "GameStart", second_ns + 31_000_000))
    expected += [(2, "ChampionKill", at[0]), (2, "DragonKill", at[1])]
    assert [(e.get("game"), e["event"]["EventName"]) for e in events] == [x[:2] for x in expected]
    for event, (_, _, t) in zip(events, expected, strict=True):
        assert abs(event["t_ns"] - t) < 5_000_000  # the game's own clock offset, within 5 ms
    assert info["status"] == "complete" and info.get("games") == 2, info
    assert info["events_before_recording"] == before_recording
    states = [json.loads(r["metadata"]) for r in rows if r["event_type"] == "game_state"]
    numbers = [s["game"] for s in states]
    assert numbers == sorted(numbers) and set(numbers) == {1, 2}
    assert all(s["game_time"] < 2.0 + game_time_at_start_s for s in states if s["game"] == 2)


def test_an_api_gap_within_one_game_is_the_same_game(
    game: GameServer, pki: dict[str, Path], tmp_path: Path
) -> None:
    """The API stops answering for a while and comes back with the game's clock gone on: one
    game, nothing written twice."""
    cfg = GameStateConfig(url=game.url, ca_file=str(pki["ca"]), poll_hz=10)
    kill_at = time.monotonic_ns() + 300_000_000
    game.schedule(2, "ChampionKill", kill_at)
    stream, journal, _ = _run(cfg, tmp_path, 1.2)
    time.sleep(0.5)
    game.end_game()
    time.sleep(0.3)
    game.resume()
    game.schedule(3, "DragonKill", time.monotonic_ns() + 200_000_000)
    time.sleep(0.5)
    info = stream.stop()
    journal.close()
    assert info["games"] == 1 and info["events_before_recording"] == 2, info
    rows = [json.loads(r["metadata"]) for r in _rows(tmp_path)]
    names = [m["event"]["EventName"] for m in rows if "event" in m]
    assert names == ["ChampionKill", "DragonKill"]
    assert {m["game"] for m in rows} == {1}


def test_offline_mode_allows_the_loopback_api(
    game: GameServer, pki: dict[str, Path], tmp_path: Path
) -> None:
    from aiconfig._network import offline

    cfg = GameStateConfig(url=game.url, ca_file=str(pki["ca"]), poll_hz=10)
    with offline():
        stream, journal, _ = _run(cfg, tmp_path, 0.3)
        time.sleep(0.3)
        info = stream.stop()
        journal.close()
    assert info["status"] == "complete" and info["answered"] >= 2, info


def test_config_keeps_it_on_loopback_https() -> None:
    assert CaptureConfig().game_state.url == "https://127.0.0.1:2999/liveclientdata/"
    assert CaptureConfig().game_state.poll_hz == 2.0
    for bad in ("http://127.0.0.1:2999/liveclientdata/", "https://example.com/liveclientdata/"):
        with pytest.raises(ValidationError, match="loopback"):
            GameStateConfig(url=bad)
    assert GameStateConfig(url="https://localhost:2999/x").url == "https://localhost:2999/x/"
    assert GameStateConfig(url="https://[::1]:2999/liveclientdata/").url.startswith("https://[")
    with pytest.raises(Exception, match="ca_file"):
        load_ca("/nonexistent/riot.pem")
    ctx = load_ca(None)  # the bundled root, verification on
    assert ctx.check_hostname and BUNDLED_CA.is_file()
    assert "LoL Game Engineering" in str(ctx.get_ca_certs())


@pytest.mark.x11
@pytest.mark.slow
def test_a_recorded_game_window_gets_the_game_stream(
    xvfb: str, game: GameServer, pki: dict[str, Path], tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    from tests.capture.capture_helpers import open_window, run_cli, start_recording

    win = open_window("League of Legends", (0, 0, 320, 240))
    try:
        proc = start_recording(
            tmp_path,
            *("--quiet", "--duration", "3", "--no-input"),
            *("--game-state-url", game.url, "--game-state-ca", str(pki["ca"])),
        )
        game.schedule(9, "BaronKill", time.monotonic_ns() + 1_000_000_000, Stolen="False")
        out, err = proc.communicate(timeout=30)
    finally:
        win.close()
    assert proc.returncode == 0, err
    session = Path(out.strip())
    meta = json.loads((session / "metadata.json").read_text())
    status = meta["streams"]["game"]
    assert status["status"] == "complete" and status["state_rows"] >= 4, status
    assert [c["check"] for c in meta["preflight"]][:2] == ["platform", "display"]
    assert meta["platform"] == {"backend": "x11", "grabber": "mss"}
    events = pq.read_table(session / "events.parquet").to_pydict()
    game_rows = [i for i, s in enumerate(events["stream"]) if s == "game"]
    baron = [i for i in game_rows if "BaronKill" in (events["metadata"][i] or "")]
    assert len(baron) == 1
    t0, fps = int(meta["start_monotonic_ns"]), int(meta["fps"])
    clock = FrameClock(t0, fps)
    for i in game_rows:
        assert 0 <= events["frame_ref"][i] < meta["frame_count"]
        assert events["frame_ref"][i] == clock.index_at(events["t_ns"][i])
    assert run_cli("validate", str(session)).returncode == 0


@pytest.mark.x11
def test_allow_any_screen_has_no_game_stream(xvfb: str, tmp_path: Path) -> None:
    from tests.capture.capture_helpers import run_cli

    proc = run_cli(
        "--allow-any", "--quiet", "--duration", "1", "--no-input", "--out", str(tmp_path)
    )
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((Path(proc.stdout.strip()) / "metadata.json").read_text())
    assert meta["streams"]["game"] == {
        "status": "off",
        "error": None,
        "why": "no window recorded (--allow-any screen)",
    }


@pytest.mark.x11
def test_an_unusable_certificate_fails_the_game_stream_alone(xvfb: str, tmp_path: Path) -> None:
    """A --game-state-ca that is not a PEM certificate: the recording goes on and says why the
    game stream failed (before, the start stopped half-way with the other streams running)."""
    from tests.capture.capture_helpers import open_window, run_cli

    bad = tmp_path / "not-a-cert.pem"
    bad.write_text("this is not a certificate\n", encoding="utf-8")
    win = open_window("League of Legends", (0, 0, 320, 240))
    try:
        proc = run_cli(
            *("--quiet", "--duration", "1", "--no-input", "--out", str(tmp_path / "out")),
            *("--game-state-ca", str(bad)),
        )
    finally:
        win.close()
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    meta = json.loads((Path(proc.stdout.strip()) / "metadata.json").read_text())
    status = meta["streams"]["game"]
    assert status["status"] == "failed" and "not-a-cert.pem" in status["error"], status
    assert meta["frame_count"] >= 1
