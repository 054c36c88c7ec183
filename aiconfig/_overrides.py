"""Scoped dotted overrides: parse ``path=value``, type values by the schema, merge, validate.

A path names a field of the config models (``training.optimizer.lr``) or a key of a free-form
map field (``monitoring.latency_thresholds_ms."Qwen/Qwen2.5-0.5B-Instruct"``: quote a segment
that holds a dot). Whole sections cannot be replaced, ``meta`` is set by the fork itself, and
paths a baseline lists in ``meta.locked`` (or anything under them) are refused.

Merging is a dict walk over ``model_dump()`` followed by one ``model_validate``: well under a
millisecond on a 2000-leaf config, and unlike ``OmegaConf.merge`` an unknown path is an error
with a did-you-mean, never a silently added key.
"""

from __future__ import annotations

import difflib
import functools
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from ._errors import ConfigValidationError, ForkError, Problem
from ._explain import explain, translate
from ._keypath import KeyPath, Parts
from ._schema import AIConfig, is_secret_path, unwrap, walk_schema

__all__ = [
    "FieldTarget",
    "apply_overrides",
    "check_overridable",
    "format_path",
    "locked_by",
    "parse_assignment",
    "parse_path",
    "split_values",
    "target_of",
    "type_value",
]


def parse_path(dotted: str) -> KeyPath:
    """``a.b."c.d"`` -> ``KeyPath(("a", "b", "c.d"))``; raise ValueError on malformed paths."""
    return KeyPath.parse(dotted)


def format_path(segments: Parts) -> str:
    """Inverse of :func:`parse_path`; list indices are written ``name[3]``."""
    return str(KeyPath(segments))


def _map_value_type(annotation: Any) -> Any | None:
    inner = unwrap(annotation)
    if typing.get_origin(inner) is dict:
        return typing.get_args(inner)[1]
    return None


@dataclass(frozen=True)
class FieldTarget:
    """What a dotted path points at: a model field, or a key in a map field."""

    segments: KeyPath
    annotation: Any  # the full annotation, constraints included
    map_key: bool  # True when the last segment is a key of a free-form map

    @property
    def dotted(self) -> str:
        return str(self.segments)


@functools.lru_cache(maxsize=512)
def _target(segments: KeyPath) -> FieldTarget:
    """Resolve an override path with the schema walker; ForkError says what is wrong."""
    if not segments:
        raise ForkError("empty config path", hint="write a dotted path such as training.lr")
    steps = list(walk_schema(segments))
    last = steps[-1]
    here = str(last.path)
    if last.field is None:
        part = last.path[-1]
        if isinstance(part, int):
            raise ForkError(
                f"'{segments}' names a list item",
                path=str(segments),
                hint=f"set the whole list: {last.path.parent}=[...]",
            )
        known = list(last.model.model_fields)
        close = difflib.get_close_matches(part, known, n=1, cutoff=0.6)
        hint = (
            f"did you mean '{last.path.parent.child(close[0])}'?"
            if close
            else f"valid keys here: {', '.join(known)}"
        )
        raise ForkError(f"unknown config path '{segments}'", path=here, hint=hint)
    done = len(steps) == len(segments)
    sub = last.submodel
    if sub is not None:  # only the last step can be a section: the walker went on otherwise
        keys = ", ".join(sub.model_fields)
        raise ForkError(
            f"'{here}' is a whole section; a whole section cannot be overridden",
            path=here,
            hint=f"override its keys one by one ({here}.<key>; keys: {keys})",
        )
    annotation = last.annotation
    if done:
        return FieldTarget(segments, annotation, map_key=False)
    value_type = _map_value_type(annotation)
    if value_type is not None and len(steps) == len(segments) - 1:
        return FieldTarget(segments, value_type, map_key=True)
    raise ForkError(
        f"'{here}' is a value, not a section; '{segments}' does not exist",
        path=str(segments),
        hint=f"set '{here}' itself",
    )


def target_of(dotted: str) -> FieldTarget:
    """Resolve ``dotted`` against the schema; ForkError with a did-you-mean when unknown."""
    try:
        segments = KeyPath.parse(dotted)
    except ValueError as exc:
        raise ForkError(
            str(exc), path=dotted, hint='quote segments that hold dots: a."b.c"'
        ) from None
    return _target(segments)


def locked_by(dotted: str, locked: Sequence[str]) -> str | None:
    """The locked path that forbids overriding ``dotted`` (it, a parent or a child), or None."""
    for lock in locked:
        if dotted == lock or dotted.startswith(lock + ".") or lock.startswith(dotted + "."):
            return lock
    return None


def check_overridable(dotted: str, locked: Sequence[str]) -> FieldTarget:
    """Refuse ``meta.*``, locked and unknown paths; return the schema target."""
    if dotted == "meta" or dotted.startswith("meta."):
        raise ForkError(
            "meta cannot be overridden",
            path=dotted,
            hint="a fork sets its own meta (--name, --version, --description)",
        )
    target = target_of(dotted)  # unknown paths and whole sections first: the precise problem
    lock = locked_by(dotted, locked)
    if lock is not None:
        raise ForkError(
            f"'{dotted}' is locked by the base (meta.locked: {lock})",
            path=dotted,
            hint="locked paths change only through a reviewed edit of the baseline",
        )
    return target


@functools.lru_cache(maxsize=512)
def _adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


def _parse_scalar_text(text: str) -> Any:
    """Read ``text`` as a YAML value under the hardened profile (``3e-4`` is a float)."""
    from ._yamlsafe import parse_yaml

    try:
        return parse_yaml(b"v: " + text.encode("utf-8"), "<--set>").data["v"]
    except Exception:  # noqa: BLE001 - anything unparsable is simply a string
        return text


def type_value(dotted: str, text: str) -> Any:
    """Type the command-line text ``text`` for ``dotted`` by the schema; return a YAML-able value.

    Quoted text (``"a, b"`` or ``'x=y'``) is always a string. Otherwise the text is read as YAML
    (numbers, booleans, null, ``[a, b]`` lists) and, when that does not fit the field, as the
    plain string. ``${oc.env:...}`` is kept verbatim and resolved at load time.
    """
    target = check_overridable(dotted, ())
    stripped = text.strip()
    secret = is_secret_path(target.segments)
    if "${" in stripped:
        return stripped
    if secret:
        raise ForkError(
            "secrets never go into config files",
            path=dotted,
            hint=f"write {dotted}='${{oc.env:VAR_NAME}}' and set the variable at run time",
        )
    quoted = len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "\"'"
    candidates: list[Any] = [_parse_scalar_text(stripped)] if quoted else []
    if not quoted:
        candidates = [_parse_scalar_text(stripped), stripped]
    adapter = _adapter(target.annotation)
    first_error: tuple[PydanticValidationError, Any] | None = None
    for candidate in candidates:
        try:
            value = adapter.validate_python(candidate)
        except PydanticValidationError as exc:
            first_error = first_error or (exc, candidate)
            continue
        return adapter.dump_python(value, mode="json")
    if first_error is None:  # pragma: no cover - candidates is never empty
        raise ForkError(f"bad value {text!r}", path=dotted)
    problems = translate(*first_error, root=None, prefix=target.segments, default_source=None)
    why = "; ".join(f"expected {p.expected}" if p.expected else p.message for p in problems)
    raise ForkError(f"bad value {text!r}: {why}", path=dotted, hint="fix the value")


def _split_top(text: str, sep: str) -> Iterator[str]:
    """Split on ``sep`` outside quotes and brackets."""
    depth = 0
    quote = ""
    buf: list[str] = []
    for ch in text:
        if quote:
            buf.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == sep and depth == 0:
            yield "".join(buf)
            buf = []
            continue
        buf.append(ch)
    if quote or depth:
        raise ValueError(f"unbalanced quotes or brackets in '{text}'")
    yield "".join(buf)


def parse_assignment(text: str) -> tuple[str, str]:
    """``path=value`` -> (path, raw value text); the first unquoted ``=`` splits them."""
    try:
        parts = list(_split_top(text, "="))
    except ValueError as exc:
        raise ForkError(str(exc), hint="balance the quotes: --set 'a.b=\"x, y\"'") from None
    if len(parts) < 2 or not parts[0].strip():
        raise ForkError(f"'{text}' is not path=value", hint="write e.g. --set training.lr=3e-4")
    return parts[0].strip(), "=".join(parts[1:])


def split_values(text: str) -> list[str]:
    """Sweep values ``a,b,"c,d",[1,2]``: commas inside quotes or brackets do not split."""
    try:
        values = [v.strip() for v in _split_top(text, ",")]
    except ValueError as exc:
        raise ForkError(str(exc), hint="quote values that contain commas") from None
    if not values or any(not v for v in values):
        raise ForkError(f"empty value in sweep list '{text}'", hint="write --sweep path=a,b,c")
    return values


def _set(data: dict[Any, Any], segments: Parts, value: Any) -> None:
    node = data
    for seg in segments[:-1]:
        child = node.get(seg)
        if not isinstance(child, dict):
            child = {}
            node[seg] = child
        node = child
    node[segments[-1]] = value


def apply_overrides(
    base: AIConfig,
    overrides: Mapping[str, Any],
    meta: Mapping[str, Any],
    *,
    file: str = "<memory>",
    lines: Mapping[str, int] | None = None,
    sources: Mapping[str, str] | None = None,
) -> AIConfig:
    """Merge ``overrides`` (dotted path -> value) and ``meta`` into ``base``; validate once.

    Every refused path is reported at once (ForkError); schema errors come back explained with
    the fork file's line numbers (ConfigValidationError). The result is a new frozen object.
    """
    lines = lines or {}
    locked = tuple(base.meta.locked)
    problems: list[Problem] = []
    targets: list[tuple[FieldTarget, Any]] = []
    for dotted, value in overrides.items():
        try:
            targets.append((check_overridable(dotted, locked), value))
        except ForkError as exc:
            problems.extend(
                Problem(p.message, file=file, line=lines.get(dotted), path=p.path, hint=p.hint)
                for p in exc.problems
            )
    if problems:
        raise ForkError(problems)
    data = base.model_dump()
    data_lines: dict[Parts, int] = {}
    data_sources: dict[Parts, str] = {}
    for target, value in targets:
        _set(data, target.segments, value)
        if target.dotted in lines:
            data_lines[target.segments] = lines[target.dotted]
        data_sources[target.segments] = (sources or {}).get(target.dotted, file)
    merged_meta = {**data["meta"], **meta}
    merged_meta["locked"] = tuple(dict.fromkeys((*locked, *meta.get("locked", ()))))
    data["meta"] = merged_meta
    if "meta" in lines:
        data_lines[("meta",)] = lines["meta"]
    try:
        return AIConfig.model_validate(data)
    except PydanticValidationError as exc:
        raise ConfigValidationError(
            explain(exc, data, file, data_lines, data_sources, {})
        ) from None
