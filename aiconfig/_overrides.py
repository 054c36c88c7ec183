"""Scoped dotted overrides: parse ``path=value``, type values by the schema, merge, validate.

A path names a field of the config models (``training.optimizer.lr``), a key of a free-form
map field (``monitoring.latency_thresholds_ms."Qwen/Qwen2.5-0.5B-Instruct"``: quote a segment
that holds a dot), or an item of a list field. Whole sections cannot be replaced, ``meta`` is
set by the fork itself, and paths a baseline lists in ``meta.locked`` (or anything under or
above them) are refused.

List items (:class:`Edit`), applied in the order given, each on the list as the edits before
it left it:

``model.action_space[2]=x``   set item 2 (0-based); ``[N]`` with N = the list's length appends
``model.action_space[+]=x``   append (a fork file records it as the concrete index)
``~model.action_space[3]``    remove item 3 (``~path[3]=r``: only if item 3 is ``r``; a fork
                              file always records the removed value)

Fixed-length lists (``training.optimizer.betas``, resolutions) take ``[i]`` only.

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
from typing import Any, Literal

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from ._errors import ConfigValidationError, ForkError, Problem
from ._explain import explain, translate
from ._keypath import KeyPath, Parts
from ._schema import AIConfig, is_secret_path, unwrap, walk_schema

__all__ = [
    "Edit",
    "FieldTarget",
    "apply_overrides",
    "check_overridable",
    "format_path",
    "locked_by",
    "normalize_edits",
    "parse_assignment",
    "parse_edit",
    "parse_path",
    "split_values",
    "target_of",
    "type_value",
    "typed_item",
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


Op = Literal["set", "append", "remove"]
APPEND = "[+]"
REMOVE = "~"


@dataclass(frozen=True)
class Edit:
    """One override key: set ``path``, append to the list at ``path``, or remove item ``path``."""

    op: Op
    path: KeyPath

    @property
    def key(self) -> str:
        """The key as written: ``a.b``, ``a.b[2]``, ``a.b[+]`` or ``~a.b[2]``."""
        if self.op == "append":
            return f"{self.path}{APPEND}"
        return f"{REMOVE}{self.path}" if self.op == "remove" else str(self.path)

    @property
    def index(self) -> int | None:
        last = self.path[-1] if self.path else None
        return last if isinstance(last, int) and self.op != "append" else None


def parse_edit(text: str) -> Edit:
    """``a.b[2]`` / ``a.b[+]`` / ``~a.b[2]`` / ``a.b`` -> :class:`Edit`; ValueError if malformed."""
    key = text.strip()
    op: Op = "set"
    if key.startswith(REMOVE):
        op, key = "remove", key[1:]
    if key.endswith(APPEND):
        if op == "remove":
            raise ValueError(f"'{text}' both appends and removes")
        op, key = "append", key[: -len(APPEND)]
    path = KeyPath.parse(key)
    if op == "remove" and not isinstance(path[-1], int):
        raise ValueError(f"'{text}': '~' removes a list item, written ~path[N]")
    return Edit(op, path)


@dataclass(frozen=True)
class FieldTarget:
    """What an override key points at: a field, a key in a map field, or a list item."""

    segments: KeyPath  # the edit's path (for an append: the list's path)
    annotation: Any  # the value's full annotation, constraints included (a list item's type)
    map_key: bool  # True when the last segment is a key of a free-form map
    op: Op = "set"
    fixed_len: int | None = None  # list items only: the length of a fixed-length list

    @property
    def dotted(self) -> str:
        return Edit(self.op, self.segments).key

    @property
    def is_item(self) -> bool:
        return self.op != "set" or bool(self.segments and isinstance(self.segments[-1], int))


def _item_type(annotation: Any, index: int | None) -> tuple[Any, int | None] | None:
    """(item annotation, fixed length or None) of a list/tuple annotation; None if not a list."""
    inner = unwrap(annotation)
    origin = typing.get_origin(inner)
    if origin not in (tuple, list):
        return None
    args = typing.get_args(inner)
    if origin is list or (len(args) == 2 and args[1] is Ellipsis):
        return args[0], None
    if index is not None and index < len(args):
        return args[index], len(args)
    return args[0] if args else Any, len(args)


def _list_target(segments: KeyPath, list_path: KeyPath, annotation: Any, op: Op) -> FieldTarget:
    index = segments[-1] if op != "append" else None
    item = _item_type(annotation, index if isinstance(index, int) else None)
    if item is None:
        raise ForkError(
            f"'{list_path}' is not a list; '{Edit(op, segments).key}' does not exist",
            path=Edit(op, segments).key,
            hint=f"set '{list_path}' itself",
        )
    item_type, fixed = item
    if fixed is not None and op != "set":
        raise ForkError(
            f"'{list_path}' has exactly {fixed} items: items can be set, not "
            f"{'appended' if op == 'append' else 'removed'}",
            path=Edit(op, segments).key,
            hint=f"set one with {list_path}[0..{fixed - 1}]=VALUE",
        )
    if fixed is not None and isinstance(index, int) and index >= fixed:
        raise ForkError(
            f"index {index} is out of range: '{list_path}' has exactly {fixed} items "
            f"(0-{fixed - 1})",
            path=Edit(op, segments).key,
            hint=f"set one with {list_path}[0..{fixed - 1}]=VALUE",
        )
    return FieldTarget(segments, item_type, map_key=False, op=op, fixed_len=fixed)


@functools.lru_cache(maxsize=512)
def _target(segments: KeyPath, op: Op = "set") -> FieldTarget:
    """Resolve an override path with the schema walker; ForkError says what is wrong."""
    if not segments:
        raise ForkError("empty config path", hint="write a dotted path such as training.lr")
    steps = list(walk_schema(segments))
    last = steps[-1]
    here = str(last.path)
    if op == "append":
        if last.field is not None and last.submodel is None and len(steps) == len(segments):
            return _list_target(segments, segments, last.annotation, op)
    elif (
        isinstance(segments[-1], int)
        and len(steps) == len(segments) - 1
        and last.field is not None
        and last.submodel is None
    ):
        return _list_target(segments, last.path, last.annotation, op)
    if last.field is None:
        part = last.path[-1]
        if isinstance(part, int):
            raise ForkError(
                f"'{last.path.parent}' is a section, not a list",
                path=str(segments),
                hint=f"name one of its keys: {last.path.parent}.<key>",
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


def _edit_of(dotted: str) -> Edit:
    try:
        return parse_edit(dotted)
    except ValueError as exc:
        raise ForkError(
            str(exc),
            path=dotted,
            hint='quote segments that hold dots: a."b.c"; list items: a[2], a[+], ~a[2]',
        ) from None


def target_of(dotted: str) -> FieldTarget:
    """Resolve an override key against the schema; ForkError with a did-you-mean when unknown."""
    edit = _edit_of(dotted)
    return _target(edit.path, edit.op)


def _overlaps(a: KeyPath, b: KeyPath) -> bool:
    return a.startswith(b) or b.startswith(a)


def locked_by(dotted: str, locked: Sequence[str]) -> str | None:
    """The listed path that covers ``dotted`` (it, a parent or a child), or None.

    ``dotted`` may be an override key (``~model.action_space[2]``): a locked list locks its
    items, and a locked item locks the whole list's replacement.
    """
    try:
        path = parse_edit(dotted).path
    except ValueError:
        path = None
    for lock in locked:
        try:
            if path is not None and _overlaps(path, KeyPath.parse(lock)):
                return lock
        except ValueError:
            pass
        if dotted == lock or dotted.startswith(lock + ".") or lock.startswith(dotted + "."):
            return lock
    return None


def check_overridable(dotted: str, locked: Sequence[str]) -> FieldTarget:
    """Refuse ``meta.*``, locked and unknown paths; return the schema target."""
    edit = _edit_of(dotted)
    if edit.path[0] == "meta":
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


def type_value(dotted: str, text: str | None) -> Any:
    """Type the command-line text ``text`` for ``dotted`` by the schema; return a YAML-able value.

    Quoted text (``"a, b"`` or ``'x=y'``) is always a string. Otherwise the text is read as YAML
    (numbers, booleans, null, ``[a, b]`` lists) and, when that does not fit the field, as the
    plain string. ``${oc.env:...}`` is kept verbatim and resolved at load time. A list item is
    typed as an item; ``None`` (``~path[N]`` without ``=``) stays None: remove whatever is there.
    """
    target = check_overridable(dotted, ())
    if text is None:
        if target.op != "remove":
            raise ForkError(f"'{dotted}' needs a value", path=dotted, hint=f"write {dotted}=VALUE")
        return None
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


def parse_assignment(text: str) -> tuple[str, str | None]:
    """``path=value`` -> (path, raw value text); the first unquoted ``=`` splits them.

    ``~path[N]`` (remove a list item) needs no value: (path, None).
    """
    try:
        parts = list(_split_top(text, "="))
    except ValueError as exc:
        raise ForkError(str(exc), hint="balance the quotes: --set 'a.b=\"x, y\"'") from None
    if len(parts) == 1 and parts[0].strip().startswith(REMOVE):
        return parts[0].strip(), None
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


def typed_item(target: FieldTarget, value: Any) -> Any:
    """``value`` typed by ``target``'s annotation, as JSON (what a lineage record shows)."""
    if value is None or (isinstance(value, str) and "${" in value):
        return value
    adapter = _adapter(target.annotation)
    return adapter.dump_python(adapter.validate_python(value), mode="json")


def _set(data: dict[Any, Any], segments: Parts, value: Any) -> None:
    node = data
    for seg in segments[:-1]:
        child = node.get(seg)
        if not isinstance(child, dict):
            child = {}
            node[seg] = child
        node = child
    node[segments[-1]] = value


def _edit_list(data: dict[Any, Any], target: FieldTarget, value: Any) -> KeyPath:
    """Apply a list-item edit to ``data`` in place; return the path of the item it touched.

    ForkError (no file or line yet) when the index is out of range or a removal's expected
    value does not match.
    """
    segments = target.segments
    list_path = segments if target.op == "append" else segments.parent
    node: Any = data
    for seg in list_path[:-1]:
        node = node[seg]
    items = list(node[list_path[-1]] or ())
    index = len(items) if target.op == "append" else int(segments[-1])
    limit = len(items) + (0 if target.op == "remove" else 1)
    if index >= limit:
        span = f"0-{len(items) - 1}" if items else "none"
        raise ForkError(
            f"index {index} is out of range: '{list_path}' has {len(items)} items ({span})",
            path=target.dotted,
            hint=f"append with {list_path}[+]=VALUE",
        )
    if target.op == "remove":
        if value is not None and items[index] != value:
            raise ForkError(
                f"item {index} of '{list_path}' is {items[index]!r}, not {value!r}",
                path=target.dotted,
                hint="the list changed: check the index (edits apply in order)",
            )
        items.pop(index)
    elif index == len(items):
        items.append(value)
    else:
        items[index] = value
    node[list_path[-1]] = items
    return list_path.child(index)


def normalize_edits(
    base: AIConfig, overrides: Mapping[str, Any] | Sequence[tuple[str, Any]]
) -> dict[str, Any]:
    """The overrides as a fork file records them: ``[+]`` becomes the concrete index, a removal
    carries the value it removes. ``overrides`` may be pairs, so ``[+]`` can repeat. Raises
    ForkError when two edits would share one key."""
    data = base.model_dump(mode="json")
    out: dict[str, Any] = {}
    pairs = list(overrides.items()) if isinstance(overrides, Mapping) else list(overrides)
    for key, value in pairs:
        target = target_of(key)
        if not target.is_item:
            if key in out:
                raise ForkError(f"{key} is set twice", path=key, hint="keep one")
            _set(data, target.segments, value)
            out[key] = value
            continue
        list_path = target.segments if target.op == "append" else target.segments.parent
        node: Any = data
        for seg in list_path:
            node = node[seg]
        index = len(node) if target.op == "append" else int(target.segments[-1])
        recorded = value
        if target.op == "remove" and value is None and index < len(node):
            recorded = node[index]
        touched = _edit_list(data, target, recorded)
        written = Edit("remove" if target.op == "remove" else "set", touched).key
        if written in out:
            raise ForkError(
                f"two edits of '{touched}' in one fork",
                path=written,
                hint="remove items from the highest index down (~a[4] before ~a[3])",
            )
        out[written] = recorded
    return out


def apply_overrides(
    base: AIConfig,
    overrides: Mapping[str, Any],
    meta: Mapping[str, Any],
    *,
    file: str = "<memory>",
    lines: Mapping[str, int] | None = None,
    sources: Mapping[str, str] | None = None,
    locked: Sequence[str] | None = None,
) -> AIConfig:
    """Merge ``overrides`` (dotted path -> value) and ``meta`` into ``base``; validate once.

    Every refused path is reported at once (ForkError); schema errors come back explained with
    the fork file's line numbers (ConfigValidationError). The result is a new frozen object.
    ``locked`` replaces the base's ``meta.locked`` for the check (an emergency override is
    checked against ``meta.emergency`` instead).
    """
    lines = lines or {}
    locked = tuple(base.meta.locked if locked is None else locked)
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
    for (target, value), dotted in zip(targets, overrides, strict=True):
        where: Parts = target.segments
        if target.is_item:
            try:
                where = _edit_list(data, target, value)
            except ForkError as exc:
                problems.extend(
                    Problem(p.message, file=file, line=lines.get(dotted), path=p.path, hint=p.hint)
                    for p in exc.problems
                )
                continue
        else:
            _set(data, target.segments, value)
        if dotted in lines:
            data_lines[where] = lines[dotted]
        data_sources[where] = (sources or {}).get(dotted, file)
    if problems:
        raise ForkError(problems)
    merged_meta = {**data["meta"], **meta}
    merged_meta["locked"] = tuple(dict.fromkeys((*base.meta.locked, *meta.get("locked", ()))))
    data["meta"] = merged_meta
    if "meta" in lines:
        data_lines[("meta",)] = lines["meta"]
    try:
        return AIConfig.model_validate(data)
    except PydanticValidationError as exc:
        raise ConfigValidationError(
            explain(exc, data, file, data_lines, data_sources, {})
        ) from None
