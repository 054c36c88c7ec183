"""Key paths: the one way a place in a config is named, parsed and printed.

``training.optimizer.lr``, ``model.action_space[2]`` (a list item), and
``monitoring.latency_thresholds_ms."Qwen/Qwen2.5-0.5B-Instruct"`` (a map key holding a dot is
quoted). Every message, diff and provenance record renders paths this way.

A :class:`KeyPath` is a tuple of its parts (``str`` keys, ``int`` list indexes), so it is
immutable, hashable, and equal to the plain tuple of the same parts: the YAML reader keys its
line numbers by plain tuples (cheap on the hot path) and a ``KeyPath`` looks them up directly.
This module is a leaf (standard library only). Whether a config path is secret is the schema's
call (:func:`aiconfig._schema.is_secret_path`), never a matter of the key's name;
:func:`is_secret_key` judges the names of environment variables, which have no schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import SupportsIndex, overload

__all__ = ["KeyPath", "Parts", "is_secret_key"]

Parts = tuple[str | int, ...]
"""The raw parts of a key path, as the YAML reader and the data walkers build them."""

_SECRET_RE = re.compile(
    r"token|secret|passw|passphrase|api_?key|credential|webhook|private_?key", re.I
)
_SECRET_WORDS = frozenset({"pass", "pwd", "auth", "authorization", "dsn"})
_NEEDS_QUOTES = re.compile(r'[.\s\[\]"]')
_INDEX = re.compile(r"\[(\d+)\]")


def is_secret_key(key: str) -> bool:
    """True for key names whose values must never be echoed.

    ``*token*``, ``*secret*``, ``*passw*``, ``*passphrase*`` (``AICONFIG_KEY_PASSPHRASE``),
    ``api_key``, ``*credential*``, ``*webhook*`` (a Slack or Teams webhook URL is a bearer
    secret), the words ``pass``, ``pwd``, ``auth`` and ``dsn``, and any name ending in ``key``
    as a word (``SSH_KEY``, ``OPENAI_API_KEY``; not ``AICONFIG_KEYS`` or ``keyframe_*``).
    """
    if _SECRET_RE.search(key):
        return True
    words = [w for w in re.split(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])", key) if w]
    lowered = [w.lower() for w in words]
    return bool(lowered) and (lowered[-1] == "key" or any(w in _SECRET_WORDS for w in lowered))


def _quoted(text: str, i: int) -> tuple[int, str]:
    """Read the quoted key starting at ``text[i] == '"'`` (``\\"`` and ``\\\\`` escape)."""
    out: list[str] = []
    i += 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return i + 1, "".join(out)
        out.append(ch)
        i += 1
    raise ValueError(f"unterminated quote in path '{text}'")


_NON_STRING_KEYS: dict[object, str] = {None: "null", True: "true", False: "false"}


class KeyPath(tuple[str | int, ...]):
    """An immutable path into a config: ``KeyPath(("model", "action_space", 2))``."""

    __slots__ = ()

    def __new__(cls, parts: Iterable[str | int] = ()) -> KeyPath:
        return super().__new__(cls, parts)

    @classmethod
    def parse(cls, text: str) -> KeyPath:
        """``a.b[0]."c.d"`` -> ``("a", "b", 0, "c.d")``; ``ValueError`` when malformed."""
        parts: list[str | int] = []
        i, n = 0, len(text)
        if not text:
            raise ValueError("empty key path")
        while True:
            if i < n and text[i] == '"':
                i, key = _quoted(text, i)
                parts.append(key)
            else:
                start = i
                while i < n and text[i] not in '.["':
                    i += 1
                if i == start:
                    raise ValueError(f"empty segment in path '{text}'")
                parts.append(text[start:i])
            while i < n and text[i] == "[":
                m = _INDEX.match(text, i)
                if m is None:
                    raise ValueError(f"list index must be [N] in path '{text}'")
                parts.append(int(m.group(1)))
                i = m.end()
            if i == n:
                return cls(parts)
            if text[i] != ".":
                raise ValueError(f"expected '.' after segment in path '{text}'")
            i += 1
            if i == n:
                raise ValueError(f"empty segment in path '{text}'")

    def __str__(self) -> str:
        out = ""
        for item in self:
            if isinstance(item, int) and not isinstance(item, bool):
                out += f"[{item}]"
                continue
            # A YAML key that is not a string (null, true, 1.5) is named before validation.
            part = item if isinstance(item, str) else _NON_STRING_KEYS.get(item, str(item))
            if not part or _NEEDS_QUOTES.search(part):
                text = '"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"'
            else:
                text = part
            out = f"{out}.{text}" if out else text
        return out

    def __repr__(self) -> str:
        return f"KeyPath({str(self)!r})"

    def display(self) -> str:
        """As :meth:`__str__`, with ``<top level>`` for the empty path (used in messages)."""
        return str(self) or "<top level>"

    @overload
    def __getitem__(self, index: SupportsIndex) -> str | int: ...
    @overload
    def __getitem__(self, index: slice) -> KeyPath: ...
    def __getitem__(self, index: SupportsIndex | slice) -> str | int | KeyPath:
        if isinstance(index, slice):
            return KeyPath(super().__getitem__(index))
        return super().__getitem__(index)

    def child(self, part: str | int) -> KeyPath:
        return KeyPath((*self, part))

    @property
    def parent(self) -> KeyPath:
        return self[:-1]

    @property
    def name(self) -> str | int | None:
        """The last part (None for the empty path)."""
        return self[-1] if self else None

    def startswith(self, other: Parts) -> bool:
        """True when ``other`` is this path or one of its ancestors."""
        return tuple(self[: len(other)]) == tuple(other)
