"""One capture session: pick the target, start the streams, stop, finalize.

:func:`run_capture` is the library entry point behind both ``python -m capture`` and
``aiconfig capture``. It never prints: progress goes to the ``on_status`` callback and the
outcome is the returned :class:`SessionResult` (or a :class:`~aiconfig.errors.AiconfigError`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry import metrics, trace

from aiconfig.errors import CaptureDeviceError, ConfigFileError
from aiconfig.schema import CaptureConfig

from .audio_recorder import AudioRecorder
from .constants import (
    AUDIO_FILE,
    AUDIO_SILENCE_FAIL_S,
    EVENTS_JOURNAL,
    FORMAT_VERSION,
    FRAMES_FILE,
    JOURNAL_FLUSH_S,
    METADATA_FILE,
    STATUS_RECORDING,
)
from .events import EventJournal
from .finalize import finalize_session, write_json_atomic, write_manifest
from .input_logging import InputLogger
from .screen_recorder import ScreenRecorder, ScreenTarget
from .timeline import ClockMapping
from .windows import open_backend

__all__ = ["SessionResult", "Status", "create_session_dir", "run_capture"]


@dataclass(frozen=True, slots=True)
class Status:
    """A snapshot for the live status line."""

    elapsed_s: float
    frames: int
    fps: float
    padded: int
    dropped: int
    inputs: int
    streams: dict[str, str]


@dataclass(frozen=True, slots=True)
class SessionResult:
    path: Path
    metadata: dict[str, Any]

    @property
    def ok(self) -> bool:
        return bool(self.metadata.get("validation", {}).get("ok"))


def create_session_dir(root: Path, now: float | None = None) -> Path:
    """``root/session_YYYYMMDD_HHMMSS`` created exclusively; ``_2``, ``_3``... on collision."""
    stamp = time.strftime("session_%Y%m%d_%H%M%S", time.localtime(now))
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigFileError(
            f"{root}: cannot create the output directory ({exc.strerror}); choose another --out"
        ) from exc
    for attempt in range(1, 1000):
        path = root / (stamp if attempt == 1 else f"{stamp}_{attempt}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise ConfigFileError(f"{path}: cannot create the session ({exc.strerror})") from exc
        return path
    raise ConfigFileError(f"{root}: too many sessions named {stamp}_*; clean up the directory")


def _pick_target(cfg: CaptureConfig) -> tuple[ScreenTarget, str | None]:
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


def _start_audio(cfg: CaptureConfig, session: Path) -> tuple[AudioRecorder | None, str | None]:
    """The audio stream, or ``(None, reason)``: a failed device never stops the session."""
    if not cfg.audio.enabled:
        return None, None
    try:
        audio = AudioRecorder(
            session / AUDIO_FILE,
            sample_rate=cfg.audio.sample_rate,
            channels=cfg.audio.channels,
            device=cfg.audio.device,
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


def run_capture(
    cfg: CaptureConfig,
    *,
    output_dir: Path | None = None,
    stop: threading.Event | None = None,
    on_status: Callable[[Status], None] | None = None,
    status_interval_s: float = 0.5,
    provenance: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> SessionResult:
    """Record until ``cfg.duration_s`` passes, ``stop`` is set, or the window closes."""
    tracer = trace.get_tracer("capture")
    meter = metrics.get_meter("capture")
    frames_counter = meter.create_counter("capture.frames", unit="{frame}")
    drops_counter = meter.create_counter("capture.frames_not_fresh", unit="{frame}")
    stop = stop or threading.Event()
    target, title = _pick_target(cfg)
    session = create_session_dir(Path(output_dir or cfg.output_dir))
    session_id = session.name
    window_id = title if title is not None else "screen"
    extra: dict[str, Any] = {"run_id": run_id} if run_id else {}
    if provenance is not None:
        extra["provenance"] = provenance
    write_manifest(session, STATUS_RECORDING, extra)
    journal = EventJournal(session / EVENTS_JOURNAL)
    stop_reason: list[str] = []

    def on_stop(reason: str) -> None:
        stop_reason.append(reason)
        stop.set()

    max_frames = None if cfg.duration_s is None else max(1, round(cfg.duration_s * cfg.fps))
    with tracer.start_as_current_span("capture.session") as span:
        span.set_attribute("capture.session_id", session_id)
        span.set_attribute("capture.fps", cfg.fps)
        recorder = ScreenRecorder(
            target,
            session / FRAMES_FILE,
            journal,
            fps=cfg.fps,
            session_id=session_id,
            window_id=window_id,
            preset=cfg.preset,
            crf=cfg.crf,
            keyframe_interval_s=cfg.keyframe_interval_s,
            on_stop=on_stop,
            max_frames=max_frames,
        )
        audio, audio_error = _start_audio(cfg, session)
        recorder.start()
        if not recorder.started.wait(10.0) or recorder.clock is None:
            recorder.stop()
            recorder.join()
            if audio is not None:
                audio.stop()
            raise CaptureDeviceError(
                f"screen grabber did not start: {'; '.join(recorder.stats.errors) or 'timeout'}"
            )
        clock = recorder.clock
        if audio is not None:
            audio.align(clock.t0_ns)
        mapping = ClockMapping.now()
        logger: InputLogger | None = None
        streams = {"screen": "recording", "input": "off"}
        input_error: str | None = None
        meta = {
            "format_version": FORMAT_VERSION,
            "session_id": session_id,
            "status": STATUS_RECORDING,
            "fps": cfg.fps,
            "dropped_frames": 0,
            "padded_frames": 0,
            "actual_fps": 0.0,
            "capture_fps": 0.0,
            "screen_resolution": [recorder.width, recorder.height],
            "window_id": window_id,
            "webcam_info": None,
            "audio_info": None,
            "start_t_ns": mapping.to_wall(clock.t0_ns),
            "end_t_ns": None,
            "duration_s": None,
            "start_monotonic_ns": clock.t0_ns,
            "clock": mapping.to_dict(),
            "frame_count": 0,
            "validation": {},
            "trajectories": [],
            "window": {
                "title": title,
                "x11_window_id": None if target.handle is None else hex(target.handle),
                "initial_rect": [
                    target.rect.left,
                    target.rect.top,
                    target.rect.width,
                    target.rect.height,
                ],
                "allow_any": cfg.allow_any,
            },
            "video": {
                "file": FRAMES_FILE,
                "codec": "h264",
                "pix_fmt": "yuv420p",
                "preset": cfg.preset,
                "crf": cfg.crf,
                "gop_frames": recorder.gop,
                "b_frames": 0,
                "container": "fragmented mp4",
                "pts": "frame index, time base 1/fps",
            },
            "input": {
                "enabled": cfg.input.enabled,
                "mouse_moves": cfg.input.mouse_moves,
                "focus_only": cfg.input.focus_only and target.handle is not None,
                "coordinates": "relative to the captured region; absolute in metadata",
            },
            "display": os.environ.get("DISPLAY"),
            "run_id": run_id,
            "provenance": provenance,
        }
        write_json_atomic(session / METADATA_FILE, meta)
        streams["audio"] = "off" if not cfg.audio.enabled else ("recording" if audio else "failed")
        if audio is not None:  # so that a killed session still knows the audio format
            meta["audio_info"] = audio.info(clock.t0_ns)
            write_json_atomic(session / METADATA_FILE, meta)
        if cfg.input.enabled:
            try:
                logger = InputLogger(
                    journal,
                    clock,
                    region=recorder.region,
                    handle=target.handle,
                    window_id=window_id,
                    session_id=session_id,
                    mouse_moves=cfg.input.mouse_moves,
                    focus_only=cfg.input.focus_only,
                )
                logger.start()
                recorder.on_region = logger.set_region
                logger.set_region(recorder.region)
                streams["input"] = "recording"
            except Exception as exc:  # noqa: BLE001 - input failing must not stop video
                input_error = f"{type(exc).__name__}: {exc}"
                streams["input"] = "failed"
                logger = None
        last_frames = 0
        last_t = time.monotonic()
        try:
            while not stop.wait(min(JOURNAL_FLUSH_S, status_interval_s)):
                journal.flush()
                if (
                    audio is not None
                    and streams["audio"] == "recording"
                    and audio.seconds_since_data() > AUDIO_SILENCE_FAIL_S
                ):
                    streams["audio"] = "failed"
                    audio.stats.error = "no audio delivered for 2 s (device removed?)"
                    audio.stats.failed_at_ns = time.monotonic_ns()
                now = time.monotonic()
                stats = recorder.stats
                if on_status is not None:
                    fps_now = (stats.fresh - last_frames) / max(now - last_t, 1e-6)
                    last_frames, last_t = stats.fresh, now
                    on_status(
                        Status(
                            elapsed_s=(time.monotonic_ns() - clock.t0_ns) / 1e9,
                            frames=stats.frames,
                            fps=fps_now,
                            padded=stats.padded,
                            dropped=stats.dropped,
                            inputs=logger.logged if logger else 0,
                            streams=dict(streams),
                        )
                    )
        finally:
            stop_ns = time.monotonic_ns()
            if logger is not None:
                logger.stop()
                if logger.error:
                    input_error = logger.error
                    streams["input"] = "failed"
            recorder.stop()
            recorder.join()
            if audio is not None:
                audio.stop(end_ns=clock.t_ns(recorder.stats.frames))
            journal.close()
        frames_counter.add(recorder.stats.frames)
        drops_counter.add(recorder.stats.padded + recorder.stats.dropped)
        reason = recorder.stop_reason or (stop_reason[0] if stop_reason else "stopped")
        if reason == "stopped" and stop_reason and stop_reason[0] != "stopped":
            reason = stop_reason[0]
        streams["screen"] = "failed" if recorder.stats.errors else "complete"
        for name in ("input", "audio"):
            if streams[name] == "recording":
                streams[name] = "complete"
        live = {
            "stop_monotonic_ns": stop_ns,
            "stop_reason": reason,
            "streams": {
                "screen": {"status": streams["screen"], "errors": recorder.stats.errors},
                "input": {
                    "status": streams["input"],
                    "error": input_error,
                    "logged": logger.logged if logger else 0,
                    "suppressed_unfocused": logger.suppressed if logger else 0,
                },
                "audio": {
                    "status": streams["audio"],
                    "error": audio_error or (audio.stats.error if audio else None),
                },
            },
            "audio_info": audio.info(clock.t0_ns) if audio is not None else None,
            "window": {
                **meta["window"],  # type: ignore[dict-item]
                "moves": recorder.window_moves,
                "resized": recorder.window_resized,
            },
            "trajectories": [{"start_frame": a, "end_frame": b} for a, b in recorder.focus.segments]
            if target.handle is not None
            else [{"start_frame": 0, "end_frame": max(0, recorder.stats.frames - 1)}],
        }
        result = finalize_session(session, recovered=False, live=live)
        span.set_attribute("capture.frames", int(result.get("frame_count", 0)))
        span.set_attribute("capture.stop_reason", reason)
    return SessionResult(session, result)
