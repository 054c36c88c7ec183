"""Turn pydantic validation errors into one-line problems a person can act on.

Each problem names the file and line, the dotted key path, what was expected and what was
found, where the value came from (the file or an environment variable), and for unknown keys
the closest valid key. Values under secret-looking keys are never echoed.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from .errors import Problem
from .schema import AIConfig, is_secret_path

__all__ = ["explain", "model_at", "redact"]

Path = tuple[str | int, ...]
_MAX_GOT = 60


def redact(path: Path, value: Any) -> str:
    if is_secret_path(path):
        return "<redacted>"
    text = repr(value)
    return text if len(text) <= _MAX_GOT else text[: _MAX_GOT - 3] + "..."


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _submodel(arg)
            if found is not None:
                return found
    return None


def model_at(path: Path, root: type[BaseModel] = AIConfig) -> type[BaseModel] | None:
    """The config model class found at ``path`` (None when the path leaves the models)."""
    current: type[BaseModel] | None = root
    for part in path:
        if current is None or not isinstance(part, str):
            return None
        field = current.model_fields.get(part)
        current = _submodel(field.annotation) if field is not None else None
    return current


def _data_path(loc: tuple[Any, ...], data: Any, err_type: str) -> Path:
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
    return tuple(path)


def _line(lines: Mapping[Path, int], path: Path) -> int | None:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def _dotted(path: Path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def explain(
    exc: PydanticValidationError,
    data: Any,
    file: str,
    lines: Mapping[Path, int],
    sources: Mapping[Path, str],
    yaml11_bools: Mapping[Path, str],
) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[Path] = set()
    for err in exc.errors(include_url=False):
        err_type = err["type"]
        path = _data_path(tuple(err["loc"]), data, err_type)
        if path in seen:  # one problem per key (unions report once per member)
            continue
        seen.add(path)
        line = _line(lines, path)
        source = sources.get(path, "file")
        dotted = _dotted(path)
        if err_type == "extra_forbidden":
            parent = model_at(path[:-1])
            known = list(parent.model_fields) if parent else []
            close = difflib.get_close_matches(str(path[-1]), known, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else f"valid keys: {', '.join(known)}"
            problems.append(
                Problem(f"unknown key '{path[-1]}'", file=file, line=line, path=dotted, hint=hint)
            )
            continue
        if err_type == "missing":
            problems.append(
                Problem(
                    "required key is missing",
                    file=file,
                    line=line,
                    path=dotted,
                    hint=f"add '{path[-1]}'",
                )
            )
            continue
        msg = err["msg"]
        if path in yaml11_bools and err_type in ("string_type", "literal_error", "enum"):
            spelled = yaml11_bools[path]
            problems.append(
                Problem(
                    f"'{spelled}' was read as a boolean (YAML 1.1)",
                    file=file,
                    line=line,
                    path=dotted,
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
                msg,
                file=file,
                line=line,
                path=dotted,
                expected=expected,
                got=redact(path, err["input"]),
                source=source,
            )
        )
    problems.sort(key=lambda p: p.line or 0)
    return problems
