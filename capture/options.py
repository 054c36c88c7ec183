"""Recording flags and console plumbing shared by ``python -m capture`` and ``aiconfig capture``.

Only argparse and the standard library at import time, so building a parser stays cheap.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from aiconfig import ConfigValidationError

__all__ = [
    "FLAG_OF",
    "capture_devices",
    "check_audio_report",
    "failed_streams",
    "keyboard_stop",
    "make_config",
    "overrides",
    "record",
    "record_args",
    "resolution",
]


def resolution(text: str) -> tuple[int, int]:
    try:
        w, h = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT such as 1280x720, got {text!r}"
        ) from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"resolution must be positive, got {text!r}")
    return w, h


def record_args(parser: argparse.ArgumentParser) -> None:
    """The seed's recording flags (shared with ``aiconfig capture``); defaults are None.

    ``--out`` and the other run flags come from :func:`aiconfig.harness.add_run_arguments`.
    """
    parser.add_argument("--duration", type=float, metavar="N", help="seconds to capture (∞)")
    parser.add_argument("--fps", type=int, metavar="N", help="target frame rate (30)")
    parser.add_argument(
        "--allow-any",
        action="store_true",
        default=None,
        help="record the primary monitor when the window is absent (testing)",
    )
    parser.add_argument(
        "--window-title",
        metavar="TITLE",
        help="exact title of the window to record ('League of Legends')",
    )
    parser.add_argument("--webcam", action="store_true", default=None, help="enable webcam")
    parser.add_argument("--webcam-device", metavar="N", help="camera device (0)")
    parser.add_argument(
        "--webcam-resolution", type=resolution, metavar="WxH", help="camera resolution (640x480)"
    )
    parser.add_argument("--audio", action="store_true", default=None, help="enable system audio")
    parser.add_argument(
        "--audio-device", metavar="SOURCE", help="monitor source (default: the default sink's)"
    )
    parser.add_argument(
        "--check-audio", action="store_true", help="list audio sources, test 1 s, and exit"
    )
    parser.add_argument(
        "--preset",
        choices=["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"],
        help="x264 preset (superfast)",
    )
    parser.add_argument("--crf", type=int, metavar="N", help="x264 quality, 0-51 (23)")
    parser.add_argument("--no-input", action="store_true", help="do not log keyboard/mouse")
    parser.add_argument(
        "--plugin",
        action="append",
        metavar="NAME",
        help="also record this stream plugin (entry point in group aiconfig.plugins; repeatable)",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no live status line (the end summary and failed streams are still printed)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 3 (manifest status 'failed') when a requested stream failed; without it a "
        "failed stream degrades the session alone and the exit status is 0",
    )


# The recording flag that sets each CaptureConfig field (for messages and help).
FLAG_OF = {
    "duration_s": "--duration",
    "fps": "--fps",
    "allow_any": "--allow-any",
    "window_title": "--window-title",
    "preset": "--preset",
    "crf": "--crf",
    "webcam.enabled": "--webcam",
    "webcam.device": "--webcam-device",
    "webcam.resolution": "--webcam-resolution",
    "audio.enabled": "--audio",
    "audio.device": "--audio-device",
    "input.enabled": "--no-input",
}


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """CaptureConfig fields set on the command line."""
    out: dict[str, Any] = {}
    pairs = {
        "duration": "duration_s",
        "fps": "fps",
        "allow_any": "allow_any",
        "window_title": "window_title",
        "preset": "preset",
        "crf": "crf",
    }
    for arg, field in pairs.items():
        value = getattr(args, arg, None)
        if value is not None:
            out[field] = value
    webcam: dict[str, Any] = {}
    if args.webcam:
        webcam["enabled"] = True
    if args.webcam_device is not None:
        webcam["device"] = (
            int(args.webcam_device) if args.webcam_device.isdigit() else (args.webcam_device)
        )
    if args.webcam_resolution is not None:
        webcam["resolution"] = args.webcam_resolution
    if webcam:
        out["webcam"] = webcam
    audio: dict[str, Any] = {}
    if args.audio:
        audio["enabled"] = True
    if getattr(args, "audio_device", None) is not None:
        audio["device"] = args.audio_device
    if audio:
        out["audio"] = audio
    if args.no_input:
        out["input"] = {"enabled": False}
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def make_config(base: Any, over: dict[str, Any]) -> Any:
    """A new CaptureConfig: ``base`` (a CaptureConfig or None) with ``over`` applied."""
    from pydantic import ValidationError

    from aiconfig import CaptureConfig

    data = base.model_dump() if base is not None else {}
    try:
        return CaptureConfig.model_validate(_merge(data, over))
    except ValidationError as exc:
        from aiconfig._explain import translate

        raise ConfigValidationError(
            translate(
                exc,
                _merge(data, over),
                root=CaptureConfig,
                prefix=("capture",),
                default_source=None,
                hint="fix the flag or the config value",
            )
        ) from None


@contextlib.contextmanager
def keyboard_stop(stop: threading.Event) -> Iterator[None]:
    """Ctrl+C / SIGTERM set ``stop``; so does 'q' + Enter (or 'q' alone on a terminal)."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    for sig in previous:
        signal.signal(sig, handler)
    restore_tty: Any = None
    if sys.stdin is not None and sys.stdin.isatty():
        import termios
        import tty

        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)

        def restore() -> None:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)

        restore_tty = restore

    def watch() -> None:
        while not stop.is_set():
            try:
                ready, _, _ = select.select([sys.stdin], [], [], 0.2)
            except (OSError, ValueError):
                return
            if ready:
                char = os.read(sys.stdin.fileno(), 1)
                if not char:
                    return
                if char in (b"q", b"Q"):
                    stop.set()

    watcher = None
    if sys.stdin is not None and restore_tty is not None:
        watcher = threading.Thread(target=watch, name="capture-keys", daemon=True)
        watcher.start()
    try:
        yield
    finally:
        stop.set()
        if restore_tty is not None:
            restore_tty()
        for sig, old in previous.items():
            signal.signal(sig, old)


def check_audio_report(device: str | None, sample_rate: int = 44100) -> int:
    """``--check-audio`` in both entry points: the sources, the one a recording would use and
    why, and a 1 s level test; then exit (0, or a handled error: no monitor source)."""
    from .audio_recorder import check_audio

    report = check_audio(device, sample_rate=sample_rate)
    lines = []
    for source in report["sources"]:
        kind = "monitor" if source["monitor"] else "NOT a monitor (never used)"
        lines.append(f"  {source['name']}: {kind}")
    level = report["rms_dbfs"]
    lines.append(f"would record {report['selected']!r}: {report['why']}")
    lines.append(
        f"1 s test: level {'silence' if level is None else f'{level} dBFS'}, peak {report['peak']}"
        + ("; play something to hear it" if level is None or level < -60 else "")
    )
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return 0


def failed_streams(metadata: dict[str, Any]) -> list[tuple[str, str]]:
    """``(stream, error)`` for every stream the session asked for that failed (``off`` streams
    were not asked for), in metadata order: screen, input, webcam, audio, then plugins."""
    out = []
    for name, info in (metadata.get("streams") or {}).items():
        if isinstance(info, dict) and info.get("status") == "failed":
            error = info.get("error") or (info.get("errors") and f"{info['errors']} grab errors")
            lines = [line.strip() for line in str(error or "failed").splitlines()]
            out.append((name, "; ".join(line for line in lines if line)))
    return out


def status_line(status: Any) -> str:
    streams = " ".join(f"{k}:{v}" for k, v in status.streams.items())
    return (
        f"\r[capture] {status.elapsed_s:7.1f}s  frames {status.frames}  {status.fps:5.1f} fps  "
        f"padded {status.padded}  dropped {status.dropped}  inputs {status.inputs}  {streams} "
    )


def capture_devices(cfg: Any) -> tuple[str, ...]:
    """The devices a session of ``cfg`` opens, each taken under an exclusive run lock."""
    devices = ["screen"]
    if cfg.input.enabled:
        devices.append("input")
    if cfg.audio.enabled:
        devices.append("audio")
    if cfg.webcam.enabled:
        devices.append("webcam")
    return tuple(devices)


def record(
    cfg: Any,
    args: argparse.Namespace,
    *,
    provenance: dict[str, Any] | None = None,
) -> int:
    """Record one session as a run (:class:`~aiconfig.harness.context.RunContext`).

    The run's settings (``--run-id``, ``--out``, ``--ready-file``, ``--lock-dir``, budgets,
    ``--no-network``, ``--log-json``; or their ``AP_*`` variables) are checked before anything
    opens. Sessions go under the run's output directory (``cfg.output_dir`` by default), the
    devices are locked, the ready file is written once every stream records, and the run
    manifest is written last. Prints the session path (a log event with ``--log-json``).
    """
    from pathlib import Path

    from aiconfig import SessionError, StreamFailedError
    from aiconfig.harness.context import RunContext
    from aiconfig.harness.settings import resolve_settings

    from .plugin_streams import load_stream_plugins

    settings = resolve_settings(args, "capture", default_out=Path(cfg.output_dir))
    quiet = bool(args.quiet or settings.log_json)
    # Without a run id from an orchestrator this is a person recording into a directory that
    # collects sessions: the run manifest there lists this run's session only.
    standalone = settings.sources.get("run_id") == "generated"
    ctx = RunContext(
        settings, devices=capture_devices(cfg), preload=_PRELOAD, shared_out=standalone
    )
    with ctx as run:
        from .session import run_capture

        if provenance is not None:
            signers = [s.get("principal", "") for s in provenance.get("signers", [])]
            run.set_config(
                sha256=provenance["sha256"], signers=filter(None, signers), path=provenance["path"]
            )
        # After offline mode is on, so a plugin that needs the network is refused.
        plugins = load_stream_plugins(args.plugin or ())
        sys.setswitchinterval(0.001)  # keep input timestamps tight while threads encode
        stop = threading.Event()

        def on_status(status: Any) -> None:
            if not quiet:
                sys.stderr.write(status_line(status))
                sys.stderr.flush()

        def on_session(path: Path) -> None:
            if run.shared_out:
                run.scope_artifacts(path.name)
            run.log.info("capture.session_created", session=str(path))

        with keyboard_stop(stop):
            result = run_capture(
                cfg,
                output_dir=run.out_dir,
                stop=stop,
                on_status=on_status,
                provenance=provenance,
                run_id=run.run_id,
                budget=run.budget,
                on_session=on_session,
                on_ready=lambda info: run.mark_ready(**info),
                stream_plugins=plugins,
            )
        meta = result.metadata
        summary = {
            "session": str(result.path),
            "frames": meta["frame_count"],
            "padded": meta["padded_frames"],
            "dropped": meta["dropped_frames"],
            "stop_reason": meta.get("stop_reason"),
            "valid": result.ok,
        }
        failed = failed_streams(meta)
        summary["failed_streams"] = [name for name, _ in failed]
        run.set_extra(capture={**summary, "session": result.path.name})
        run.log.info("capture.finished", **summary)
        # One line per requested stream that failed, whatever --quiet says: a session without
        # the audio or webcam that was asked for must never look like a complete one.
        if settings.log_json:
            for name, error in failed:
                run.log.warning("capture.stream_failed", stream=name, error=error)
        else:
            if not quiet:
                sys.stderr.write("\n")
            sys.stderr.write(
                f"[capture] {summary['frames']} frames, padded {summary['padded']}, dropped "
                f"{summary['dropped']}, stop: {summary['stop_reason']}, valid: {result.ok}"
                + (f", failed streams: {', '.join(summary['failed_streams'])}" if failed else "")
                + "\n"
            )
            for name, error in failed:
                sys.stderr.write(f"warning: requested stream {name} failed: {error}\n")
            sys.stdout.write(f"{result.path}\n")
            sys.stdout.flush()
        reason = str(meta.get("stop_reason") or "")
        if reason.startswith("error"):
            raise SessionError(f"{reason}; the session was kept", file=str(result.path))
        if not result.ok:
            problems = meta.get("validation", {}).get("problems") or ["see metadata.json"]
            raise SessionError(
                f"the session is not valid: {problems[0]}",
                file=str(result.path),
                hint="the session was kept; run 'python -m capture validate' on it",
            )
        if failed and getattr(args, "strict", False):
            raise StreamFailedError(
                f"{len(failed)} requested stream(s) failed: {', '.join(n for n, _ in failed)}",
                file=str(result.path),
                hint="the session was kept without them (--strict makes that exit 3)",
            )
    return 0


# Loaded on entering the run, under its thread and allocator settings, before the memory limit.
_PRELOAD = ("numpy", "cv2", "av", "pyarrow", "mss")
