"""Which recorded input drives which model action: names, the League default, validation.

The config states the mapping as ``model.action_map`` (input name -> action name in
``model.action_space``) and the key vocabulary of the multi-hot key vector as
``model.key_vocabulary``. Input names are the recorder's, lower-cased:

* a key: one character (``q``, ``1``, ``/``) or a special key by pynput's name (``space``,
  ``tab``, ``shift``, ``shift_r``, ``f1`` ... ``f20``, ``up`` ...);
* a mouse button: ``mouse_left``, ``mouse_right``, ``mouse_middle``.

This module is part of the config core: it imports nothing from the session or job packages.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

__all__ = [
    "LEAGUE_ACTION_MAP",
    "LEAGUE_KEY_VOCABULARY",
    "MOUSE_BUTTONS",
    "SPECIAL_KEYS",
    "InputActionMap",
    "InputKey",
    "check_action_map",
    "check_input_name",
    "resolve_action_map",
]

MOUSE_BUTTONS: Final = ("left", "right", "middle")
"""Mouse buttons as the recorder names them (``mouse_button`` column); inputs ``mouse_<name>``."""

SPECIAL_KEYS: Final = frozenset(
    {
        "alt", "alt_r", "alt_gr", "backspace", "caps_lock", "cmd", "cmd_r", "ctrl", "ctrl_r",
        "delete", "down", "end", "enter", "esc", "home", "insert", "left", "menu", "num_lock",
        "page_down", "page_up", "pause", "print_screen", "right", "scroll_lock", "shift",
        "shift_r", "space", "tab", "up",
        *(f"f{i}" for i in range(1, 21)),
    }
)  # fmt: skip
"""pynput's ``Key`` names (``Key.space`` is ``space``); ``*_l`` variants are the plain name."""

LEAGUE_KEY_VOCABULARY: Final = (
    "q", "w", "e", "r", "d", "f", "a", "s", "b", "p", "tab", "space",
    "1", "2", "3", "4", "5", "6", "7", "shift", "ctrl", "alt",
)  # fmt: skip
"""League of Legends: abilities, summoners, attack-move, stop, recall, shop, scoreboard, camera,
items 1-7 and the modifiers (self-cast, level-up, ...)."""

LEAGUE_ACTION_MAP: Final[Mapping[str, str]] = MappingProxyType(
    {
        "mouse_right": "move",  # right-click moves (and attacks what is under the cursor)
        "a": "attack",  # attack-move
        "q": "q",
        "w": "w",
        "e": "e",
        "r": "r",
        "d": "d",
        "f": "f",
    }
)
"""The default ``model.action_map`` for League's default action space."""


def check_input_name(name: str) -> str | None:
    """Why ``name`` is not an input name, or None when it is."""
    if name.startswith("mouse_"):
        if name[6:] in MOUSE_BUTTONS:
            return None
        return f"unknown mouse button {name!r}; use one of " + ", ".join(
            f"mouse_{b}" for b in MOUSE_BUTTONS
        )
    if len(name) == 1 and name.isprintable() and not name.isspace() and name == name.lower():
        return None
    if name in SPECIAL_KEYS:
        return None
    hint = difflib.get_close_matches(name, [*SPECIAL_KEYS, *(f"mouse_{b}" for b in MOUSE_BUTTONS)])
    suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
    return (
        f"unknown input {name!r}: a key is one lower-case character or a key name "
        f"(space, tab, shift, f1, ...), a button is mouse_left/mouse_right/mouse_middle"
        f"{suggestion}"
    )


def _input_key(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9:
        return str(value)  # YAML reads a bare 1 as an int
    return value


def _valid_input(name: str) -> str:
    problem = check_input_name(name)
    if problem is not None:
        raise ValueError(problem)
    return name


InputKey = Annotated[str, BeforeValidator(_input_key), AfterValidator(_valid_input)]
"""One input name (see the module docstring)."""


def _freeze(value: dict[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


InputActionMap = Annotated[
    dict[InputKey, str],
    AfterValidator(_freeze),
    PlainSerializer(dict, return_type=dict),
]


def check_action_map(
    action_map: Mapping[str, str] | None, action_space: tuple[str, ...]
) -> Mapping[str, str] | None:
    """``action_map`` unchanged when every action it names is in ``action_space`` and, for an
    explicit map, every action is driven by some input; ``ValueError`` naming the entry and
    the fix otherwise."""
    resolved = resolve_action_map(action_map, action_space)
    problems = []
    for inp, action in resolved.items():
        if action not in action_space:
            close = difflib.get_close_matches(action, action_space, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append(
                f"{inp!r} maps to {action!r}, which is not in model.action_space "
                f"[{', '.join(action_space)}]; {hint}fix the name or add it to model.action_space"
            )
    unmapped = [a for a in action_space if a not in set(resolved.values())]
    # Only an explicit map must drive every action: with the default map, action_space may
    # also name a model's outputs (inference) that no recorded input drives.
    if unmapped and action_map is not None:
        where = "model.action_map"
        problems.append(
            f"no input in {where} drives {', '.join(map(repr, unmapped))} (it would always be "
            f"0); set model.action_map, e.g. {{{unmapped[0]}: {unmapped[0]}}}"
        )
    if problems:
        raise ValueError("; ".join(problems))
    return action_map


def resolve_action_map(
    action_map: Mapping[str, str] | None, action_space: tuple[str, ...]
) -> Mapping[str, str]:
    """``action_map``, or :data:`LEAGUE_ACTION_MAP` limited to ``action_space`` when unset."""
    if action_map is not None:
        return action_map
    return MappingProxyType({k: v for k, v in LEAGUE_ACTION_MAP.items() if v in action_space})
