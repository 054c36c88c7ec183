"""The capture job: record one session as a run of the orchestrator contract.

:func:`record_session` is what ``python -m capture`` and ``aiconfig capture`` call once their
flags are parsed; it never prints (the run's JSON log aside) and raises
:class:`~aiconfig.AiconfigError` for every handled failure.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiconfig import SessionError, StreamFailedError, Terminated
from aiconfig.harness.context import RunContext
from aiconfig.harness.settings import RunSettings

if TYPE_CHECKING:
    from aiconfig import CaptureConfig

    from ._recording import SessionResult, Status

__all__ = ["capture_devices", "record_session"]

# Loaded on entering the run, under its thread and allocator settings, before the memory limit.
_PRELOAD = ("numpy", "cv2", "av", "pyarrow", "mss")


def capture_devices(cfg: CaptureConfig) -> tuple[str, ...]:
    """The devices a session of ``cfg`` opens, each taken under an exclusive run lock."""
    devices = ["screen"]
    if cfg.input.enabled:
        devices.append("input")
    if cfg.audio.enabled:
        devices.append("audio")
    if cfg.webcam.enabled:
        devices.append("webcam")
    return tuple(devices)


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event, caught: list[int]) -> Iterator[None]:
    """While recording, Ctrl+C and SIGTERM stop the session (it is finalized first). Ctrl+C is
    the person's stop key, like ``q`` (the seed's "press q or Ctrl+C"); SIGTERM is kept in
    ``caught`` so the run then ends as interrupted, as every job does on SIGTERM.

    Only the main thread can own signal handlers; elsewhere the caller's ``stop`` is all there is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: Any) -> None:
        if signum == signal.SIGTERM:
            caught.append(signum)
        stop.set()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _session_error(result: SessionResult) -> SessionError | None:
    """The run's error when the session ended in an error or is not valid (it is kept)."""
    meta = result.metadata
    reason = str(meta.get("stop_reason") or "")
    if reason.startswith("error"):
        return SessionError(f"{reason}; the session was kept", file=str(result.path))
    if not result.ok:
        problems = meta.get("validation", {}).get("problems") or ["see metadata.json"]
        return SessionError(
            f"the session is not valid: {problems[0]}",
            file=str(result.path),
            hint="the session was kept; run 'python -m capture validate' on it",
        )
    return None


def record_session(
    cfg: CaptureConfig,
    settings: RunSettings,
    *,
    plugins: Sequence[str] = (),
    provenance: Mapping[str, Any] | None = None,
    stop: threading.Event | None = None,
    strict: bool = False,
    on_status: Callable[[Status], None] | None = None,
    on_finished: Callable[[SessionResult], None] | None = None,
) -> SessionResult:
    """Record one session as a run (:class:`~aiconfig.harness.context.RunContext`).

    The run's ``settings`` (run id, output directory, ready file, lock directory, budgets,
    offline mode, JSON logs) apply before anything opens. The session goes under the run's
    output directory, the devices are locked, the ready file is written once every stream
    records, and the run manifest is written last. ``plugins`` names stream plugins (loaded
    inside the run, so offline mode refuses one that needs the network). Setting ``stop``, Ctrl+C
    or SIGTERM ends the recording, which is then finalized. ``on_finished`` gets the finalized
    session before the run decides its status; an error stop or an invalid session then raises
    :class:`~aiconfig.SessionError` (the session is kept).

    SIGTERM ends the run as it ends every job (docs/harness.md): the session is finalized and
    kept, then :class:`~aiconfig.Terminated` is raised (exit 143, manifest ``interrupted``).
    Ctrl+C, like ``q``, is a person's normal stop (exit 0). A requested stream that failed
    degrades the session alone; with ``strict`` it raises :class:`~aiconfig.StreamFailedError`
    (exit 3) once the session is kept.
    """
    # Without a run id from an orchestrator this is a person recording into a directory that
    # collects sessions: the run manifest there lists this run's session only.
    standalone = settings.sources.get("run_id") == "generated"
    ctx = RunContext(
        settings, devices=capture_devices(cfg), preload=_PRELOAD, shared_out=standalone
    )
    with ctx as run:
        # Imported inside the run: numpy, PyAV, pyarrow, mss and OpenCV load under its thread
        # and allocator settings, before its memory limit (RunContext's preload).
        from ._plugin_streams import load_stream_plugins
        from ._recording import run_capture

        prov = None if provenance is None else dict(provenance)
        if prov is not None:
            signers = [s.get("principal", "") for s in prov.get("signers", [])]
            run.set_config(
                sha256=prov["sha256"],
                signers=filter(None, signers),
                path=prov["path"],
                emergency=prov.get("emergency", ()),
            )
        # After offline mode is on, so a plugin that needs the network is refused.
        stream_plugins = load_stream_plugins(plugins)
        sys.setswitchinterval(0.001)  # keep input timestamps tight while threads encode
        stop = stop or threading.Event()

        def on_session(path: Path) -> None:
            if run.shared_out:
                run.scope_artifacts(path.name)
            run.log.info("capture.session_created", session=str(path))

        caught: list[int] = []
        with _stop_on_signals(stop, caught):
            result = run_capture(
                cfg,
                output_dir=run.out_dir,
                stop=stop,
                on_status=on_status,
                provenance=prov,
                run_id=run.run_id,
                budget=run.budget,
                on_session=on_session,
                on_ready=lambda info: run.mark_ready(**info),
                stream_plugins=stream_plugins,
            )
        summary = result.summary()
        run.set_extra(capture={**summary, "session": result.path.name})
        run.log.info("capture.finished", **summary)
        if settings.log_json:  # on a terminal the CLI prints these lines itself
            for name, why in result.failed_streams:
                run.log.warning("capture.stream_failed", stream=name, error=why)
        if on_finished is not None:
            on_finished(result)
        error = _session_error(result)
        if error is not None:
            raise error
        if caught:  # the session is finalized and kept; the run was interrupted
            raise Terminated(caught[0])
        if strict and result.failed_streams:
            names = ", ".join(name for name, _ in result.failed_streams)
            raise StreamFailedError(
                f"{len(result.failed_streams)} requested stream(s) failed: {names}",
                file=str(result.path),
                hint="the session was kept without them (--strict makes that exit 3)",
            )
    return result
