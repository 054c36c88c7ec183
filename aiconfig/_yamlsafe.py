"""Hardened YAML profile.

PyYAML's ``safe_load`` still accepts duplicate keys (last one wins), expands aliases without
limit (a 414-byte "billion laughs" document exhausts memory once serialized) and reads
``lr: 1e-4`` as a string. This module builds plain Python values straight from libyaml's event
stream, so every limit is enforced while reading and nothing is ever materialised beyond them:

* only the core tags (str, int, float, bool, null) are produced; any explicit tag is refused;
* duplicate keys are refused, naming both lines;
* alias expansion, nesting depth, node count and file size are capped;
* ``1e-4`` (no dot) is read as a float, as researchers mean it;
* YAML 1.1 booleans spelled ``yes/no/on/off/y/n`` are remembered, so validation can say
  "quote it" when such a value lands in a string field.

Hand-written because no maintained library offers a capped, line-tracking safe loader.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from ._errors import ConfigParseError
from ._keypath import KeyPath, Parts

__all__ = ["Limits", "ParsedYaml", "parse_yaml"]


_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Parser: type = getattr(yaml, "CParser", None) or yaml.SafeLoader

_FLOAT_NO_DOT = re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$")
_BOOL_TRUE_FALSE = {"true", "false"}
_CORE = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:merge",
}


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 1 << 20
    max_depth: int = 32
    max_nodes: int = 100_000
    max_alias_expansions: int = 1_000


@dataclass
class ParsedYaml:
    data: dict[str, Any]
    lines: dict[Parts, int] = field(default_factory=dict)
    yaml11_bools: dict[Parts, str] = field(default_factory=dict)


class _Ctor(yaml.constructor.SafeConstructor):
    pass


_CTOR = _Ctor()
_RESOLVER = yaml.resolver.Resolver()


def _scalar(ev: Any, file: str) -> tuple[Any, str | None]:
    """Value of a scalar event and, for YAML 1.1 booleans, the original spelling."""
    if ev.tag not in (None, "!"):
        raise _refuse(file, ev, f"tag '{ev.tag}' is not allowed", "remove the tag")
    if ev.style is not None and ev.style != "":  # quoted or block scalar: always a string
        return ev.value, None
    if not ev.implicit[0]:  # the non-specific tag '!': resolved as a string
        return _resolve_plain(ev.value, ev.implicit, file, ev)
    try:
        return _plain(ev.value)
    except _Unsupported as exc:
        raise _refuse(
            file, ev, f"unsupported scalar type {exc.args[0]}", "quote the value"
        ) from None


class _Unsupported(Exception):
    pass


@functools.lru_cache(maxsize=4096)
def _plain(value: str) -> tuple[Any, str | None]:
    """A plain scalar's value (a pure function of its text, so results are shared)."""
    return _resolve_plain(value, (True, False), "", None)


def _resolve_plain(
    value: str, implicit: tuple[bool, bool], file: str, ev: Any
) -> tuple[Any, str | None]:
    tag = _RESOLVER.resolve(yaml.ScalarNode, value, implicit)  # type: ignore[no-untyped-call]
    if tag == "tag:yaml.org,2002:str":
        if _FLOAT_NO_DOT.match(value):
            return float(value.replace("_", "")), None
        return value, None
    if tag == "tag:yaml.org,2002:timestamp":
        return value, None  # left for the schema to parse (dates, datetimes)
    if tag == "tag:yaml.org,2002:merge":
        return "<<", None
    if tag not in _CORE:
        if ev is None:
            raise _Unsupported(tag)
        raise _refuse(file, ev, f"unsupported scalar type {tag}", "quote the value")
    result = _CTOR.yaml_constructors[tag](_CTOR, yaml.ScalarNode(tag, value))
    trap = value if tag.endswith(":bool") and value.lower() not in _BOOL_TRUE_FALSE else None
    return result, trap


def _refuse(file: str, ev: Any, msg: str, hint: str) -> ConfigParseError:
    line = ev.start_mark.line + 1 if getattr(ev, "start_mark", None) else None
    return ConfigParseError(msg, file=file, line=line, hint=hint)


def _key_text(key: Any) -> str:
    return key if isinstance(key, str) else repr(key)


# One open container while building: [container, path, anchor, nodes at start, awaiting a
# value (mappings), key -> line seen so far (mappings), is a list, line].
_Frame = list[Any]


class _Builder:
    """Builds plain data from libyaml's event stream, enforcing the limits while it reads.

    One flat loop (this is the hot path of every load): a stack of open containers, the keys
    waiting for their values, the line of every path and the YAML 1.1 boolean traps.
    """

    def __init__(self, file: str, limits: Limits) -> None:
        self.file = file
        self.limits = limits
        self.out = ParsedYaml(data={})

    def build(self, events: Any) -> ParsedYaml:
        file, limits = self.file, self.limits
        max_depth, max_nodes = limits.max_depth, limits.max_nodes
        lines, bools = self.out.lines, self.out.yaml11_bools
        anchors: dict[str, tuple[Any, int]] = {}
        stack: list[_Frame] = []
        pending: list[tuple[Any, int | None]] = []  # keys waiting for their values
        root: Any = None
        docs = nodes = expansions = 0
        for ev in events:
            cls = type(ev)
            if cls is _SCALAR or cls is _MAP_START or cls is _SEQ_START or cls is _ALIAS:
                # Where this node goes: its path, and whether it is a mapping key.
                is_key = False
                if not stack:
                    path: Parts = ()
                    line: int = ev.start_mark.line + 1
                else:
                    top = stack[-1]
                    if top[6]:
                        path = (*top[1], len(top[0]))
                        line = ev.start_mark.line + 1
                    elif top[4]:
                        key, key_line = pending[-1]
                        path = (*top[1], _key_text(key))
                        line = key_line if isinstance(key_line, int) else ev.start_mark.line + 1
                    else:
                        is_key = True
                        path = (*top[1], "<key>")
                        line = ev.start_mark.line + 1
                if cls is _ALIAS:
                    if ev.anchor not in anchors:
                        raise _refuse(file, ev, f"unknown alias *{ev.anchor}", "define it")
                    expansions += 1
                    if expansions > limits.max_alias_expansions:
                        raise _refuse(file, ev, "too many alias expansions", "write values out")
                    value, size = anchors[ev.anchor]
                    nodes += size
                    if nodes > max_nodes:
                        raise self._bomb(ev)
                    value = _deep_copy(value)
                    if not is_key:
                        lines.setdefault(path, line)
                    self._attach(value, ev.start_mark.line + 1, stack, pending)
                    if not stack:
                        root = value
                    continue
                if len(stack) >= max_depth:
                    raise _refuse(file, ev, f"nesting deeper than {max_depth}", "flatten it")
                nodes += 1
                if nodes > max_nodes:
                    raise self._bomb(ev)
                if cls is _SCALAR:
                    value, trap = _scalar(ev, file)
                    if not is_key:
                        if trap is not None:
                            bools[path] = trap
                        lines.setdefault(path, line)
                    if ev.anchor:
                        anchors[ev.anchor] = (value, 1)
                    self._attach(value, ev.start_mark.line + 1, stack, pending)
                    if not stack:
                        root = value
                    continue
                if ev.tag not in (None, "!"):
                    raise _refuse(file, ev, f"tag '{ev.tag}' is not allowed", "remove it")
                if not is_key:
                    lines.setdefault(path, line)
                is_list = cls is _SEQ_START
                frame = [[] if is_list else {}, path, ev.anchor, nodes, False, {}, is_list, line]
                stack.append(frame)
            elif cls is _MAP_END or cls is _SEQ_END:
                value, path, anchor, start, *_, line = stack.pop()
                if anchor:
                    anchors[anchor] = (value, max(1, nodes - start))
                self._attach(value, line, stack, pending)
                if not stack:
                    root = value
            elif cls is _DOC_START:
                docs += 1
                if docs > 1:
                    raise _refuse(file, ev, "more than one YAML document", "keep one")
            elif cls not in _IGNORED:  # pragma: no cover - libyaml emits no other event kinds
                raise _refuse(file, ev, f"unexpected YAML event {cls.__name__}", "simplify")
        if docs == 0 or root is None:
            raise ConfigParseError(
                "the file is empty", file=file, hint="a config is a YAML mapping with meta:"
            )
        if not isinstance(root, dict):
            raise ConfigParseError(
                f"the top level is a {type(root).__name__}, not a mapping",
                file=file,
                line=1,
                hint="a config starts with 'meta:'",
            )
        self.out.data = root
        return self.out

    def _bomb(self, ev: Any) -> ConfigParseError:
        return _refuse(
            self.file,
            ev,
            f"document expands to more than {self.limits.max_nodes} nodes",
            "this looks like an alias bomb; write the values out",
        )

    def _attach(
        self, value: Any, line: int | None, stack: list[_Frame], pending: list[Any]
    ) -> None:
        if not stack:
            return
        top = stack[-1]
        container = top[0]
        if top[6]:
            container.append(value)
            return
        if not top[4]:
            if isinstance(value, (dict, list)):
                raise ConfigParseError(
                    "a mapping or list used as a key",
                    file=self.file,
                    line=line,
                    hint="keys must be plain strings",
                )
            pending.append((value, line))
            top[4] = True
            return
        key, key_line = pending.pop()
        top[4] = False
        if key == "<<" and isinstance(value, (dict, list)):
            for merged in value if isinstance(value, list) else [value]:
                if not isinstance(merged, dict):
                    raise ConfigParseError("'<<' merges only mappings", file=self.file, line=line)
                for mk, mv in merged.items():
                    container.setdefault(mk, mv)
            return
        seen = top[5]
        if key in seen:
            where = str(KeyPath((*top[1], _key_text(key))))
            raise ConfigParseError(
                f"duplicate key '{_key_text(key)}' (first on line {seen[key]}, again on line "
                f"{key_line})",
                file=self.file,
                line=key_line,
                path=where,
                hint="keep one of them",
            )
        seen[key] = key_line
        container[key] = value


_SCALAR = yaml.ScalarEvent
_ALIAS = yaml.AliasEvent
_MAP_START, _MAP_END = yaml.MappingStartEvent, yaml.MappingEndEvent
_SEQ_START, _SEQ_END = yaml.SequenceStartEvent, yaml.SequenceEndEvent
_DOC_START = yaml.DocumentStartEvent
_IGNORED = (yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentEndEvent)


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def parse_yaml(data: bytes, file: str, limits: Limits | None = None) -> ParsedYaml:
    """Parse config bytes under the hardened profile; raise ConfigParseError on anything else."""
    limits = limits or Limits()
    if len(data) > limits.max_bytes:
        raise ConfigParseError(
            f"file is {len(data)} bytes, over the {limits.max_bytes}-byte limit",
            file=file,
            hint="configs are small; split data out of the config",
        )
    if not data.strip():
        raise ConfigParseError("the file is empty", file=file, hint="a config starts with 'meta:'")
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise ConfigParseError("NUL byte in file", file=file, line=line, hint="is it binary?")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigParseError(
            f"invalid UTF-8 at byte {exc.start}", file=file, line=line, hint="save it as UTF-8"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        return _Builder(file, limits).build(yaml.parse(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = mark.line + 1 if mark else None
        problem = (exc.problem or exc.context or "malformed YAML").strip()
        if "maximum nesting depth" in problem:
            # PyYAML >= 6.0.4 caps nesting in its scanner, which reads ahead of our event check.
            raise ConfigParseError(
                f"nesting deeper than {limits.max_depth}", file=file, line=where, hint="flatten it"
            ) from None
        raise ConfigParseError(
            f"YAML syntax error: {problem}", file=file, line=where, hint="fix the syntax"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigParseError(
            f"YAML error: {str(exc).splitlines()[0]}", file=file, hint="fix the syntax"
        ) from None
