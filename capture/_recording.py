"""One capture session as an object with four phases: open, run, stop, finalize.

:class:`Recording` holds what a session needs from its first frame to its final files::

    rec = Recording(cfg, output_dir=out)
    rec.open()          # pick the target, create the session, start every stream and the clock
    try:
        rec.run()       # flush events, watch the streams, report status until stopped
    finally:
        rec.stop()      # stop every stream at one end time; collect what each one saw
    result = rec.finalize()   # events.parquet, metadata.json, manifest.json; validated

:func:`run_capture` does exactly that inside a ``capture.session`` span; it is the library entry
point behind the capture job (:func:`capture.record_session`). Neither prints: progress goes to
the ``on_status`` callback and the outcome is the returned :class:`SessionResult` (or a
:class:`~aiconfig.AiconfigError`).
"""

from __future__ import annotations

import contextlib
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

from ._constants import (
    EVENTS_JOURNAL,
    FORMAT_VERSION,
    FRAME_QUEUE,
    FRAMES_FILE,
    JOURNAL_FLUSH_S,
    METADATA_FILE,
    STATUS_FAILED,
    STATUS_RECORDING,
)
from ._events import EventJournal
from ._finalize import finalize_session, write_manifest
from ._plugin_streams import PluginStreams
from ._screen_recorder import ScreenRecorder
from ._storage import SpaceReserve, StorageFault, Syncer
from ._stream_set import StreamSet
from ._streams import pick_target, run_preflight
from ._timeline import ClockMapping
from ._video_writer import even_size
from .platforms import platform_name

__all__ = ["Recording", "SessionResult", "Status", "create_session_dir", "run_capture"]


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

    @property
    def failed_streams(self) -> list[tuple[str, str]]:
        """``(stream, error)`` for every stream the session asked for that failed (streams
        not asked for are ``off``), in metadata order: screen, input, webcam, audio, plugins."""
        out = []
        for name, info in (self.metadata.get("streams") or {}).items():
            if isinstance(info, dict) and info.get("status") == "failed":
                error = info.get("error") or (
                    info.get("errors") and f"{info['errors']} grab errors"
                )
                lines = [line.strip() for line in str(error or "failed").splitlines()]
                out.append((name, "; ".join(line for line in lines if line)))
        return out

    def summary(self) -> dict[str, Any]:
        """The figures a run reports: session path, frames, padded, dropped, stop, validity,
        and the requested streams that failed."""
        meta = self.metadata
        return {
            "session": str(self.path),
            "frames": meta["frame_count"],
            "padded": meta["padded_frames"],
            "dropped": meta["dropped_frames"],
            "stop_reason": meta.get("stop_reason"),
            "valid": self.ok,
            "failed_streams": [name for name, _ in self.failed_streams],
        }


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


class Recording:
    """One session, recorded in four phases called in order, each once: :meth:`open`,
    :meth:`run`, :meth:`stop` (always, once :meth:`open` succeeded) and :meth:`finalize`.

    ``budget`` sizes the frame queues and encoder threads (a run's CPU and memory limits);
    ``stop`` (set from any thread) ends :meth:`run`; stream plugins
    (:mod:`capture._plugin_streams`) run beside the built-in streams. The streams themselves,
    opened and stopped together, are a :class:`~capture._stream_set.StreamSet`.
    """

    def __init__(
        self,
        cfg: CaptureConfig,
        *,
        output_dir: Path | None = None,
        stop: threading.Event | None = None,
        provenance: dict[str, Any] | None = None,
        run_id: str | None = None,
        budget: Budget | None = None,
        stream_plugins: Mapping[str, Any] | None = None,
    ) -> None:
        self.cfg = cfg
        self.stopping = stop or threading.Event()
        self._output_dir = Path(output_dir or cfg.output_dir)
        self._provenance = provenance
        self._run_id = run_id
        self._budget = budget
        self._stop_reasons: list[str] = []  # from the grabber: window closed, duration, error
        self._deadline_hit = False
        self._deadline: int | None = None
        self._stream_set = StreamSet(cfg, stream_plugins or {})
        self._stop_ns = 0
        # The first failed write (a full disk) stops the session; see capture._storage.
        self.faults = StorageFault(self.stopping)
        self._reserve: SpaceReserve | None = None
        self._syncer = Syncer(cfg.storage.fsync_interval_s, on_error=self.faults.report)
        self._session_stat: os.stat_result | None = None

    @property
    def streams(self) -> dict[str, str]:
        """Each stream's state: ``recording``, ``failed`` or ``off``."""
        return self._stream_set.states

    @property
    def recorder(self) -> ScreenRecorder:
        """The screen stream (from :meth:`open` on)."""
        return self._stream_set.recorder

    @property
    def plugins(self) -> PluginStreams:
        """The stream plugins (from :meth:`open` on)."""
        return self._stream_set.plugins

    # -- phase 1: open ---------------------------------------------------------------------------

    def open(self, on_session: Callable[[Path], None] | None = None) -> Path:
        """Pick the target, create the session directory (``on_session`` gets it at once), start
        every stream, wait for the first frame to start the clock and write ``metadata.json``.

        Raises :class:`~aiconfig.CaptureDeviceError` when the screen cannot be grabbed; every
        stream opened so far is stopped then.
        """
        cfg = self.cfg
        # -- preflight (capture._doctor): refuse now when the screen cannot work --
        self.preflight = run_preflight(cfg, self._output_dir)
        self.target, self.title = pick_target(cfg)
        width, height = even_size(self.target.rect.width, self.target.rect.height)
        self.queue_size, self.threads = _sizes(self._budget, width * height * 4)
        self.session = create_session_dir(self._output_dir)
        if on_session is not None:
            on_session(self.session)
        self.session_id = self.session.name
        self._reserve = SpaceReserve(self.session)
        self._session_stat = os.stat(self.session)
        self.window_id = self.title if self.title is not None else "screen"
        extra: dict[str, Any] = {"run_id": self._run_id} if self._run_id else {}
        if self._provenance is not None:
            extra["provenance"] = self._provenance
        try:  # nothing is open yet: a disk that cannot take these is refused here
            write_manifest(self.session, STATUS_RECORDING, extra)
            self.journal = EventJournal(
                self.session / EVENTS_JOURNAL, on_error=self.faults.handler(EVENTS_JOURNAL)
            )
        except OSError as exc:
            if self._reserve is not None:
                self._reserve.release()
            from ._storage import fault_reason

            raise ConfigFileError(
                f"cannot start the session ({fault_reason(exc)})",
                file=str(self.session),
                hint="free some space or choose another --out",
            ) from None
        self._max_frames = (
            None if cfg.duration_s is None else max(1, round(cfg.duration_s * cfg.fps))
        )
        try:
            self._stream_set.open(
                self.target,
                self.session,
                self.journal,
                session_id=self.session_id,
                window_id=self.window_id,
                max_frames=self._max_frames,
                queue_size=self.queue_size,
                threads=self.threads,
                faults=self.faults,
                on_grabber_stop=self._on_grabber_stop,
            )
        except BaseException:  # the streams opened so far must not outlive the refusal
            self._abort()
            raise
        self.recorder.start()
        if not self.recorder.started.wait(10.0) or self.recorder.clock is None:
            self._abort()
            errors = "; ".join(self.recorder.stats.errors) or "timeout"
            raise CaptureDeviceError(f"screen grabber did not start: {errors}")
        try:
            self._start_clock()
        except BaseException:
            self._abort()
            raise
        return self.session

    def _on_grabber_stop(self, reason: str) -> None:
        """From the grabber: the window closed, the duration passed, or the screen failed. A
        failed screen stops the session only when no other stream is still recording."""
        self._stop_reasons.append(reason)
        if reason.startswith("error"):
            if self._stream_set.media_recording():
                return
            self._stop_reasons.append("nothing_left")
        self.stopping.set()

    def _abort(self) -> None:
        """Stop whatever :meth:`open` started (the screen grabber did not start)."""
        self._stream_set.abort()
        self.journal.close()
        if self._reserve is not None:
            self._reserve.release()

    def _start_clock(self) -> None:
        """Align every stream on the first frame's clock and write the session's metadata."""
        clock = self.recorder.clock
        assert clock is not None  # noqa: S101 - open() checked it
        self.clock = clock
        self._stream_set.start(clock)
        self.meta = self._start_metadata(ClockMapping.now())
        self._write_metadata()
        self._stream_set.mark_started()
        audio, webcam = self._stream_set.audio, self._stream_set.webcam
        if webcam is not None:
            self.meta["webcam_info"] = webcam.info()
        if audio is not None:  # so that a killed session still knows the audio format
            self.meta["audio_info"] = audio.info(clock.t0_ns)
        if webcam is not None or audio is not None:
            self._write_metadata()
        # Durability: the growing files are fsynced every storage.fsync_interval_s.
        for name in (FRAMES_FILE, EVENTS_JOURNAL, *self._stream_set.media_files()):
            self._syncer.add(self.session / name)
        self._syncer.start()

    def _write_metadata(self) -> None:
        """``metadata.json``, atomically; a failed write (a full disk) stops the session."""
        try:
            atomic_write_json(self.session / METADATA_FILE, self.meta)
        except OSError as exc:
            self.faults.report(METADATA_FILE, exc)

    def _start_metadata(self, mapping: ClockMapping) -> dict[str, Any]:
        """``metadata.json`` as written when the clock starts (finalize fills in the rest)."""
        cfg, target, recorder, budget = self.cfg, self.target, self.recorder, self._budget
        t0 = self.clock.t0_ns
        return {
            "format_version": FORMAT_VERSION,
            "session_id": self.session_id,
            "status": STATUS_RECORDING,
            "fps": cfg.fps,
            "dropped_frames": 0,
            "padded_frames": 0,
            "actual_fps": 0.0,
            "capture_fps": 0.0,
            "screen_resolution": [recorder.width, recorder.height],
            "window_id": self.window_id,
            "webcam_info": None,
            "audio_info": None,
            "start_t_ns": mapping.to_wall(t0),
            "end_t_ns": None,
            "duration_s": None,
            "start_monotonic_ns": t0,
            "clock": mapping.to_dict(),
            "frame_count": 0,
            "validation": {},
            "trajectories": [],
            "window": {
                "title": self.title,
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
                "frame_queue": self.queue_size,
                "encoder_threads": self.threads or "auto",
                "cpus": None if budget is None else budget.cpus,
                "mem_limit_mb": None if budget is None else budget.mem_limit_mb,
            },
            "run_id": self._run_id,
            "provenance": self._provenance,
            "platform": {"backend": platform_name(), "grabber": recorder.grabber_name},
            "preflight": [check.to_dict() for check in self.preflight],
        }

    # -- phase 2: run ----------------------------------------------------------------------------

    def run(
        self,
        *,
        on_status: Callable[[Status], None] | None = None,
        on_ready: Callable[[dict[str, Any]], None] | None = None,
        status_interval_s: float = 0.5,
    ) -> None:
        """Record until the duration passes, :attr:`stopping` is set, or the window closes.

        ``on_ready`` is called first, with the session and stream states (if it raises, the
        caller's :meth:`stop` still stops every stream); ``on_status`` then gets a
        :class:`Status` every ``status_interval_s``.
        """
        clock = self.clock
        if on_ready is not None:
            plugin_states = {k: v["status"] for k, v in self.plugins.status.items()}
            on_ready({"session": self.session_id, "streams": {**self.streams, **plugin_states}})
        self._deadline = None if self._max_frames is None else clock.t_ns(self._max_frames)
        last_frames = 0
        last_t = time.monotonic()
        period = min(JOURNAL_FLUSH_S, status_interval_s)
        while not self.stopping.wait(_wait_s(self._deadline, period)):
            self.journal.flush()
            if self._deadline is not None and time.monotonic_ns() >= self._deadline:
                self._deadline_hit = True
                break  # the grabber enforces the duration; this covers a failed screen
            self._watch_streams()
            now = time.monotonic()
            stats = self.recorder.stats
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
                        inputs=self._stream_set.inputs_logged(),
                        streams=dict(self.streams),
                    )
                )

    def _watch_streams(self) -> None:
        """Mark a stream failed as soon as it fails; the others go on. A session directory
        that vanished (deleted, its disk unmounted) stops the session like a failed write."""
        try:
            now = os.stat(self.session)
            gone = self._session_stat is not None and (now.st_ino, now.st_dev) != (
                self._session_stat.st_ino,
                self._session_stat.st_dev,
            )
        except FileNotFoundError:
            gone = True
        if gone:
            self.faults.report(
                str(self.session),
                FileNotFoundError(2, "the session directory vanished while recording"),
                reason="output directory vanished",
            )
        self._stream_set.watch()

    # -- phase 3: stop ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every stream so that all of them end at the same time (the last frame's, or
        when the screen died early, the stop time); then close the event journal."""
        self._stop_ns = time.monotonic_ns()
        self._stream_set.stop(self.clock, self._stop_ns, self._deadline)
        self.journal.close()
        if not self.faults.failed:
            self._syncer.sync_all()  # every byte written is on disk before the commit
        self._syncer.stop()

    # -- phase 4: finalize -----------------------------------------------------------------------

    def stop_reason(self) -> str:
        """Why the session ended, from what the grabber and the main loop saw."""
        return _stop_reason(self._stop_reasons, deadline_hit=self._deadline_hit)

    def finalize(self) -> SessionResult:
        """Write the session's final files from what is on disk plus what only the live run
        knows (:meth:`_live`), validate them, and return the result."""
        if self.faults.failed:
            raise self._mark_failed()
        live = self._live()
        if self._reserve is not None:
            self._reserve.release()
        return SessionResult(
            self.session, finalize_session(self.session, recovered=False, live=live)
        )

    def _mark_failed(self) -> ConfigFileError:
        """A write failed: mark the session ``failed`` (the reserve's room lets that write
        succeed on a full disk) and return the one-line error the run ends with."""
        fault = self.faults.first
        assert fault is not None  # noqa: S101 - finalize() checked it
        if self._reserve is not None:
            self._reserve.release()
        t0 = self.clock.t0_ns if getattr(self, "clock", None) is not None else None
        failure = fault.to_dict(t0)
        failure["later_failed_writes"] = self.faults.later
        failure["rows_lost"] = self.journal.rows_lost
        kept = self.recorder.stats.frames
        marked = self.session.is_dir()
        if marked:
            meta = dict(getattr(self, "meta", {}))
            meta.update(
                {
                    "status": STATUS_FAILED,
                    "stop_reason": f"error: {fault.reason}",
                    "failure": failure,
                    "storage": {"fsync": self._syncer.info()},
                }
            )
            if getattr(self, "meta", None) is not None:
                # A partial session (a stream never started): keep what is known.
                with contextlib.suppress(Exception):
                    meta.update({k: v for k, v in self._live().items() if k != "stop_reason"})
            try:
                atomic_write_json(self.session / METADATA_FILE, meta)
                write_manifest(self.session, STATUS_FAILED, {"failure": failure})
            except OSError:
                marked = False  # manifest.json still says 'recording': recover works alike
        what = "the session directory vanished" if not self.session.is_dir() else fault.reason
        return ConfigFileError(
            f"{what} at {failure['at']} writing {fault.what} after "
            f"{failure['after_s'] if failure['after_s'] is not None else 0:g} s; every stream "
            f"stopped, {kept} frames kept" + (", session marked failed" if marked else ""),
            file=str(self.session),
            hint=f"free some space, then run 'python -m capture recover {self.session}'"
            if self.session.is_dir()
            else "check the output disk",
        )

    def _live(self) -> dict[str, Any]:
        """What finalize cannot read from the files: the stop, each stream's outcome, the
        window's moves and the focus segments."""
        recorder, audio = self.recorder, self._stream_set.audio
        return {
            "stop_monotonic_ns": self._stop_ns,
            "storage": {
                "fsync": self._syncer.info(),
                "min_free_minutes": self.cfg.storage.min_free_minutes,
            },
            "stop_reason": self.stop_reason(),
            "streams": self._stream_set.outcomes(),
            "audio_info": audio.info(self.clock.t0_ns) if audio is not None else None,
            "webcam_info": self._stream_set.webcam_info(),
            "window": {
                **self.meta["window"],
                "moves": recorder.window_moves,
                "resized": recorder.window_resized,
                "hidden_frames": recorder.window_hidden_frames,
            },
            "trajectories": [{"start_frame": a, "end_frame": b} for a, b in recorder.focus.segments]
            if self.target.handle is not None
            else [{"start_frame": 0, "end_frame": max(0, recorder.stats.frames - 1)}],
        }


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
    """Record one session (:class:`Recording`'s four phases) inside a ``capture.session`` span.

    Records until ``cfg.duration_s`` passes, ``stop`` is set, or the window closes.
    ``on_session`` gets the session directory as soon as it exists; ``on_ready`` is called once
    every stream is open and the clock runs, with the session and stream states.
    """
    tracer = trace.get_tracer("capture")
    meter = metrics.get_meter("capture")
    frames_counter = meter.create_counter("capture.frames", unit="{frame}")
    drops_counter = meter.create_counter("capture.frames_not_fresh", unit="{frame}")
    rec = Recording(
        cfg,
        output_dir=output_dir,
        stop=stop,
        provenance=provenance,
        run_id=run_id,
        budget=budget,
        stream_plugins=stream_plugins,
    )
    with tracer.start_as_current_span("capture.session") as span:
        rec.open(on_session)
        span.set_attribute("capture.session_id", rec.session_id)
        span.set_attribute("capture.fps", cfg.fps)
        try:
            rec.run(on_status=on_status, on_ready=on_ready, status_interval_s=status_interval_s)
        finally:
            rec.stop()
        stats = rec.recorder.stats
        frames_counter.add(stats.frames)
        drops_counter.add(stats.padded + stats.dropped)
        result = rec.finalize()
        span.set_attribute("capture.frames", int(result.metadata.get("frame_count", 0)))
        span.set_attribute("capture.stop_reason", rec.stop_reason())
    return result
