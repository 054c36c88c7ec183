"""The recording command line shared by ``python -m capture`` and ``aiconfig capture``.

Flags, the ``CaptureConfig`` they override, the console (``q`` to stop, the live status line,
the closing summary) and :func:`record_from_args`, which calls the capture job
(:func:`capture._job.record_session`) once and formats what it returns. Only argparse and the
standard library at import time, so building a parser stays cheap.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiconfig import ConfigValidationError

if TYPE_CHECKING:
    from aiconfig import CaptureConfig

__all__ = [
    "FLAG_OF",
    "check_audio_report",
    "make_config",
    "overrides",
    "record_args",
    "record_from_args",
    "resolution",
    "status_line",
    "watch_keys",
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
        "--min-free-minutes",
        type=float,
        metavar="N",
        help="refuse to start with room for fewer minutes of recording (5; 0 only warns)",
    )
    parser.add_argument(
        "--fsync-interval",
        type=float,
        metavar="S",
        help="force the growing files to disk at least every S seconds (1; 0: never)",
    )
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

    parser.add_argument(
        "--no-game-state", action="store_true", help="do not poll League's Live Client Data API"
    )
    parser.add_argument(
        "--game-state-url",
        metavar="URL",
        help="Live Client Data API base (https://127.0.0.1:2999/liveclientdata/)",
    )
    parser.add_argument(
        "--game-state-ca",
        metavar="PEM",
        help="CA certificate the game's TLS certificate is verified against (Riot's root)",
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
    "game_state.enabled": "--no-game-state",
    "game_state.url": "--game-state-url",
    "game_state.ca_file": "--game-state-ca",
    "storage.min_free_minutes": "--min-free-minutes",
    "storage.fsync_interval_s": "--fsync-interval",
}


def check_audio_report(device: str | None, sample_rate: int = 44100) -> int:
    """``--check-audio`` in both entry points: the sources, the one a recording would use and
    why, and a 1 s level test; then exit (0, or a handled error: no monitor source)."""
    from ._audio_recorder import check_audio

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
    game: dict[str, Any] = {}
    if getattr(args, "no_game_state", False):
        game["enabled"] = False
    if getattr(args, "game_state_url", None) is not None:
        game["url"] = args.game_state_url
    if getattr(args, "game_state_ca", None) is not None:
        game["ca_file"] = args.game_state_ca
    if game:
        out["game_state"] = game
    storage: dict[str, Any] = {}
    if getattr(args, "min_free_minutes", None) is not None:
        storage["min_free_minutes"] = args.min_free_minutes
    if getattr(args, "fsync_interval", None) is not None:
        storage["fsync_interval_s"] = args.fsync_interval
    if storage:
        out["storage"] = storage
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def make_config(base: CaptureConfig | None, over: dict[str, Any]) -> CaptureConfig:
    """A new CaptureConfig: ``base`` (or the defaults) with ``over`` applied."""
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
def watch_keys(stop: threading.Event) -> Iterator[None]:
    """On a terminal, 'q' sets ``stop`` (cbreak mode: no Enter needed); a no-op elsewhere.

    Ctrl+C and SIGTERM are the job's: they stop the recording (:func:`capture._job`).
    """
    if sys.stdin is None or not sys.stdin.isatty():
        yield
        return
    done = threading.Event()
    if sys.platform == "win32":  # no termios: the console's own key queue
        import msvcrt

        def watch_console() -> None:
            while not done.wait(0.2):
                while msvcrt.kbhit():
                    if msvcrt.getwch() in ("q", "Q"):
                        stop.set()

        console = threading.Thread(target=watch_console, name="capture-keys", daemon=True)
        console.start()
        try:
            yield
        finally:
            done.set()
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def watch() -> None:
        while not done.is_set():
            try:
                ready, _, _ = select.select([sys.stdin], [], [], 0.2)
            except (OSError, ValueError):
                return
            if ready:
                char = os.read(fd, 1)
                if not char:
                    return
                if char in (b"q", b"Q"):
                    stop.set()

    watcher = threading.Thread(target=watch, name="capture-keys", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def status_line(status: Any) -> str:
    streams = " ".join(f"{k}:{v}" for k, v in status.streams.items())
    return (
        f"\r[capture] {status.elapsed_s:7.1f}s  frames {status.frames}  {status.fps:5.1f} fps  "
        f"padded {status.padded}  dropped {status.dropped}  inputs {status.inputs}  {streams} "
    )


def _print_summary(result: Any, *, quiet: bool) -> None:
    summary = result.summary()
    if not quiet:
        sys.stderr.write("\n")
    failed = summary["failed_streams"]
    sys.stderr.write(
        f"[capture] {summary['frames']} frames, padded {summary['padded']}, dropped "
        f"{summary['dropped']}, stop: {summary['stop_reason']}, valid: {summary['valid']}"
        + (f", failed streams: {', '.join(failed)}" if failed else "")
        + "\n"
    )
    # One line per requested stream that failed, whatever --quiet says: a session without the
    # audio or webcam that was asked for must never look like a complete one.
    for name, error in result.failed_streams:
        sys.stderr.write(f"warning: requested stream {name} failed: {error}\n")
    sys.stdout.write(f"{result.path}\n")
    sys.stdout.flush()


def record_from_args(
    cfg: CaptureConfig,
    args: argparse.Namespace,
    *,
    provenance: Mapping[str, Any] | None = None,
) -> int:
    """Record one session with the run flags in ``args``; print its path (exit status 0).

    Settings are resolved first (bad ``--run-id``/``AP_*`` values are refused before anything
    opens). Without ``--quiet``/``--log-json`` a status line is kept up to date on stderr; the
    session path goes to stdout (with ``--log-json``, the ``capture.finished`` log event).
    """
    from aiconfig.harness.settings import resolve_settings

    from ._job import record_session

    settings = resolve_settings(args, "capture", default_out=Path(cfg.output_dir))
    quiet = bool(args.quiet or settings.log_json)

    def on_status(status: Any) -> None:
        sys.stderr.write(status_line(status))
        sys.stderr.flush()

    stop = threading.Event()
    with watch_keys(stop):
        record_session(
            cfg,
            settings,
            plugins=args.plugin or (),
            provenance=provenance,
            stop=stop,
            strict=bool(getattr(args, "strict", False)),
            on_status=None if quiet else on_status,
            on_finished=None
            if settings.log_json
            else lambda result: _print_summary(result, quiet=quiet),
        )
    return 0
