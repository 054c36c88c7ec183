"""JSON Schema (draft 2020-12) for config files and fork files, generated from the models.

The schemas are for editors (the YAML language server gives completion, hover text and inline
errors from them) and for tools such as ``check-jsonschema``. They are derived from the pydantic
models with three adjustments, because pydantic's own ``model_json_schema()`` describes Python
input, not the YAML a person writes:

* ``${oc.env:VAR,default}`` and ``${dotted.path}`` strings are accepted wherever the loader
  accepts them: on every scalar whose model type takes its value from a string (numbers,
  booleans, string enums, URLs, dates). Not on integer enums (``sample_rate: 44100``) and strict
  fields (``meta.version``), which the models refuse as strings, and not inside a fork's own
  ``fork:``/``meta:`` (only its ``overrides`` are interpolated).
* ``meta.expires`` takes a YAML date (``2027-06-30``) or a date-time, as editors and
  ``check-jsonschema`` read them (strings), instead of pydantic's ``format: date-time``.
* A fork's ``overrides`` lists every dotted path a fork may set, each with the schema of the
  field it sets, so a typo'd path is flagged in the editor too.

``aiconfig schema [--fork|--any]`` prints them; the same text is shipped in
``aiconfig/schemas/`` and a test keeps the shipped files equal to the models.
"""

from __future__ import annotations

import copy
import json
import re
from importlib import resources
from typing import Any, Literal

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from ._fork import ForkDocument
from ._schema import AIConfig

__all__ = [
    "SCHEMA_FILES",
    "SchemaKind",
    "generate_schema",
    "schema_text",
    "shipped_schema_text",
]

SchemaKind = Literal["config", "fork", "any"]
SCHEMA_FILES: dict[SchemaKind, str] = {
    "config": "config.schema.json",
    "fork": "fork.schema.json",
    "any": "aiconfig.schema.json",
}
DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "https://aiconfig.dev/schemas/"

_NOT_FROM_STRING = "x-aiconfig-not-from-string"  # internal marker, removed before output
_INTERPOLATION: JsonSchemaValue = {
    "type": "string",
    "pattern": r"\$\{\s*(oc\.env\s*:[^}]*|[A-Za-z_][\w.]*)\s*\}",
    "description": "an interpolation, resolved when the config is loaded: "
    "${oc.env:VAR}, ${oc.env:VAR,default} or ${dotted.path}",
}
# The loader interpolates every string holding "${" (and refuses a malformed one).
_INTERPOLATION_LIKE: JsonSchemaValue = {"type": "string", "pattern": r"\$\{"}
# A YAML date or date-time as editors read it (a string): 2027-06-30, 2027-06-30T12:00:00Z.
_DATE_OR_DATETIME = (
    r"^\d{4}-\d{2}-\d{2}"
    r"([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*([Zz]|[+-]\d{2}(:?\d{2})?)?)?$"
)
_SCALAR_TYPES = {"string", "number", "integer", "boolean", "null"}
# Keys that make a string schema refuse some strings (so "${...}" would be refused too).
_STRING_LIMITS = ("pattern", "enum", "const", "maxLength", "format")


class _Generator(GenerateJsonSchema):
    """pydantic's generator, marking what the models refuse as a string and writing dates."""

    def literal_schema(self, schema: core_schema.LiteralSchema) -> JsonSchemaValue:
        js = super().literal_schema(schema)
        if any(not isinstance(v, str) for v in schema["expected"]):
            js[_NOT_FROM_STRING] = True
        return js

    def int_schema(self, schema: core_schema.IntSchema) -> JsonSchemaValue:
        js = super().int_schema(schema)
        if schema.get("strict"):
            js[_NOT_FROM_STRING] = True
        return js

    def datetime_schema(self, schema: core_schema.DatetimeSchema) -> JsonSchemaValue:
        return {
            "type": "string",
            "pattern": _DATE_OR_DATETIME,
            "description": "a date (2027-06-30, midnight UTC) or a date-time "
            "(2027-06-30T12:00:00Z; no zone means UTC)",
        }

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False  # "Window Title" for window_title adds noise to hover text


def _accepts_any_string(js: JsonSchemaValue) -> bool:
    if "anyOf" in js:
        return any(_accepts_any_string(b) for b in js["anyOf"])
    return js.get("type") == "string" and not any(k in js for k in _STRING_LIMITS)


def _is_scalar(js: JsonSchemaValue) -> bool:
    if "anyOf" in js:
        return all(_is_scalar(b) for b in js["anyOf"])
    if "$ref" in js:
        return False
    if "enum" in js or "const" in js:
        return True
    return js.get("type") in _SCALAR_TYPES


def _not_from_string(js: JsonSchemaValue) -> bool:
    if "anyOf" in js:
        return any(_not_from_string(b) for b in js["anyOf"] if b.get("type") != "null")
    return bool(js.get(_NOT_FROM_STRING))


def _strip_markers(js: Any) -> Any:
    if isinstance(js, dict):
        return {k: _strip_markers(v) for k, v in js.items() if k != _NOT_FROM_STRING}
    if isinstance(js, list):
        return [_strip_markers(v) for v in js]
    return js


_ANNOTATIONS = ("description", "default", "title", "examples")


def _allow_interpolation(js: JsonSchemaValue) -> JsonSchemaValue:
    """``js`` (a value's schema) with ``${...}`` accepted on every scalar that takes a string."""
    if _is_scalar(js):
        if _accepts_any_string(js) or _not_from_string(js):
            return js
        outer = {k: js[k] for k in _ANNOTATIONS if k in js}
        inner = {k: v for k, v in js.items() if k not in _ANNOTATIONS}
        # if/then/else rather than anyOf: a wrong value is then reported against the field's
        # own schema ("1.5 is greater than the maximum of 1.0"), not against a string branch.
        return {
            **outer,
            "if": {"$ref": "#/$defs/InterpolationLike"},
            "then": {"$ref": "#/$defs/Interpolation"},
            "else": inner,
        }
    out = dict(js)
    if "anyOf" in js:
        out["anyOf"] = [_allow_interpolation(b) for b in js["anyOf"]]
    if isinstance(js.get("properties"), dict):
        out["properties"] = {k: _allow_interpolation(v) for k, v in js["properties"].items()}
    if isinstance(js.get("additionalProperties"), dict):
        out["additionalProperties"] = _allow_interpolation(js["additionalProperties"])
    if isinstance(js.get("items"), dict):
        out["items"] = _allow_interpolation(js["items"])
    if isinstance(js.get("prefixItems"), list):
        out["prefixItems"] = [_allow_interpolation(v) for v in js["prefixItems"]]
    return out


def _raw(model: type[Any]) -> JsonSchemaValue:
    js: JsonSchemaValue = model.model_json_schema(
        mode="validation", schema_generator=_Generator, ref_template="#/$defs/{model}"
    )
    return js


def _config_schema() -> JsonSchemaValue:
    raw = _raw(AIConfig)
    defs = {name: _allow_interpolation(d) for name, d in raw.pop("$defs", {}).items()}
    defs["Interpolation"] = _INTERPOLATION
    defs["InterpolationLike"] = _INTERPOLATION_LIKE
    body = _allow_interpolation(raw)
    return {**body, "$defs": dict(sorted(defs.items()))}


_KEY_SEGMENT = r'(?:"[^"]*"|[^".\[\]]+)'  # a map key: plain, or quoted when it holds dots


def _override_paths(
    node: JsonSchemaValue, defs: dict[str, JsonSchemaValue], prefix: str
) -> tuple[dict[str, JsonSchemaValue], dict[str, JsonSchemaValue]]:
    """(dotted path -> value schema, path regex -> value schema) for every overridable leaf."""
    props: dict[str, JsonSchemaValue] = {}
    patterns: dict[str, JsonSchemaValue] = {}
    for key, sub in node.get("properties", {}).items():
        if not prefix and key == "meta":
            continue  # a fork sets its own meta
        dotted = f"{prefix}{key}"
        target = defs[sub["$ref"].rsplit("/", 1)[1]] if "$ref" in sub else sub
        if "properties" in target:
            inner_props, inner_patterns = _override_paths(target, defs, f"{dotted}.")
            props.update(inner_props)
            patterns.update(inner_patterns)
            continue
        props[dotted] = sub
        value = target.get("additionalProperties")
        if target.get("type") == "object" and isinstance(value, dict):
            patterns[f"^{re.escape(dotted)}\\.{_KEY_SEGMENT}$"] = value
        if target.get("type") == "array":
            patterns.update(_item_patterns(dotted, target))
    return props, patterns


def _item_patterns(dotted: str, array: JsonSchemaValue) -> dict[str, JsonSchemaValue]:
    """List-item override keys: ``path[N]`` sets, ``path[+]`` appends, ``~path[N]`` removes."""
    where = re.escape(dotted)
    fixed = array.get("prefixItems")
    if isinstance(fixed, list):  # a fixed-length list: items are set, never added or removed
        item = fixed[0] if all(f == fixed[0] for f in fixed) else {"anyOf": fixed}
        return {f"^{where}\\[[0-{len(fixed) - 1}]\\]$": item}
    item = array.get("items", {})
    return {
        f"^{where}\\[(\\d+|\\+)\\]$": item,
        f"^~{where}\\[\\d+\\]$": {"anyOf": [item, {"type": "null"}]},
    }


def _fork_schema(config: JsonSchemaValue) -> JsonSchemaValue:
    raw = _raw(ForkDocument)
    defs = raw.pop("$defs", {})
    cfg_defs = config["$defs"]
    props, patterns = _override_paths(config, cfg_defs, "")
    overrides: JsonSchemaValue = {
        "type": "object",
        "description": "dotted config paths and their new values; quote a map key holding a "
        'dot: monitoring.latency_thresholds_ms."Qwen/Qwen2.5-0.5B-Instruct"',
        "default": {},
        "properties": props,
        "patternProperties": patterns,
        "additionalProperties": False,
    }
    raw["properties"]["overrides"] = overrides
    used = {"Interpolation", "InterpolationLike"} | _refs_in(overrides)
    for name in sorted(used):
        defs[name] = cfg_defs[name]
    return {**raw, "$defs": dict(sorted(defs.items()))}


def _refs_in(js: Any) -> set[str]:
    if isinstance(js, dict):
        found = {js["$ref"].rsplit("/", 1)[1]} if "$ref" in js else set()
        for v in js.values():
            found |= _refs_in(v)
        return found
    if isinstance(js, list):
        return set().union(*(_refs_in(v) for v in js)) if js else set()
    return set()


def _any_schema(config: JsonSchemaValue, fork: JsonSchemaValue) -> JsonSchemaValue:
    defs: dict[str, JsonSchemaValue] = {}
    for name, d in (*config["$defs"].items(), *fork["$defs"].items()):
        if name in defs and defs[name] != d:  # pragma: no cover - model names are unique
            raise RuntimeError(f"two different schemas are both named {name}")
        defs[name] = d
    defs["ConfigFile"] = {k: v for k, v in config.items() if k != "$defs"}
    defs["ForkFile"] = {k: v for k, v in fork.items() if k != "$defs"}
    return {
        "description": "an aiconfig file: a config (baseline), or a fork (a file with a "
        "top-level 'fork:' key) of one",
        "if": {"type": "object", "required": ["fork"]},
        "then": {"$ref": "#/$defs/ForkFile"},
        "else": {"$ref": "#/$defs/ConfigFile"},
        "$defs": dict(sorted(defs.items())),
    }


def generate_schema(kind: SchemaKind = "config") -> dict[str, Any]:
    """The JSON Schema for ``kind``: a config file, a fork file, or either (``any``)."""
    config = _config_schema()
    if kind == "config":
        body = config
        title = "aiconfig config"
    elif kind == "fork":
        body = _fork_schema(config)
        title = "aiconfig fork"
    else:
        body = _any_schema(config, _fork_schema(config))
        title = "aiconfig file"
    head = {"$schema": DIALECT, "$id": ID_BASE + SCHEMA_FILES[kind], "title": title}
    rest = {k: v for k, v in body.items() if k != "title"}
    result: dict[str, Any] = _strip_markers({**head, **copy.deepcopy(rest)})
    return result


def schema_text(kind: SchemaKind = "config") -> str:
    """The schema as shipped: indented JSON with a final newline (stable, diff-friendly)."""
    return json.dumps(generate_schema(kind), indent=2, ensure_ascii=False) + "\n"


def shipped_schema_text(kind: SchemaKind = "config") -> str:
    """The schema file shipped inside the package (``aiconfig/schemas/``)."""
    return (
        resources.files("aiconfig")
        .joinpath("schemas", SCHEMA_FILES[kind])
        .read_text(encoding="utf-8")
    )
