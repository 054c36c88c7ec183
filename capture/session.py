"""One capture session: pick the target, start the streams, stop, finalize.

:func:`run_capture` is the library entry point behind both ``python -m capture`` and
``aiconfig capture``. It never prints: progress goes to the ``on_status`` callback and the
outcome is the returned :class:`SessionResult` (or a :class:`~aiconfig.AiconfigError`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry import metrics, trace

from aiconfig import CaptureConfig, CaptureDeviceError, ConfigFileError
from aiconfig._files import atomic_write_json
from aiconfig.harness.budget import Budget

from .constants import (
    EVENTS_JOURNAL,
    FORMAT_VERSION,
    FRAME_QUEUE,
    FRAMES_FILE,
    JOURNAL_FLUSH_S,
    METADATA_FILE,
    STATUS_RECORDING,
)
from .events import EventJournal
from .finalize import finalize_session, write_manifest
from .input_logging import InputLogger
from .plugin_streams import PluginStreams
from .screen_recorder import ScreenRecorder
from .streams import audio_problem, open_webcam, pick_target, start_audio
from .timeline import ClockMapping
from .video_writer import even_size

__all__ = ["SessionResult", "Status", "create_session_dir", "run_capture"]


def _sizes(budget: Budget | None, frame_bytes: int) -> tuple[int, int]:
    """Frame queue length and encoder threads (0: the encoder decides) under ``budget``."""
    if budget is None:
        return FRAME_QUEUE, 0
    queue_size = budget.queue_size(frame_bytes, FRAME_QUEUE, what="the screen frame queue")
    # Without a CPU limit (cpu_source "host") x264 picks its own thread count, as standalone.
    return queue_size, 0 if budget.cpu_source == "host" else budget.encoder_threads


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


def _wait_s(deadline: int | None, period_s: float) -> float:
    """Sleep one status period, but wake exactly at the deadline."""
    if deadline is None:
        return period_s
    return max(0.0, min(period_s, (deadline - time.monotonic_ns()) / 1e9))


def _stop_reason(reasons: list[str], *, deadline_hit: bool) -> str:
    """Why the session ended, from what the grabber and the main loop saw."""
    if deadline_hit or "duration_reached" in reasons:
        return "duration_reached"
    if "window_closed" in reasons:
        return "window_closed"
    if "nothing_left" in reasons:
        error = next(r for r in reasons if r.startswith("error"))
        return f"error: nothing left to record ({error[len('error: ') :]})"
    return "stopped"


def run_capture(
    cfg: CaptureConfig,
    *,
    output_dir: Path | None = None,
    stop: threading.Event | None = None,
    on_status: Callable[[Status], None] | None = None,
    status_interval_s: float = 0.5,
    provenance: dict[str, Any] | None = None,
    run_id: str | None = None,
    budget: Budget | None = None,
    on_session: Callable[[Path], None] | None = None,
    on_ready: Callable[[dict[str, Any]], None] | None = None,
    stream_plugins: Mapping[str, Any] | None = None,
) -> SessionResult:
    """Record until ``cfg.duration_s`` passes, ``stop`` is set, or the window closes.

    ``budget`` sizes the frame queues and encoder threads (a run's CPU and memory limits);
    ``on_session`` gets the session directory as soon as it exists; ``on_ready`` is called once
    every stream is open and the clock runs, with the session and stream states; stream plugins
    (:mod:`capture.plugin_streams`) run beside the built-in streams.
    """
    tracer = trace.get_tracer("capture")
    meter = metrics.get_meter("capture")
    frames_counter = meter.create_counter("capture.frames", unit="{frame}")
    drops_counter = meter.create_counter("capture.frames_not_fresh", unit="{frame}")
    stop = stop or threading.Event()
    target, title = pick_target(cfg)
    width, height = even_size(target.rect.width, target.rect.height)
    queue_size, threads = _sizes(budget, width * height * 4)
    session = create_session_dir(Path(output_dir or cfg.output_dir))
    if on_session is not None:
        on_session(session)
    session_id = session.name
    window_id = title if title is not None else "screen"
    extra: dict[str, Any] = {"run_id": run_id} if run_id else {}
    if provenance is not None:
        extra["provenance"] = provenance
    write_manifest(session, STATUS_RECORDING, extra)
    journal = EventJournal(session / EVENTS_JOURNAL)
    stop_reason: list[str] = []

    others_alive: list[Callable[[], bool]] = []

    def on_stop(reason: str) -> None:
        """From the grabber: the window closed, the duration passed, or the screen failed. A
        failed screen stops the session only when no other stream is still recording."""
        stop_reason.append(reason)
        if reason.startswith("error"):
            if any(alive() for alive in others_alive):
                return
            stop_reason.append("nothing_left")
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
            queue_size=queue_size,
            threads=threads,
        )
        # Input first: it takes a moment to come up, and once metadata.json exists (written
        # below, when the clock starts) every input event is logged.
        logger: InputLogger | None = None
        streams = {"screen": "recording", "input": "off"}
        input_error: str | None = None
        if cfg.input.enabled:
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
                streams["input"] = "recording"
            except Exception as exc:  # noqa: BLE001 - input failing must not stop video
                input_error = f"{type(exc).__name__}: {exc}"
                streams["input"] = "failed"
                logger = None
        audio, audio_error = start_audio(cfg, session)
        webcam, webcam_error = open_webcam(cfg, session, journal, session_id, threads=threads)
        plugins = PluginStreams(stream_plugins or {}, session, session_id=session_id, fps=cfg.fps)
        recorder.start()
        if not recorder.started.wait(10.0) or recorder.clock is None:
            recorder.stop()
            recorder.join()
            if audio is not None:
                audio.stop()
            if webcam is not None:
                webcam.stop()
            if logger is not None:
                logger.stop()
            plugins.stop(0)
            raise CaptureDeviceError(
                f"screen grabber did not start: {'; '.join(recorder.stats.errors) or 'timeout'}"
            )
        clock = recorder.clock
        if logger is not None:
            logger.set_region(recorder.region)
            logger.set_t0(clock.t0_ns)
            recorder.on_region = logger.set_region
        if audio is not None:
            audio.align(clock.t0_ns)
        if webcam is not None:
            webcam.start(clock.t0_ns)
        plugins.start(clock.t0_ns)
        mapping = ClockMapping.now()
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
            "resources": {
                "frame_queue": queue_size,
                "encoder_threads": threads or "auto",
                "cpus": None if budget is None else budget.cpus,
                "mem_limit_mb": None if budget is None else budget.mem_limit_mb,
            },
            "run_id": run_id,
            "provenance": provenance,
        }
        atomic_write_json(session / METADATA_FILE, meta)
        streams["audio"] = "off" if not cfg.audio.enabled else ("recording" if audio else "failed")
        streams["webcam"] = (
            "off" if not cfg.webcam.enabled else ("recording" if webcam else "failed")
        )
        others_alive.append(lambda: streams.get("audio") == "recording")
        others_alive.append(lambda: streams.get("webcam") == "recording")
        if webcam is not None:
            meta["webcam_info"] = webcam.info()
            atomic_write_json(session / METADATA_FILE, meta)
        if audio is not None:  # so that a killed session still knows the audio format
            meta["audio_info"] = audio.info(clock.t0_ns)
            atomic_write_json(session / METADATA_FILE, meta)
        last_frames = 0
        last_t = time.monotonic()
        try:
            if on_ready is not None:  # inside the try: if it raises, every stream still stops
                plugin_states = {k: v["status"] for k, v in plugins.status.items()}
                on_ready({"session": session_id, "streams": {**streams, **plugin_states}})
            deadline = None if max_frames is None else clock.t_ns(max_frames)
            deadline_hit = False
            while not stop.wait(_wait_s(deadline, min(JOURNAL_FLUSH_S, status_interval_s))):
                journal.flush()
                if deadline is not None and time.monotonic_ns() >= deadline:
                    deadline_hit = True
                    break  # the grabber enforces the duration; this covers a failed screen
                if recorder.stats.errors and streams["screen"] == "recording":
                    streams["screen"] = "failed"
                if webcam is not None and streams["webcam"] == "recording" and webcam.stats.error:
                    streams["webcam"] = "failed"
                if audio is not None and streams["audio"] == "recording":
                    problem = audio_problem(audio)
                    if problem is not None:
                        streams["audio"] = "failed"
                        audio.fail(problem)
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
            recorder.stop()
            recorder.grab_done.wait(10.0)
            end_ns = clock.t_ns(recorder.stats.frames)
            if recorder.stats.errors:  # the screen died early: keep the other streams' tail
                end_ns = max(end_ns, stop_ns if deadline is None else min(stop_ns, deadline))
            if webcam is not None:
                webcam.set_end(end_ns)
            if audio is not None:
                audio.stop(end_ns=end_ns)
            if webcam is not None:
                webcam.stop()
            plugin_status = plugins.stop(end_ns)
            recorder.join()
            if logger is not None:
                logger.stop()
                if logger.error:
                    input_error = logger.error
                    streams["input"] = "failed"
            journal.close()
        frames_counter.add(recorder.stats.frames)
        drops_counter.add(recorder.stats.padded + recorder.stats.dropped)
        reason = _stop_reason(stop_reason, deadline_hit=deadline_hit)
        streams["screen"] = "failed" if recorder.stats.errors else "complete"
        if webcam is not None and webcam.stats.error:
            streams["webcam"] = "failed"
        for name in ("input", "audio", "webcam"):
            if streams[name] == "recording":
                streams[name] = "complete"
        live = {
            "stop_monotonic_ns": stop_ns,
            "stop_reason": reason,
            "streams": {
                "screen": {
                    "status": streams["screen"],
                    "errors": recorder.stats.errors,
                    "failed_at_ns": recorder.stats.failed_at_ns,
                },
                "input": {
                    "status": streams["input"],
                    "error": input_error,
                    "logged": logger.logged if logger else 0,
                    "suppressed_unfocused": logger.suppressed if logger else 0,
                },
                "webcam": {
                    "status": streams["webcam"],
                    "error": webcam_error or (webcam.stats.error if webcam else None),
                },
                "audio": {
                    "status": streams["audio"],
                    "error": audio_error or (audio.stats.error if audio else None),
                },
                **plugin_status,
            },
            "audio_info": audio.info(clock.t0_ns) if audio is not None else None,
            "webcam_info": webcam.info()
            if webcam is not None
            else (None if webcam_error is None else {"device": cfg.webcam.device}),
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
