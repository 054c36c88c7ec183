"""Preflight: will a recording with this config work here, and if not, what to do.

``python -m capture doctor`` prints one line per check (``--json``: one JSON document) and exits
1 when a requested stream cannot work; every capture runs the same checks first and keeps them
in ``metadata.json`` (``preflight``). Checks: platform and backend, display server (Wayland
without XWayland refused), sandboxes (container, Flatpak, Snap, SSH session, no display), the
platform's permissions (macOS Screen Recording / Input Monitoring / Accessibility, Windows DPI
awareness and elevation mismatch), the target window, audio loopback sources, webcams, free
disk space against the expected bitrate, and the game-state stream's certificate.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from aiconfig import CaptureDeviceError

from .platforms import Check, check_display, open_backend, platform_name

__all__ = ["blocking", "expected_bytes_per_s", "preflight", "render"]

# x264 at crf ~23 on game footage: about 0.1 bit per pixel per frame (measured on the suite's
# recordings: 0.03-0.12); audio s16le at its rate; generous on purpose.
BITS_PER_PIXEL = 0.12
ONE_HOUR_S = 3600.0


def _split(exc: Exception) -> tuple[str, str | None]:
    text = str(exc)
    if ";" in text:
        head, fix = text.split(";", 1)
        return head.strip(), fix.strip()
    return text, None


def _sandbox() -> list[Check]:
    found: list[str] = []
    if Path("/.dockerenv").exists() or Path("/run/.containerenv").exists():
        found.append("container")
    else:
        try:
            cgroup = Path("/proc/1/cgroup").read_text(errors="replace")
        except OSError:
            cgroup = ""
        if any(word in cgroup for word in ("docker", "kubepods", "lxc", "containerd")):
            found.append("container")
    if os.environ.get("FLATPAK_ID") or Path("/.flatpak-info").exists():
        found.append("Flatpak")
    if os.environ.get("SNAP"):
        found.append("Snap")
    if os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_TTY"):
        found.append("SSH session")
    if not found:
        return [Check("sandbox", "ok", "no container, Flatpak, Snap or SSH session detected")]
    return [
        Check(
            "sandbox",
            "warn",
            f"running inside: {', '.join(found)}; the game's display, audio and input may be "
            "out of reach",
            "record on the machine and in the session where the game runs",
        )
    ]


def _display() -> Check:
    try:
        name = check_display()
    except CaptureDeviceError as exc:
        detail, fix = _split(exc)
        return Check("display", "fail", detail, fix, "screen")
    if platform_name() == "x11" and os.environ.get("WAYLAND_DISPLAY"):
        return Check(
            "display",
            "warn",
            f"Wayland session with XWayland ({name}): only X11 windows (the game under Wine/Proton "
            "is one) can be found and grabbed",
        )
    return Check("display", "ok", f"display {name}")


def _window(cfg: Any) -> tuple[Check, int | None]:
    try:
        backend = open_backend()
    except CaptureDeviceError as exc:
        detail, fix = _split(exc)
        return Check("window", "fail", detail, fix, "screen"), None
    try:
        info = backend.find(cfg.window_title)
    except Exception as exc:  # noqa: BLE001 - a lookup failing is a preflight finding
        info = None
        error: str | None = f"{type(exc).__name__}: {exc}"
    else:
        error = None
    finally:
        backend.close()
    if info is not None:
        r = info.rect
        return Check(
            "window",
            "ok",
            f"{cfg.window_title!r} found: {r.width}x{r.height} at ({r.left}, {r.top}) pixels",
            data={"handle": info.handle},
        ), info.handle
    if cfg.allow_any:
        return Check(
            "window",
            "warn",
            f"no window titled {cfg.window_title!r}; --allow-any records the primary monitor",
        ), None
    return Check(
        "window",
        "fail",
        f"no window titled {cfg.window_title!r} is open" + (f" ({error})" if error else ""),
        "start it first, or pass --allow-any to record the primary monitor (testing only)",
        "screen",
    ), None


def _audio(cfg: Any) -> Check:
    if not cfg.audio.enabled:
        return Check("audio", "skip", "audio not requested (--audio)")
    from ._audio_recorder import pick_monitor

    try:
        source, why = pick_monitor(cfg.audio.device)
    except CaptureDeviceError as exc:
        detail, fix = _split(exc)
        return Check("audio", "fail", detail, fix, "audio")
    return Check("audio", "ok", f"loopback {source!r} ({why})", data={"device": source})


def _webcam(cfg: Any) -> Check:
    if not cfg.webcam.enabled:
        return Check("webcam", "skip", "webcam not requested (--webcam)")
    device = cfg.webcam.device
    if isinstance(device, str) and device.startswith("lavfi:"):
        return Check("webcam", "ok", f"lavfi test source {device[len('lavfi:') :]!r}")
    from .platforms import webcam_input

    url, fmt = webcam_input(device)
    if fmt == "v4l2":
        if not Path(url).exists():
            present = sorted(str(p) for p in Path("/dev").glob("video*"))
            return Check(
                "webcam",
                "fail",
                f"{url} does not exist (cameras: {', '.join(present) or 'none'})",
                "plug the camera in or pick another --webcam-device",
                "webcam",
            )
        if not os.access(url, os.R_OK):
            return Check(
                "webcam",
                "fail",
                f"{url} is not readable by this user",
                "add the user to the 'video' group",
                "webcam",
            )
    return Check("webcam", "ok", f"{fmt} camera {url!r} (opened when the capture starts)")


def expected_bytes_per_s(cfg: Any, size: tuple[int, int]) -> float:
    w, h = size
    rate = float(w * h * cfg.fps * BITS_PER_PIXEL / 8)
    if cfg.webcam.enabled:
        cw, ch = cfg.webcam.resolution
        rate += cw * ch * cfg.webcam.fps * BITS_PER_PIXEL / 8
    if cfg.audio.enabled:
        rate += cfg.audio.sample_rate * cfg.audio.channels * 2
    return rate


def _disk(cfg: Any, out: Path, size: tuple[int, int]) -> Check:
    """Writable, and room for the session: refused below ``storage.min_free_minutes`` of the
    estimated rate (or below the whole ``--duration``); a warning below an hour otherwise."""
    from ._storage import check_writable, nearest_existing

    probe = nearest_existing(out)
    refused = check_writable(out)
    if refused is not None:
        return Check(
            "disk",
            "fail",
            f"{out}: cannot write there ({refused})",
            "choose a writable --out (a read-only or unmounted disk cannot hold a session)",
            "screen",
        )
    try:
        free = shutil.disk_usage(probe).free
    except OSError as exc:
        return Check("disk", "fail", f"{out}: {exc.strerror}", "choose another --out", "screen")
    rate = expected_bytes_per_s(cfg, size)
    per_minute = rate * 60
    seconds = cfg.duration_s if cfg.duration_s is not None else ONE_HOUR_S
    need = rate * seconds
    margin_min = float(cfg.storage.min_free_minutes)
    minutes_free = free / per_minute if per_minute > 0 else float("inf")
    what = f"{cfg.duration_s:g} s" if cfg.duration_s is not None else "an hour"
    data = {
        "free_bytes": free,
        "expected_bytes_per_s": round(rate),
        "expected_bytes_per_minute": round(per_minute),
        "minutes_free": round(minutes_free, 1),
        "min_free_minutes": margin_min,
        "for_seconds": seconds,
    }
    detail = (
        f"{free / 1e9:.2f} GB free at {probe}: about {minutes_free:.0f} min at "
        f"{per_minute / 1e6:.1f} MB/min ({rate * 8 / 1e6:.1f} Mbit/s); {what} needs "
        f"{need / 1e9:.2f} GB"
    )
    if margin_min > 0 and minutes_free < margin_min:
        return Check(
            "disk",
            "fail",
            detail + f", below the margin of {margin_min:g} min",
            "free some space, choose another --out, or lower --min-free-minutes "
            "(capture.storage.min_free_minutes; 0 only warns)",
            "screen",
            data,
        )
    if free < need:
        status = "fail" if cfg.duration_s is not None and margin_min > 0 else "warn"
        return Check(
            "disk",
            status,
            detail,
            "free some space or choose another --out",
            "screen" if status == "fail" else None,
            data,
        )
    return Check("disk", "ok", detail, data=data)


def _game_state(cfg: Any) -> Check:
    game = getattr(cfg, "game_state", None)
    if game is None or not game.enabled:
        return Check("game-state", "skip", "game-state stream off")
    from ._game_state import load_ca

    try:
        load_ca(game.ca_file)
    except CaptureDeviceError as exc:
        detail, fix = _split(exc)
        return Check("game-state", "fail", detail, fix, "game")
    return Check(
        "game-state",
        "ok",
        f"polls {game.url} at {game.poll_hz:g} Hz while a window is recorded, TLS verified "
        f"against {game.ca_file or 'the bundled Riot root certificate'}",
    )


def preflight(cfg: Any, out: Path | None = None, *, window: bool = True) -> list[Check]:
    """Every check for a recording of ``cfg`` into ``out`` (``cfg.output_dir``).

    ``window=False`` (a capture starting, which looks the window up itself right after) skips
    the window lookup."""
    name = platform_name()
    grab = {"x11": "mss (XShm)", "win32": "Windows Graphics Capture, else mss (GDI)"}.get(
        name, "ScreenCaptureKit, else mss (CoreGraphics)"
    )
    checks = [
        Check(
            "platform",
            "ok",
            f"{sys.platform}: backend capture.platforms.{name}; grabber {grab}",
            data={"platform": sys.platform, "backend": name},
        ),
        _display(),
        *_sandbox(),
    ]
    handle: int | None = None
    size = tuple(cfg.resolution)
    if checks[1].status != "fail":
        found, handle = _window(cfg) if window else (None, None)
        impl = importlib.import_module(f".platforms.{name}", __package__)
        try:
            checks.extend(impl.permission_checks(handle))
        except CaptureDeviceError as exc:
            detail, fix = _split(exc)
            checks.append(Check("permissions", "fail", detail, fix, "screen"))
        if found is not None:
            checks.append(found)
    checks += [_audio(cfg), _webcam(cfg)]
    checks.append(_disk(cfg, Path(out or cfg.output_dir), (int(size[0]), int(size[1]))))
    checks.append(_game_state(cfg))
    return checks


def blocking(checks: list[Check], streams: set[str]) -> list[Check]:
    """The failed checks that stop a requested stream."""
    return [c for c in checks if c.status == "fail" and c.stream in streams]


def render(checks: list[Check]) -> str:
    """One line per check; a failure or warning carries its fix."""
    lines = []
    for c in checks:
        line = f"{c.status:<4}  {c.name:<17} {c.detail}"
        if c.fix and c.status in ("fail", "warn"):
            line += f" -> {c.fix}"
        lines.append(line)
    return "\n".join(lines)
