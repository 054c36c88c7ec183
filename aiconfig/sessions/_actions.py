"""From a session's input rows to one action per frame (numpy, imported when called).

Frame ``i`` owns the input rows whose ``frame_ref`` is ``i`` (the frame on screen when the
input happened; the recorder guarantees it). Per frame:

* ``keys`` (multi-hot over ``model.key_vocabulary``) and ``buttons`` (left, right, middle):
  **held during the frame**: down when the frame began, or pressed while it was on screen. A tap
  shorter than a frame is in exactly that frame; a key held across frames is in each of them.
* ``action`` (multi-hot over ``model.action_space``): an action is 1 when any input that
  ``model.action_map`` maps to it is held during the frame.
* ``mouse`` ``(x, y)``: the pointer at the end of the frame (the last row with coordinates at or
  before it), divided by the window's width and height (the video's pixels) and clipped to
  [0, 1]; ``mouse_known`` is False (and ``mouse`` 0.5, 0.5) before the session's first such row.
* ``scroll``: the sum of the vertical scroll deltas of the frame's rows.
* ``state_keys``/``state_buttons``: what was held when the frame began (what a policy sees
  before it acts).

Rows with a ``frame_ref`` outside ``0..frame_count-1`` make the session invalid (the validator
says so); :func:`bin_actions` refuses them rather than guess a label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._actions import MOUSE_BUTTONS
from .._errors import SessionError
from ._format import row_meta
from ._session import Session

__all__ = ["ActionSpec", "FrameActions", "bin_actions", "input_name"]

_ALIASES = {"shift_l": "shift", "ctrl_l": "ctrl", "alt_l": "alt", "cmd_l": "cmd"}


@dataclass(frozen=True)
class ActionSpec:
    """What an action vector holds: the config's action space, key vocabulary and input map."""

    action_space: tuple[str, ...]
    key_vocabulary: tuple[str, ...]
    action_map: Mapping[str, str]

    @classmethod
    def from_model(cls, model: Any) -> ActionSpec:
        """From a ``ModelConfig`` (``cfg.model``)."""
        return cls(
            tuple(model.action_space),
            tuple(model.key_vocabulary),
            dict(model.resolved_action_map()),
        )

    @property
    def buttons(self) -> tuple[str, ...]:
        return MOUSE_BUTTONS

    def names(self) -> dict[str, list[str]]:
        return {
            "action": list(self.action_space),
            "keys": list(self.key_vocabulary),
            "buttons": list(self.buttons),
            "mouse": ["x", "y"],
        }


@dataclass(frozen=True)
class FrameActions:
    """Per-frame arrays of one session (row ``i`` = frame ``i``)."""

    action: Any  # uint8 [n, A]
    keys: Any  # uint8 [n, V]
    buttons: Any  # uint8 [n, 3]
    mouse: Any  # float32 [n, 2]
    mouse_known: Any  # bool [n]
    scroll: Any  # float32 [n]
    state_keys: Any  # uint8 [n, V]
    state_buttons: Any  # uint8 [n, 3]

    def __len__(self) -> int:
        return int(self.action.shape[0])

    def sample(self, i: int) -> dict[str, Any]:
        """Frame ``i``'s arrays (numpy) by name."""
        return {
            "action": self.action[i],
            "keys": self.keys[i],
            "buttons": self.buttons[i],
            "mouse": self.mouse[i],
            "mouse_known": bool(self.mouse_known[i]),
            "scroll": float(self.scroll[i]),
        }


def input_name(event_type: str, key_code: Any, button: Any, metadata: Any) -> str | None:
    """The config's name for the input of one row (``q``, ``space``, ``mouse_right``)."""
    if event_type.startswith("mouse_"):
        return f"mouse_{button}" if button else None
    name = row_meta(metadata).get("key")
    if not name and key_code is not None and 32 < int(key_code) < 127:
        name = chr(int(key_code))
    if not isinstance(name, str) or not name:
        return None
    if name.startswith("Key."):
        name = name[4:]
        return _ALIASES.get(name, name)
    return name.lower() if len(name) == 1 else name


def _held(n: int, frames: Any, down: Any) -> tuple[Any, Any]:
    """(held during frame, down when the frame began) for one input's press/release rows."""
    import numpy as np

    end_state = np.zeros(n, dtype=bool)
    if len(frames):
        last = np.searchsorted(frames, np.arange(n), side="right") - 1
        end_state = np.where(last >= 0, down[np.clip(last, 0, None)], False)
    start = np.concatenate([[False], end_state[:-1]]) if n else end_state
    pressed = np.zeros(n, dtype=bool)
    pressed[frames[down]] = True
    return start | pressed, start


def bin_actions(
    session: Session, spec: ActionSpec, *, frame_count: int | None = None, events: Any = None
) -> FrameActions:
    """One action per frame of ``session`` (see the module docstring); ``events``: its
    :meth:`~Session.events` table when already read (else it is read here)."""
    import numpy as np

    n = session.frame_count if frame_count is None else frame_count
    table = session.inputs(events=events)
    cols = table.select(
        [
            "event_type",
            "key_code",
            "mouse_x",
            "mouse_y",
            "mouse_button",
            "delta",
            "frame_ref",
            "t_ns",
        ]
    ).to_pydict()
    refs = cols["frame_ref"]
    bad = [r for r in refs if r is None or not 0 <= r < n]
    if bad:
        raise SessionError(
            f"{len(bad)} input rows have a frame_ref outside 0..{n - 1} (first: {bad[0]})",
            file=str(session.events_path),
            path="frame_ref",
            hint="the session is invalid; re-record it or drop it from the dataset",
        )
    order = sorted(range(len(refs)), key=lambda j: (refs[j], cols["t_ns"][j] or 0))
    per_input: dict[str, tuple[list[int], list[bool]]] = {}
    mouse_frames: list[int] = []
    mouse_xy: list[tuple[float, float]] = []
    scroll = np.zeros(n, dtype=np.float32)
    meta = table.column("metadata").to_pylist()
    for j in order:
        kind, ref = cols["event_type"][j], refs[j]
        if cols["mouse_x"][j] is not None and cols["mouse_y"][j] is not None:
            mouse_frames.append(ref)
            mouse_xy.append((cols["mouse_x"][j], cols["mouse_y"][j]))
        if kind == "mouse_scroll":
            scroll[ref] += float(cols["delta"][j] or 0.0)
            continue
        if kind not in ("key_press", "key_release", "mouse_press", "mouse_release"):
            continue
        name = input_name(kind, cols["key_code"][j], cols["mouse_button"][j], meta[j])
        if name is None:
            continue
        f, d = per_input.setdefault(name, ([], []))
        f.append(ref)
        d.append(kind.endswith("_press"))

    def held(names: Sequence[str]) -> tuple[Any, Any]:
        during = np.zeros((n, len(names)), dtype=np.uint8)
        start = np.zeros((n, len(names)), dtype=np.uint8)
        for c, name in enumerate(names):
            if name in per_input:
                f, d = per_input[name]
                h, s = _held(n, np.asarray(f, dtype=np.int64), np.asarray(d, dtype=bool))
                during[:, c], start[:, c] = h, s
        return during, start

    keys, state_keys = held(spec.key_vocabulary)
    buttons, state_buttons = held([f"mouse_{b}" for b in spec.buttons])
    mapped = list(spec.action_map)
    inputs_held, _ = held(mapped)
    action = np.zeros((n, len(spec.action_space)), dtype=np.uint8)
    for c, name in enumerate(mapped):
        a = spec.action_space.index(spec.action_map[name])
        action[:, a] |= inputs_held[:, c]

    mouse = np.full((n, 2), 0.5, dtype=np.float32)
    known = np.zeros(n, dtype=bool)
    if mouse_frames:
        w, h = session.resolution
        mf = np.asarray(mouse_frames, dtype=np.int64)
        xy = np.asarray(mouse_xy, dtype=np.float64) / np.array([max(w, 1), max(h, 1)])
        last = np.searchsorted(mf, np.arange(n), side="right") - 1
        known = last >= 0
        mouse[known] = np.clip(xy[last[known]], 0.0, 1.0).astype(np.float32)
    return FrameActions(action, keys, buttons, mouse, known, scroll, state_keys, state_buttons)
