"""The set of streams one recording opens, aligns, watches and stops together.

:class:`StreamSet` holds the screen recorder and every stream beside it: input, audio, webcam,
stream plugins and the game state. :class:`~capture._recording.Recording` opens them all in one
go (:meth:`StreamSet.open`), aligns them on the first frame's clock (:meth:`StreamSet.start`),
marks each one failed as soon as it fails (:meth:`StreamSet.watch`) and stops them at one end
time (:meth:`StreamSet.stop`). ``states`` holds each stream's state (``recording``, ``failed``,
``off``, then ``complete``) and ``errors`` its one-line reason; both go to ``metadata.json``.
One stream failing never stops the others (see :mod:`capture._streams`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aiconfig import CaptureConfig, CaptureDeviceError

from ._audio_recorder import AudioRecorder
from ._constants import AUDIO_FILE, FRAMES_FILE, WEBCAM_FILE
from ._events import EventJournal
from ._input_logging import InputLogger
from ._plugin_streams import PluginStreams
from ._screen_recorder import ScreenRecorder, ScreenTarget
from ._storage import StorageFault
from ._streams import audio_problem, game_off, open_game_state, open_webcam, start_audio
from ._timeline import FrameClock
from ._webcam_recorder import WebcamRecorder

__all__ = ["StreamSet"]


class StreamSet:
    """The streams of one session, from :meth:`open` to :meth:`stop`."""

    recorder: ScreenRecorder  # from open() on
    plugins: PluginStreams  # from open() on

    def __init__(self, cfg: CaptureConfig, stream_plugins: Mapping[str, Any]) -> None:
        self.cfg = cfg
        self._stream_plugins = stream_plugins
        self.states: dict[str, str] = {"screen": "recording", "input": "off"}
        self.errors: dict[str, str | None] = {"input": None, "audio": None, "webcam": None}
        self.logger: InputLogger | None = None
        self.audio: AudioRecorder | None = None
        self.webcam: WebcamRecorder | None = None
        self.game: Any = None  # capture._game_state.GameStateStream while a window records
        self.game_status: dict[str, Any] = {}
        self.game_failed: dict[str, Any] | None = None  # why the game-state stream never opened
        self.plugin_status: dict[str, Any] = {}

    # -- open ------------------------------------------------------------------------------------

    def open(
        self,
        target: ScreenTarget,
        session: Path,
        journal: EventJournal,
        *,
        session_id: str,
        window_id: str,
        max_frames: int | None,
        queue_size: int,
        threads: int,
        faults: StorageFault,
        on_grabber_stop: Callable[[str], None],
    ) -> None:
        """Open every stream, input first; the screen recorder is made but not started."""
        cfg = self.cfg
        self.recorder = ScreenRecorder(
            target,
            session / FRAMES_FILE,
            journal,
            fps=cfg.fps,
            session_id=session_id,
            window_id=window_id,
            preset=cfg.preset,
            crf=cfg.crf,
            keyframe_interval_s=cfg.keyframe_interval_s,
            on_stop=on_grabber_stop,
            max_frames=max_frames,
            queue_size=queue_size,
            threads=threads,
            on_write_error=faults.handler(FRAMES_FILE),
        )
        self._start_input(target, journal, session_id=session_id, window_id=window_id)
        self.audio, self.errors["audio"] = start_audio(
            cfg, session, on_write_error=faults.handler(AUDIO_FILE)
        )
        self.webcam, self.errors["webcam"] = open_webcam(
            cfg,
            session,
            journal,
            session_id,
            threads=threads,
            on_write_error=faults.handler(WEBCAM_FILE),
        )
        self.plugins = PluginStreams(
            self._stream_plugins, session, session_id=session_id, fps=cfg.fps
        )
        # -- game state (League Live Client Data API): a stream of its own, degrades alone --
        try:
            self.game = open_game_state(
                cfg, journal, target, session_id=session_id, window_id=window_id
            )
        except (CaptureDeviceError, ImportError) as exc:  # a bad --game-state-ca, no httpx
            self.game_failed = {"status": "failed", "error": str(exc)}

    def _start_input(
        self, target: ScreenTarget, journal: EventJournal, *, session_id: str, window_id: str
    ) -> None:
        """Input first: it takes a moment to come up, and once metadata.json exists (written
        when the clock starts) every input event is logged. A failure never stops the video."""
        cfg = self.cfg
        if not cfg.input.enabled:
            return
        try:
            logger = InputLogger(
                journal,
                cfg.fps,
                region=target.rect,
                handle=target.handle,
                window_id=window_id,
                session_id=session_id,
                mouse_moves=cfg.input.mouse_moves,
                focus_only=cfg.input.focus_only,
            )
            logger.start()
        except Exception as exc:  # noqa: BLE001 - input failing must not stop video
            self.errors["input"] = f"{type(exc).__name__}: {exc}"
            self.states["input"] = "failed"
            return
        self.logger = logger
        self.states["input"] = "recording"

    def abort(self) -> None:
        """Stop every stream :meth:`open` opened (it failed, or the screen grabber did not
        start): also after :meth:`open` raised part-way."""
        recorder: ScreenRecorder | None = getattr(self, "recorder", None)
        if recorder is not None:
            recorder.stop()
            recorder.join()
        if self.audio is not None:
            self.audio.stop()
        if self.webcam is not None:
            self.webcam.stop()
        if self.logger is not None:
            self.logger.stop()
        plugins: PluginStreams | None = getattr(self, "plugins", None)
        if plugins is not None:
            plugins.stop(0)
        if self.game is not None:
            self.game.stop()

    # -- start -----------------------------------------------------------------------------------

    def start(self, clock: FrameClock) -> None:
        """Align every stream on the first frame's clock."""
        if self.logger is not None:
            self.logger.set_region(self.recorder.region)
            self.logger.set_t0(clock.t0_ns)
            self.recorder.on_region = self.logger.set_region
        if self.audio is not None:
            self.audio.align(clock.t0_ns)
        if self.webcam is not None:
            self.webcam.start(clock.t0_ns)
        self.plugins.start(clock.t0_ns)
        if self.game is not None:
            self.game.start(clock)

    def mark_started(self) -> None:
        """The audio and webcam states once the clock runs: off, recording or failed."""
        cfg = self.cfg
        self.states["audio"] = (
            "off" if not cfg.audio.enabled else ("recording" if self.audio else "failed")
        )
        self.states["webcam"] = (
            "off" if not cfg.webcam.enabled else ("recording" if self.webcam else "failed")
        )

    def media_files(self) -> list[str]:
        """The growing files of the audio and webcam streams that run (the session fsyncs them)."""
        return [
            *([AUDIO_FILE] if self.audio is not None else []),
            *([WEBCAM_FILE] if self.webcam is not None else []),
        ]

    # -- run -------------------------------------------------------------------------------------

    def media_recording(self) -> bool:
        """Audio or webcam still records (so a failed screen need not stop the session)."""
        return self.states.get("audio") == "recording" or self.states.get("webcam") == ("recording")

    def inputs_logged(self) -> int:
        return self.logger.logged if self.logger else 0

    def watch(self) -> None:
        """Mark a stream failed as soon as it fails; the others go on."""
        states, audio, webcam = self.states, self.audio, self.webcam
        if self.recorder.stats.errors and states["screen"] == "recording":
            states["screen"] = "failed"
        if webcam is not None and states["webcam"] == "recording" and webcam.stats.error:
            states["webcam"] = "failed"
        if audio is not None and states["audio"] == "recording":
            problem = audio_problem(audio)
            if problem is not None:
                states["audio"] = "failed"
                audio.fail(problem)

    # -- stop ------------------------------------------------------------------------------------

    def stop(self, clock: FrameClock, stop_ns: int, deadline: int | None) -> None:
        """Stop every stream so that all of them end at the same time: the last frame's, or
        when the screen died early, the stop time (``stop_ns``, capped at the ``deadline``)."""
        recorder, audio, webcam = self.recorder, self.audio, self.webcam
        recorder.stop()
        recorder.grab_done.wait(10.0)
        end_ns = clock.t_ns(recorder.stats.frames)
        if recorder.stats.errors:  # the screen died early: keep the other streams' tail
            end_ns = max(end_ns, stop_ns if deadline is None else min(stop_ns, deadline))
        game = self.game
        if game is not None:
            self.game_status = game.stop(end_ns)
        else:
            self.game_status = self.game_failed or game_off(self.cfg)
        if webcam is not None:
            webcam.set_end(end_ns)
        if audio is not None:
            audio.stop(end_ns=end_ns)
        if webcam is not None:
            webcam.stop()
        self.plugin_status = self.plugins.stop(end_ns)
        recorder.join()
        if self.logger is not None:
            self.logger.stop()
            if self.logger.error:
                self.errors["input"] = self.logger.error
                self.states["input"] = "failed"

    # -- outcome ---------------------------------------------------------------------------------

    def final_states(self) -> dict[str, str]:
        states = dict(self.states)
        states["screen"] = "failed" if self.recorder.stats.errors else "complete"
        if self.webcam is not None and self.webcam.stats.error:
            states["webcam"] = "failed"
        for name in ("input", "audio", "webcam"):
            if states[name] == "recording":
                states[name] = "complete"
        return states

    def outcomes(self) -> dict[str, Any]:
        """Each stream's outcome for ``metadata.json``: its final state, error and counts."""
        recorder, logger, audio, webcam = self.recorder, self.logger, self.audio, self.webcam
        states = self.final_states()
        errors = self.errors
        return {
            "screen": {
                "status": states["screen"],
                "errors": recorder.stats.errors,
                "failed_at_ns": recorder.stats.failed_at_ns,
                # dropped because the grab ended after its slot (CPU starvation)
                "late_grabs_dropped": recorder.stats.late_grabs,
            },
            "input": {
                "status": states["input"],
                "error": errors["input"],
                "logged": logger.logged if logger else 0,
                "suppressed_unfocused": logger.suppressed if logger else 0,
            },
            "webcam": {
                "status": states["webcam"],
                "error": errors["webcam"] or (webcam.stats.error if webcam else None),
            },
            "audio": {
                "status": states["audio"],
                "error": errors["audio"] or (audio.stats.error if audio else None),
            },
            "game": self.game_status,
            **self.plugin_status,
        }

    def webcam_info(self) -> dict[str, Any] | None:
        """The camera's format; only its device when it failed to open; ``None`` when off."""
        if self.webcam is not None:
            return self.webcam.info()
        return None if self.errors["webcam"] is None else {"device": self.cfg.webcam.device}
