"""Environment interpolation: ``${oc.env:VAR,default}`` resolved eagerly through OmegaConf.

Rules:
* only the ``oc.env`` resolver and plain node references (``${training.lr}``) are allowed;
* every missing variable (no value, no default) is reported at once, before anything resolves;
* an environment value is data, never re-interpolated (OmegaConf returns resolver output as-is);
* values come back as strings; the schema types them (``'8'`` -> ``8``);
* OmegaConf (80 ms to import) is imported only when the file contains ``${``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import InterpolationError, Problem
from ._keypath import KeyPath, Parts, is_secret_key
from ._schema import is_secret_path

__all__ = ["Interpolated", "interpolate"]


_RESOLVER = re.compile(r"\$\{\s*([A-Za-z_][\w.]*)\s*:")
_NODE_REF = re.compile(r"(?<!\\)\$\{\s*(?![A-Za-z_][\w.]*\s*:)")
_ENV = re.compile(r"\$\{\s*oc\.env\s*:\s*([^,}\s]+)\s*(,)?")


@dataclass
class Interpolated:
    data: dict[str, Any]
    sources: dict[Parts, str] = field(default_factory=dict)
    env_used: dict[str, str | None] = field(default_factory=dict)  # name -> value (None: unset)


def _strings(value: Any, path: Parts = ()) -> list[tuple[Parts, str]]:
    """Every string holding ``${`` and its path, in document order (an explicit stack)."""
    found: list[tuple[Parts, str]] = []
    todo: list[tuple[Parts, Any]] = [(path, value)]
    while todo:
        here, node = todo.pop()
        if type(node) is dict:
            todo.extend((((*here, k), v) for k, v in reversed(node.items())))
        elif type(node) is list:
            todo.extend((((*here, i), v) for i, v in reversed(list(enumerate(node)))))
        elif type(node) is str and "${" in node:
            found.append((here, node))
    return found


def _set(data: Any, path: Parts, value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


def interpolate(
    data: dict[str, Any],
    file: str,
    lines: Mapping[Parts, int],
    env: Mapping[str, str] | None = None,
) -> Interpolated:
    """Resolve interpolations in ``data`` (modified in place) and say where each value came from."""
    env = os.environ if env is None else env
    found = list(_strings(data))
    result = Interpolated(data=data)
    if not found:
        return result
    problems: list[Problem] = []
    for path, text in found:
        for name in _RESOLVER.findall(text):
            if name != "oc.env":
                problems.append(
                    Problem(
                        f"resolver '{name}' is not allowed",
                        file=file,
                        line=lines.get(path),
                        path=str(KeyPath(path)),
                        hint="only ${oc.env:VAR,default} and ${dotted.path} may be used",
                    )
                )
        for var, comma in _ENV.findall(text):
            value = env.get(var)
            # Redacted when it feeds a secret field anywhere (the schema decides, not the key's
            # name), or when the variable's own name looks secret (variables have no schema).
            secret = (
                is_secret_path(path)
                or is_secret_key(var)
                or result.env_used.get(var) == "<redacted>"
            )
            result.env_used[var] = "<redacted>" if secret and value is not None else value
            if value is None and not comma:
                problems.append(
                    Problem(
                        f"environment variable {var} is not set and has no default",
                        file=file,
                        line=lines.get(path),
                        path=str(KeyPath(path)),
                        hint=f"export {var}=... or write ${{oc.env:{var},default}}",
                    )
                )
            else:
                origin = f"env:{var}" if value is not None else f"default of env:{var}"
                result.sources[path] = origin
        result.sources.setdefault(path, "file (interpolated)")
    if problems:
        raise InterpolationError(problems)
    result.data = _resolve(data, found, file, lines, env)
    return result


def _resolve(
    data: dict[str, Any],
    found: list[tuple[Parts, str]],
    file: str,
    lines: Mapping[Parts, int],
    env: Mapping[str, str],
) -> dict[str, Any]:
    slow: list[tuple[Parts, str]] = []
    for path, text in found:
        value = fast_resolve(text, env)
        if value is _SLOW:
            slow.append((path, text))
        else:
            _set(data, path, value)
    if not slow:
        return data
    found = slow
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    only_env = all(not _has_node_reference(text) for _, text in found)
    saved = _patch_environ(env)
    try:
        if only_env:
            # Resolve just the interpolated strings: much cheaper than converting the whole tree.
            flat = OmegaConf.create({f"v{i}": text for i, (_, text) in enumerate(found)})
            values: dict[str, Any] = OmegaConf.to_container(flat, resolve=True)  # type: ignore[assignment]
            for i, (path, _) in enumerate(found):
                _set(data, path, values[f"v{i}"])
            return data
        resolved = OmegaConf.to_container(OmegaConf.create(data), resolve=True)
        return {str(k): v for k, v in resolved.items()}  # type: ignore[union-attr]
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or ""
        where: Parts | None = next((p for p, _ in found if _same_path(p, key)), None)
        message = str(exc).splitlines()[0]
        if where is not None and is_secret_path(where):
            message = "interpolation failed"
        raise InterpolationError(
            message,
            file=file,
            line=lines.get(where) if where else None,
            path=str(KeyPath(where)) if where else (key or None),
            hint="check the ${...} expression",
        ) from None
    finally:
        _restore_environ(saved)


def _same_path(path: Parts, key: str) -> bool:
    """OmegaConf names a list item ``a.0`` or ``a[0]``; either matches ``path``."""
    return key in (str(KeyPath(path)), ".".join(map(str, path)))


_SLOW: Any = object()
_FAST_EXPR = re.compile(r"\$\{oc\.env:([A-Za-z_][A-Za-z0-9_]*)(?:,([^${}\\\s,'\"]+))?\}")
_FAST_DEFAULT = re.compile(
    r"^(?:0|[1-9][0-9]*|[A-Za-z_/][A-Za-z0-9_./@:-]*|\./[A-Za-z0-9_./@:-]*)$"
)
_KEYWORDS = {"true", "false", "null", "nan", "inf"}


def fast_resolve(text: str, env: Mapping[str, str]) -> Any:
    """Resolve the common ``${oc.env:VAR[,plain-default]}`` forms without importing OmegaConf.

    Returns ``_SLOW`` for anything else; OmegaConf then resolves it. A Hypothesis test checks
    that both paths agree on every string this accepts.
    """
    matches = list(_FAST_EXPR.finditer(text))
    rest = _FAST_EXPR.sub("", text)
    if not matches or "$" in rest or "\\" in rest or "{" in rest or "}" in rest:
        return _SLOW
    out: list[str] = []
    pos = 0
    for m in matches:
        var, default = m.group(1), m.group(2)
        if default is not None and (
            not _FAST_DEFAULT.match(default) or (default.lower() in _KEYWORDS and default != "null")
        ):
            return _SLOW  # OmegaConf's grammar decides what such a default means
        value = env.get(var)
        if value is None:
            if default is None:
                return _SLOW
            if default == "null":
                if m.span() != (0, len(text)):
                    return _SLOW
                return None
            value = default
        out.append(text[pos : m.start()])
        out.append(value)
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def _has_node_reference(text: str) -> bool:
    return _NODE_REF.search(text) is not None


def _patch_environ(env: Mapping[str, str]) -> dict[str, str] | None:
    # oc.env reads os.environ; honour an explicit env mapping by swapping it in briefly.
    if env is os.environ:
        return None
    # A real environment cannot hold these; os.environ.update would fail half-way through.
    bad = sorted(k for k, v in env.items() if not k or "=" in k or "\0" in k or "\0" in v)
    if bad:
        raise InterpolationError(
            f"environment variable {bad[0]!r} cannot be set: its name or value holds a NUL "
            "byte or its name is empty or holds '='",
            hint="pass an environment a process could have",
        )
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
    except BaseException:
        _restore_environ(saved)
        raise
    return saved


def _restore_environ(saved: dict[str, str] | None) -> None:
    if saved is not None:
        os.environ.clear()
        os.environ.update(saved)
