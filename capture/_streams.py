"""Starting each stream of a session on its own, so that one failing never stops the others.

Each helper returns the running stream, or ``None`` and a one-line reason that goes into
``metadata.json`` (``streams.<name>.error``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiconfig import CaptureConfig, CaptureDeviceError

from ._audio_recorder import AudioRecorder
from ._constants import AUDIO_FILE, AUDIO_SILENCE_FAIL_S, WEBCAM_FILE
from ._events import EventJournal
from ._screen_recorder import ScreenTarget
from ._webcam_recorder import WebcamRecorder, open_camera
from .windows import open_backend

__all__ = [
    "audio_problem",
    "game_off",
    "open_game_state",
    "open_webcam",
    "pick_target",
    "requested_streams",
    "run_preflight",
    "start_audio",
]


def requested_streams(cfg: CaptureConfig) -> set[str]:
    streams = {"screen"}
    for name, part in (("input", cfg.input), ("audio", cfg.audio), ("webcam", cfg.webcam)):
        if part.enabled:
            streams.add(name)
    if cfg.game_state.enabled:
        streams.add("game")
    return streams


def run_preflight(cfg: CaptureConfig, out: Path) -> list[Any]:
    """The doctor's checks; raises when the screen cannot work (the other streams degrade
    alone and record their own errors)."""
    from ._doctor import blocking, preflight

    checks = preflight(cfg, out, window=False)  # pick_target looks the window up next
    for check in blocking(checks, {"screen"}):
        fix = f"; {check.fix}" if check.fix else ""
        raise CaptureDeviceError(f"{check.detail}{fix}")
    return checks


def game_off(cfg: CaptureConfig) -> dict[str, Any]:
    """The game stream's status when it was not opened: off in the config, or no window is
    recorded (the ``--allow-any`` screen; :func:`open_game_state` opens it for any window)."""
    if not cfg.game_state.enabled:
        return {"status": "off", "error": None}
    return {"status": "off", "error": None, "why": "no window recorded (--allow-any screen)"}


def open_game_state(
    cfg: CaptureConfig,
    journal: EventJournal,
    target: ScreenTarget,
    *,
    session_id: str,
    window_id: str | None,
) -> Any:
    """The game-state stream while a window is recorded (None otherwise or when off)."""
    if not cfg.game_state.enabled or target.handle is None:
        return None
    from ._game_state import GameStateStream

    return GameStateStream(
        cfg.game_state, journal, session_id=session_id, window_id=window_id, fps=cfg.fps
    )


def pick_target(cfg: CaptureConfig) -> tuple[ScreenTarget, str | None]:
    backend = open_backend()
    try:
        info = backend.find(cfg.window_title)
        if info is not None:
            return ScreenTarget(info.handle, info.title, info.rect), info.title
        if not cfg.allow_any:
            raise CaptureDeviceError(
                f"no window titled {cfg.window_title!r} is open; start it first, or pass "
                "--allow-any to record the primary monitor (testing only)"
            )
        return ScreenTarget(None, None, backend.screen()), None
    finally:
        backend.close()


def start_audio(
    cfg: CaptureConfig,
    session: Path,
    *,
    on_write_error: Callable[[BaseException], None] | None = None,
) -> tuple[AudioRecorder | None, str | None]:
    """The audio stream, or ``(None, reason)``: a failed device never stops the session."""
    if not cfg.audio.enabled:
        return None, None
    try:
        audio = AudioRecorder(
            session / AUDIO_FILE,
            sample_rate=cfg.audio.sample_rate,
            channels=cfg.audio.channels,
            device=cfg.audio.device,
            on_write_error=on_write_error,
        )
        audio.open()
        audio.start()
    except CaptureDeviceError as exc:
        (session / AUDIO_FILE).unlink(missing_ok=True)
        return None, str(exc)
    # PortAudio's ALSA->PulseAudio path takes about a second to deliver its first block; start
    # the video only once sound flows, and trim the lead-in (see AudioRecorder.align).
    if not audio.wait_for_data(AUDIO_SILENCE_FAIL_S * 2):
        audio.stop()
        (session / AUDIO_FILE).unlink(missing_ok=True)
        return None, f"audio source {audio.source!r} delivered nothing in 4 s"
    return audio, None


def open_webcam(
    cfg: CaptureConfig,
    session: Path,
    journal: EventJournal,
    session_id: str,
    *,
    threads: int = 0,
    on_write_error: Callable[[BaseException], None] | None = None,
) -> tuple[WebcamRecorder | None, str | None]:
    """The webcam stream, or ``(None, reason)``: a missing camera never stops the session."""
    if not cfg.webcam.enabled:
        return None, None
    try:
        container = open_camera(cfg.webcam.device, cfg.webcam.resolution, cfg.webcam.fps)
        return WebcamRecorder(
            container,
            session / WEBCAM_FILE,
            journal,
            device=cfg.webcam.device,
            fps=cfg.webcam.fps,
            session_id=session_id,
            preset=cfg.preset,
            threads=threads,
            on_write_error=on_write_error,
        ), None
    except CaptureDeviceError as exc:
        (session / WEBCAM_FILE).unlink(missing_ok=True)
        return None, str(exc)


def audio_problem(audio: AudioRecorder) -> str | None:
    if audio.seconds_since_data() > AUDIO_SILENCE_FAIL_S:
        return "no audio delivered for 2 s (device removed?)"
    if not audio.source_present():
        return f"audio source {audio.source!r} vanished; stopped listening rather than follow it"
    return None
