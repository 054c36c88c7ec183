"""League of Legends game state as a stream: the game's Live Client Data API, polled.

While a League game runs, the game client serves its state on
``https://127.0.0.1:2999/liveclientdata/`` (``allgamedata``: ``gameData``, ``activePlayer``,
``allPlayers``, ``events``; ``eventdata``: ``{"Events": [{"EventID", "EventName", "EventTime",
...}]}``). This stream polls both at ``capture.game_state.poll_hz`` (2 Hz by default) and writes
rows into ``events.parquet`` with ``stream: "game"``:

* ``event_type="game_state"`` per answered poll: ``t_ns`` the poll's midpoint on the recorder's
  clock, ``metadata`` the game time, mode and map, the active player's level, gold and champion
  stats, and every player's champion, team, level, scores and death state;
* ``event_type="game_event"`` per new event (kills, objectives, first blood, ...): the event's
  game time (``EventTime``) mapped to the recorder's clock through the last poll's game time, and
  the event itself in ``metadata``. Events from before the recording started are counted, not
  written.

Both carry ``frame_ref`` (the frame on screen at ``t_ns``) like input events, and ``game`` in
``metadata``: the game's number in the recording, from 1. The API starts ``GameTime`` and
``EventID`` again at 0 for each game, so a new game is one whose game time went back, or that
lists an EventID already seen with another name or time; its events are then written afresh and
its clock offset is estimated from its own polls only. A gap in the API's answers alone is not a
new game: the API also drops out within one (a busy or reconnecting client), and the game's
clock, gone on, tells the two apart.

TLS is verified against Riot's published root certificate (bundled:
``capture/certs/riotgames.pem``; or ``capture.game_state.ca_file``) and never switched off; the
URL must be loopback, so offline mode allows it. The stream degrades alone: before the game
starts and after it ends the API is closed (connection refused, 404), which only changes the
stream's status in ``metadata.json``.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from aiconfig import CaptureDeviceError

from ._events import EventJournal
from ._timeline import FrameClock

__all__ = ["BUNDLED_CA", "GameStateStream", "load_ca"]

BUNDLED_CA = Path(__file__).with_name("certs") / "riotgames.pem"
HOLD_NS = 1_000_000_000
# Game time only runs forward within one game; going back by more than this is the next game.
_BACK_S = 1.0
_PLAYER_KEYS = ("championName", "team", "level", "isDead", "respawnTimer", "position")


def load_ca(ca_file: str | None) -> ssl.SSLContext:
    """A client context trusting only ``ca_file`` (the bundled Riot root when None).

    Hostname checking and certificate verification stay on. Riot's root is a version 1
    certificate (no extensions), which OpenSSL's strict mode (Python 3.13's default) refuses as
    a CA: that one flag is cleared, nothing else.
    """
    path = Path(ca_file) if ca_file else BUNDLED_CA
    try:
        ctx = ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError) as exc:
        raise CaptureDeviceError(
            f"capture.game_state.ca_file: {path} is not a readable PEM certificate ({exc}); "
            "point it at Riot's root certificate (riotgames.pem) or remove the key to use the "
            "bundled one"
        ) from exc
    ctx.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _state(data: dict[str, Any]) -> dict[str, Any]:
    game = data.get("gameData") or {}
    active = data.get("activePlayer") or {}
    players = []
    for p in data.get("allPlayers") or []:
        entry = {k: p.get(k) for k in _PLAYER_KEYS if k in p}
        entry["name"] = p.get("riotId") or p.get("summonerName")
        entry["scores"] = p.get("scores")
        players.append(entry)
    return {
        "game_time": game.get("gameTime"),
        "game_mode": game.get("gameMode"),
        "map_name": game.get("mapName"),
        "map_number": game.get("mapNumber"),
        "active_player": {
            "name": active.get("riotId") or active.get("summonerName"),
            "level": active.get("level"),
            "current_gold": active.get("currentGold"),
            "champion_stats": active.get("championStats"),
        },
        "players": players,
    }


class GameStateStream:
    """Polls the Live Client Data API on its own thread into the event journal."""

    def __init__(
        self,
        cfg: Any,
        journal: EventJournal,
        *,
        session_id: str,
        window_id: str | None,
        fps: int,
    ) -> None:
        import httpx

        self.cfg = cfg
        self._journal = journal
        self._session_id = session_id
        self._window_id = window_id
        self._fps = fps
        self._ssl = load_ca(cfg.ca_file)
        self._client = httpx.Client(verify=self._ssl, timeout=cfg.timeout_s, trust_env=False)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture-game", daemon=True)
        self._clock: FrameClock | None = None
        self._game = 0  # the game's number in the recording (0 until the API first answers)
        self._game_time: float | None = None  # the last poll's, in this game
        self._seen: dict[int, tuple[Any, Any]] = {}  # EventID -> (EventName, EventTime), this game
        self._offset_ns: int | None = None  # recorder clock - game time
        self._rtt_ns = 0
        # (round trip, offset) of recent polls: the game read its clock somewhere inside the
        # round trip, so the shortest recent one maps game time best (NTP's rule).
        self._offsets: deque[tuple[int, int]] = deque(maxlen=10)
        self._last_t = 0
        # Rows wait HOLD_NS before they reach the journal, so that none lands after the
        # video's end (unknown until the session stops): stop() keeps those before it only.
        self._pending: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()
        self.info: dict[str, Any] = {
            "status": "waiting",
            "error": None,
            "url": cfg.url,
            "poll_hz": cfg.poll_hz,
            "ca": str(cfg.ca_file or BUNDLED_CA.name),
            "tls_verified": True,
            "polls": 0,
            "answered": 0,
            "games": 0,
            "state_rows": 0,
            "event_rows": 0,
            "events_before_recording": 0,
            "first_answer_ns": None,
            "last_answer_ns": None,
            "last_refusal": None,
            "api_closed_at_ns": None,
            "rows_after_video_end": 0,
            "game_time_uncertainty_ms": None,
        }

    # -- lifecycle ----------------------------------------------------------------------
    def start(self, clock: FrameClock) -> None:
        self._clock = clock
        self._thread.start()

    def stop(self, end_ns: int | None = None) -> dict[str, Any]:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.cfg.timeout_s * 2 + 2)
        self._flush(end_ns, final=True)
        with contextlib.suppress(Exception):
            self._client.close()
        if self.info["status"] in ("live", "waiting", "ended"):
            self.info["status"] = "complete" if self.info["answered"] else "no_game"
        return dict(self.info)

    # -- polling ------------------------------------------------------------------------
    def _get(self, endpoint: str) -> tuple[Any, int, int]:
        before = time.monotonic_ns()
        ext = {"sni_hostname": self.cfg.server_name} if self.cfg.server_name else {}
        response = self._client.get(self.cfg.url + endpoint, extensions=ext)
        after = time.monotonic_ns()
        response.raise_for_status()
        return response.json(), before, after

    def _run(self) -> None:
        import httpx

        period = 1.0 / self.cfg.poll_hz
        next_t = time.monotonic()
        while not self._stop.is_set():
            self.info["polls"] += 1
            try:
                state, before, after = self._get("allgamedata")
                events, _, _ = self._get("eventdata")
                self._rtt_ns = after - before
            except httpx.ConnectError as exc:
                if _is_tls(exc):
                    self._fail(exc)
                    return
                self._refused(f"connection refused ({exc})")
            except httpx.HTTPStatusError as exc:
                self._refused(f"HTTP {exc.response.status_code}")
            except (httpx.TimeoutException, httpx.TransportError, ValueError) as exc:
                self._refused(f"{type(exc).__name__}: {exc}")
            else:
                self._answered(state, events, (before + after) // 2)
            next_t += period
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    def _fail(self, exc: Exception) -> None:
        hint = (
            "set capture.game_state.server_name to the name in the game's certificate"
            if "hostname" in str(exc).lower() or "ip address mismatch" in str(exc).lower()
            else "check capture.game_state.ca_file (Riot's root certificate, riotgames.pem)"
        )
        self.info["status"] = "failed"
        self.info["error"] = f"TLS verification failed ({exc}); {hint}"

    def _refused(self, why: str) -> None:
        self.info["last_refusal"] = why
        if self.info["status"] == "live":
            self.info["status"] = "ended"  # the API closes when the game ends
            self.info["api_closed_at_ns"] = time.monotonic_ns()

    def _row(self, t_ns: int, kind: str, meta: dict[str, Any]) -> None:
        if self._clock is None:
            return
        t_ns = max(t_ns, self._last_t)  # rows of one stream stay in time order
        self._last_t = t_ns
        self._pending.append(
            (
                t_ns,
                None,
                False,
                kind,
                "game",
                None,
                None,
                None,
                None,
                None,
                self._clock.index_at(t_ns),
                self._window_id,
                self._session_id,
                json.dumps(meta, sort_keys=True, default=str),
            )
        )
        self.info["state_rows" if kind == "game_state" else "event_rows"] += 1

    def _flush(self, end_ns: int | None = None, *, final: bool = False) -> None:
        """Rows older than HOLD_NS to the journal; at the end, those before ``end_ns``."""
        with self._lock:
            limit = time.monotonic_ns() - HOLD_NS if not final else None
            keep: list[tuple[Any, ...]] = []
            for row in self._pending:
                t = int(row[0])
                if limit is not None and t >= limit:
                    keep.append(row)
                elif end_ns is None or t < end_ns:
                    self._journal.add(row)
                else:
                    self.info["rows_after_video_end"] += 1
                    self.info["state_rows" if row[3] == "game_state" else "event_rows"] -= 1
            self._pending = keep

    def _answered(self, data: Any, events: Any, mid_ns: int) -> None:
        clock = self._clock
        if clock is None:
            return
        self.info["answered"] += 1
        self.info["status"] = "live"
        self.info["last_answer_ns"] = mid_ns
        if self.info["first_answer_ns"] is None:
            self.info["first_answer_ns"] = mid_ns
        state = _state(data if isinstance(data, dict) else {})
        game_time = state["game_time"]
        listed = (events or {}).get("Events") if isinstance(events, dict) else None
        listed = [e for e in listed if isinstance(e, dict)] if isinstance(listed, list) else []
        if self._game == 0 or self._is_new_game(game_time, listed):
            self._new_game()
        state["game"] = self._game
        if isinstance(game_time, int | float):
            self._game_time = float(game_time)
            self._offsets.append((self._rtt_ns, mid_ns - round(float(game_time) * 1e9)))
            rtt, self._offset_ns = min(self._offsets)
            self.info["game_time_uncertainty_ms"] = round(rtt / 2e6, 3)
        new = []
        for event in listed:
            event_id = event.get("EventID")
            if not isinstance(event_id, int) or event_id in self._seen:
                continue
            self._seen[event_id] = _signature(event)
            at = event.get("EventTime")
            t = (
                self._offset_ns + round(float(at) * 1e9)
                if self._offset_ns is not None and isinstance(at, int | float)
                else mid_ns
            )
            new.append((min(t, mid_ns), event))
        for t, event in sorted(new, key=lambda item: item[0]):
            if t < clock.t0_ns:
                self.info["events_before_recording"] += 1
                continue
            meta = {"event": event, "game_time": event.get("EventTime"), "game": self._game}
            self._row(t, "game_event", meta)
        if mid_ns >= clock.t0_ns:
            self._row(mid_ns, "game_state", state)
        self._flush()

    def _is_new_game(self, game_time: Any, listed: list[dict[str, Any]]) -> bool:
        """The game time went back, or an EventID seen names another event: the next game."""
        last = self._game_time
        if isinstance(game_time, int | float) and last is not None and game_time < last - _BACK_S:
            return True
        for event in listed:
            event_id = event.get("EventID")
            seen = self._seen.get(event_id) if isinstance(event_id, int) else None
            if seen is not None and seen != _signature(event):
                return True
        return False

    def _new_game(self) -> None:
        """Forget the last game's events and clock offset (its EventIDs and GameTime restart)."""
        self._game += 1
        self.info["games"] = self._game
        self._seen.clear()
        self._game_time = None
        self._offsets.clear()
        self._offset_ns = None


def _signature(event: dict[str, Any]) -> tuple[Any, Any]:
    return event.get("EventName"), event.get("EventTime")


def _is_tls(exc: Exception) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return True
        cause = cause.__cause__ or cause.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc) or "SSL" in str(exc)
