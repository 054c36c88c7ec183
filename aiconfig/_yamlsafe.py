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
    tag = _RESOLVER.resolve(yaml.ScalarNode, ev.value, ev.implicit)  # type: ignore[no-untyped-call]
    if tag == "tag:yaml.org,2002:str":
        if _FLOAT_NO_DOT.match(ev.value):
            return float(ev.value.replace("_", "")), None
        return ev.value, None
    if tag == "tag:yaml.org,2002:timestamp":
        return ev.value, None  # left for the schema to parse (dates, datetimes)
    if tag == "tag:yaml.org,2002:merge":
        return "<<", None
    if tag not in _CORE:
        raise _refuse(file, ev, f"unsupported scalar type {tag}", "quote the value")
    value = _CTOR.yaml_constructors[tag](_CTOR, yaml.ScalarNode(tag, ev.value))
    trap = ev.value if tag.endswith(":bool") and ev.value.lower() not in _BOOL_TRUE_FALSE else None
    return value, trap


def _refuse(file: str, ev: Any, msg: str, hint: str) -> ConfigParseError:
    line = ev.start_mark.line + 1 if getattr(ev, "start_mark", None) else None
    return ConfigParseError(msg, file=file, line=line, hint=hint)


def _key_text(key: Any) -> str:
    return key if isinstance(key, str) else repr(key)


class _Builder:
    def __init__(self, file: str, limits: Limits) -> None:
        self.file = file
        self.limits = limits
        self.nodes = 0
        self.expansions = 0
        self.anchors: dict[str, Any] = {}
        self.out = ParsedYaml(data={})

    def _count(self, ev: Any, n: int = 1) -> None:
        self.nodes += n
        if self.nodes > self.limits.max_nodes:
            raise _refuse(
                self.file,
                ev,
                f"document expands to more than {self.limits.max_nodes} nodes",
                "this looks like an alias bomb; write the values out",
            )

    def build(self, events: Any) -> ParsedYaml:
        # Iterative construction from the event stream; a stack holds open containers.
        stack: list[tuple[Any, Parts, str | None, dict[str, int]]] = []
        pending_key: list[Any] = []
        root: Any = None
        docs = 0
        for ev in events:
            kind = type(ev).__name__
            if kind in ("StreamStartEvent", "StreamEndEvent", "DocumentEndEvent"):
                continue
            if kind == "DocumentStartEvent":
                docs += 1
                if docs > 1:
                    raise _refuse(self.file, ev, "more than one YAML document", "keep one")
                continue
            if kind in ("MappingEndEvent", "SequenceEndEvent"):
                value, path, anchor, info = stack.pop()
                if anchor:
                    self.anchors[anchor] = (value, max(1, self.nodes - info["_start"]))
                self._attach_value(value, self.out.lines.get(path), stack, pending_key)
                if not stack:
                    root = value
                continue
            parent = stack[-1] if stack else None
            path = self._child_path(parent, pending_key)
            if kind == "AliasEvent":
                if ev.anchor not in self.anchors:
                    raise _refuse(self.file, ev, f"unknown alias *{ev.anchor}", "define it")
                self.expansions += 1
                if self.expansions > self.limits.max_alias_expansions:
                    raise _refuse(self.file, ev, "too many alias expansions", "write values out")
                value, size = self.anchors[ev.anchor]
                self._count(ev, size)
                value = _deep_copy(value)
                self.out.lines.setdefault(path, self._line_of(parent, pending_key, ev))
                self._attach(value, ev, stack, pending_key)
                if not stack:
                    root = value
                continue
            if len(stack) >= self.limits.max_depth:
                raise _refuse(
                    self.file, ev, f"nesting deeper than {self.limits.max_depth}", "flatten it"
                )
            self._count(ev)
            if kind == "ScalarEvent":
                value, trap = _scalar(ev, self.file)
                if path[-1:] != ("<key>",):
                    if trap is not None:
                        self.out.yaml11_bools[path] = trap
                    self.out.lines.setdefault(path, self._line_of(parent, pending_key, ev))
                if ev.anchor:
                    self.anchors[ev.anchor] = (value, 1)
                self._attach(value, ev, stack, pending_key)
                if not stack:
                    root = value
            elif kind in ("MappingStartEvent", "SequenceStartEvent"):
                if ev.tag not in (None, "!"):
                    raise _refuse(self.file, ev, f"tag '{ev.tag}' is not allowed", "remove it")
                self.out.lines.setdefault(path, self._line_of(parent, pending_key, ev))
                container: Any = {} if kind == "MappingStartEvent" else []
                stack.append((container, path, ev.anchor, {"_start": self.nodes}))
            else:  # pragma: no cover - libyaml emits no other event kinds
                raise _refuse(self.file, ev, f"unexpected YAML event {kind}", "simplify")
        if docs == 0 or root is None:
            raise ConfigParseError(
                "the file is empty", file=self.file, hint="a config is a YAML mapping with meta:"
            )
        if not isinstance(root, dict):
            raise ConfigParseError(
                f"the top level is a {type(root).__name__}, not a mapping",
                file=self.file,
                line=1,
                hint="a config starts with 'meta:'",
            )
        self.out.data = root
        return self.out

    @staticmethod
    def _line_of(parent: Any, pending_key: list[Any], ev: Any) -> int:
        """Line of the key for mapping values (where people look), else of the value."""
        if parent is not None and parent[3].get("awaiting_value") and pending_key:
            key_line = pending_key[-1][1]
            if isinstance(key_line, int):
                return key_line
        return int(ev.start_mark.line) + 1

    def _child_path(self, parent: Any, pending_key: list[Any]) -> Parts:
        if parent is None:
            return ()
        container, path, _, info = parent
        if isinstance(container, list):
            return (*path, len(container))
        if info.get("awaiting_value"):
            return (*path, _key_text(pending_key[-1][0]))
        return (*path, "<key>")

    def _attach(self, value: Any, ev: Any, stack: list[Any], pending: list[Any]) -> None:
        self._attach_value(value, ev.start_mark.line + 1, stack, pending)

    def _attach_value(
        self, value: Any, line: int | None, stack: list[Any], pending: list[Any]
    ) -> None:
        if not stack:
            return
        container, path, _, info = stack[-1]
        if isinstance(container, list):
            container.append(value)
            return
        if not info.get("awaiting_value"):
            if isinstance(value, (dict, list)):
                raise ConfigParseError(
                    "a mapping or list used as a key",
                    file=self.file,
                    line=line,
                    hint="keys must be plain strings",
                )
            pending.append((value, line))
            info["awaiting_value"] = True
            return
        key, key_line = pending.pop()
        info["awaiting_value"] = False
        if key == "<<" and isinstance(value, (dict, list)):
            for merged in value if isinstance(value, list) else [value]:
                if not isinstance(merged, dict):
                    raise ConfigParseError("'<<' merges only mappings", file=self.file, line=line)
                for mk, mv in merged.items():
                    container.setdefault(mk, mv)
            return
        seen = info.setdefault("lines", {})
        if key in seen:
            where = str(KeyPath((*path, key)))
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
        raise ConfigParseError(
            f"YAML syntax error: {problem}", file=file, line=where, hint="fix the syntax"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigParseError(
            f"YAML error: {str(exc).splitlines()[0]}", file=file, hint="fix the syntax"
        ) from None
