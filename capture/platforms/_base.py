"""What every platform backend provides (the seam), and the value types it speaks.

No platform library is imported here: this module is safe everywhere, and the backends
(:mod:`.x11`, :mod:`.win32`, :mod:`.darwin`) import only what their own OS has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "AccessDeniedError",
    "Check",
    "Grabber",
    "InputHooks",
    "Rect",
    "WindowBackend",
    "WindowGoneError",
    "WindowInfo",
    "unwrap_ms",
]


@dataclass(frozen=True, slots=True)
class Rect:
    """A screen area in physical pixels (never points or DPI-scaled units)."""

    left: int
    top: int
    width: int
    height: int

    def as_mss(self) -> dict[str, int]:
        return {"left": self.left, "top": self.top, "width": self.width, "height": self.height}

    def clamp_into(self, outer: Rect) -> Rect:
        """Same size, moved (not shrunk) so it lies inside ``outer`` where possible."""
        width = min(self.width, outer.width)
        height = min(self.height, outer.height)
        left = min(max(self.left, outer.left), outer.left + outer.width - width)
        top = min(max(self.top, outer.top), outer.top + outer.height - height)
        return Rect(left, top, width, height)


@dataclass(frozen=True, slots=True)
class WindowInfo:
    handle: int
    title: str
    rect: Rect


class WindowGoneError(Exception):
    """The target window was closed (or destroyed) while being followed."""


class AccessDeniedError(Exception):
    """The OS refused to tell us about a window (permission, elevation, sandbox)."""


@dataclass(frozen=True, slots=True)
class Check:
    """One preflight line: ``status`` is ``ok``, ``warn``, ``fail`` or ``skip``."""

    name: str
    status: str
    detail: str
    fix: str | None = None
    stream: str | None = None  # the stream that cannot work when this check fails
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:  # one line each, whatever a tool printed
        object.__setattr__(self, "detail", " ".join(self.detail.split()))
        if self.fix is not None:
            object.__setattr__(self, "fix", " ".join(self.fix.split()))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"check": self.name, "status": self.status, "detail": self.detail}
        if self.fix is not None:
            out["fix"] = self.fix
        if self.stream is not None:
            out["stream"] = self.stream
        if self.data:
            out["data"] = dict(self.data)
        return out


class Grabber(Protocol):
    """Pixels of a screen area, BGRA, ``rect.width * rect.height * 4`` bytes.

    ``grab`` returns ``None`` when the source has no new picture since the last call
    (Windows Graphics Capture and ScreenCaptureKit deliver frames only on change): the
    timeline then repeats the previous picture in that slot.
    """

    name: str

    def grab(self, rect: Rect) -> bytes | memoryview | None: ...
    def close(self) -> None: ...


class InputHooks(Protocol):
    """How pynput's listeners are built on this platform and how their own event times
    (X server time, a hook's ``time`` field, a CGEvent timestamp) map to the recorder's clock.

    ``keyed``: the event time is looked up by the event's key (the virtual key, the pointer
    position: Windows hooks stamp in a filter apart from the callback), not per thread."""

    keyed: bool

    def listener_options(self) -> dict[str, Any]: ...
    def wrap(self, listener_cls: Any) -> Any: ...
    def event_time_ns(self, now_ns: int | None = None, key: Any = None) -> int: ...
    def to_pixels(self, x: float, y: float) -> tuple[float, float]: ...


class WindowBackend(Protocol):
    """Window lookup by exact title, geometry in physical pixels, focus."""

    def find(self, title: str) -> WindowInfo | None: ...
    def geometry(self, handle: int) -> Rect: ...
    def has_focus(self, handle: int) -> bool: ...
    def screen(self) -> Rect: ...
    def close(self) -> None: ...


def unwrap_ms(now_ns: int, event_ms: int, *, bits: int = 32, period_ms: int = 1) -> int | None:
    """An OS event time in whole (wrapping) milliseconds on the recorder's clock, as the latest
    instant it can stand for (the end of its tick), or ``None`` when it cannot be this clock's.

    ``event_ms`` counts milliseconds on the same clock as ``now_ns`` (X servers stamp with
    CLOCK_MONOTONIC; a Windows hook's ``time`` is the tick count, mapped by the caller) and
    wraps at ``2**bits``. The event happened before ``now_ns``; a value more than a second
    before it does not belong to this clock.
    """
    ms = 1_000_000
    now_ms = now_ns // ms
    full_ms = now_ms - ((now_ms - int(event_ms)) & ((1 << bits) - 1))
    if now_ms - full_ms > 1000:
        return None
    return min(now_ns, (full_ms + period_ms) * ms - 1)


EventTimer = Callable[[int | None, Any], int]
