"""The one translation of pydantic validation errors into problems a person can act on.

Every caller that validates with pydantic (configs, fork files, overrides, ``--set`` values,
the trust policy, command-line flags, capture options) goes through :func:`translate`, so
every error is reported (not just the first), each names the file and line, the key path
(rendered by :class:`~aiconfig._keypath.KeyPath`), what was expected and what was found, and
where the value came from (the file or an environment variable); unknown keys get the closest
valid key. Values of secret fields (by the schema: ``SecretStr`` or marked) are never echoed.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from ._errors import Problem
from ._keypath import KeyPath, Parts
from ._schema import AIConfig, is_secret_path, walk_schema

__all__ = ["explain", "model_at", "redact", "translate"]

_MAX_GOT = 60
_EMPTY: Mapping[Any, Any] = {}


def from_env(source: str | None) -> bool:
    """True when the value came out of the environment (not a default written in the file)."""
    return bool(source) and str(source).startswith("env:")


def redact(path: Parts, value: Any, source: str | None = None) -> str:
    """``repr(value)`` cut to a readable length; ``<redacted>`` for a secret field (by the
    schema: ``SecretStr`` or marked).

    A value read from the environment is never echoed: ``model.dropout: ${oc.env:GITHUB_TOKEN}``
    must not print the token in the error that says it is not a float.
    """
    if is_secret_path(path):
        return "<redacted>"
    if from_env(source):
        return "<not shown: from the environment>"
    text = repr(value)
    return text if len(text) <= _MAX_GOT else text[: _MAX_GOT - 3] + "..."


def model_at(path: Parts, root: type[BaseModel] = AIConfig) -> type[BaseModel] | None:
    """The config model class found at ``path`` (None when the path leaves the models)."""
    if not path:
        return root
    steps = list(walk_schema(path, root))
    if len(steps) < len(path) or steps[-1].field is None:
        return None
    return steps[-1].submodel


def _data_path(loc: tuple[Any, ...], data: Any, err_type: str) -> KeyPath:
    """Keep the parts of pydantic's loc that index the data (drop union-member tags)."""
    path: list[str | int] = []
    current = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        in_dict = isinstance(current, dict) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        if in_dict or in_list:
            path.append(part)
            current = current[part]
        elif last and err_type in ("missing", "extra_forbidden"):
            path.append(part)
        else:
            # union-member tags like 'int' or 'function-after[...]' are not data keys
            continue
    return KeyPath(path)


def _line(lines: Mapping[Parts, int], path: Parts) -> int | None:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def translate(
    exc: PydanticValidationError,
    data: Any,
    *,
    file: str | None = None,
    lines: Mapping[Parts, int] = _EMPTY,
    sources: Mapping[Parts, str] = _EMPTY,
    yaml11_bools: Mapping[Parts, str] = _EMPTY,
    root: type[BaseModel] | None = AIConfig,
    prefix: Parts = (),
    default_source: str | None = "file",
    message_prefix: str = "",
    hint: str | None = None,
) -> list[Problem]:
    """Every error of ``exc`` (raised validating ``data``) as one :class:`Problem` each.

    ``lines``, ``sources`` and ``yaml11_bools`` are keyed by the data's own paths. ``root`` is
    the model validated (for did-you-mean on unknown keys; None for a bare value), ``prefix``
    where ``data`` sits in the config (``("capture",)`` when a section is validated alone).
    ``hint`` is given to problems that have no hint of their own.
    """
    problems: list[Problem] = []
    seen: set[KeyPath] = set()
    for err in exc.errors(include_url=False):
        err_type = err["type"]
        path = _data_path(tuple(err["loc"]), data, err_type)
        if path in seen:  # one problem per key (unions report once per member)
            continue
        seen.add(path)
        full = KeyPath((*prefix, *path))
        where: dict[str, Any] = {
            "file": file,
            "line": _line(lines, path),
            "path": full.display() if (full or file) else None,
        }
        if err_type == "extra_forbidden":
            parent = model_at(path[:-1], root) if root is not None else None
            known = list(parent.model_fields) if parent else []
            close = difflib.get_close_matches(str(path[-1]), known, n=1, cutoff=0.6)
            own = f"did you mean '{close[0]}'?" if close else f"valid keys: {', '.join(known)}"
            problems.append(Problem(f"{message_prefix}unknown key '{path[-1]}'", **where, hint=own))
            continue
        if err_type == "missing":
            problems.append(
                Problem(
                    f"{message_prefix}required key is missing",
                    **where,
                    hint=f"add '{path[-1]}'" if path else hint,
                )
            )
            continue
        msg = err["msg"]
        source = sources.get(path, default_source)
        if path in yaml11_bools and err_type in ("string_type", "literal_error", "enum"):
            spelled = yaml11_bools[path]
            problems.append(
                Problem(
                    f"{message_prefix}'{spelled}' was read as a boolean (YAML 1.1)",
                    **where,
                    expected="a string",
                    got=repr(err["input"]),
                    source=source,
                    hint=f'quote it: "{spelled}"',
                )
            )
            continue
        expected = None
        if msg.startswith("Input should be "):
            expected, msg = msg[len("Input should be ") :], "invalid value"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        problems.append(
            Problem(
                f"{message_prefix}{msg}",
                **where,
                expected=expected,
                got=redact(full, err["input"], source),
                source=source,
                hint=hint,
            )
        )
    problems.sort(key=lambda p: p.line or 0)
    return problems


def explain(
    exc: PydanticValidationError,
    data: Any,
    file: str,
    lines: Mapping[Parts, int],
    sources: Mapping[Parts, str],
    yaml11_bools: Mapping[Parts, str],
) -> list[Problem]:
    """:func:`translate` for a whole config (the loader's and the fork merge's call)."""
    return translate(exc, data, file=file, lines=lines, sources=sources, yaml11_bools=yaml11_bools)
