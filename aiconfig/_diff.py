"""Semantic diff of resolved configs (DeepDiff underneath), for terminals, PRs and tools.

Both sides are loaded for review: signatures are checked and reported (a pull request may
carry a change nobody has signed yet), but a missing signature does not stop the diff, and
no anti-rollback state is recorded. Values are compared after env interpolation and schema
defaults, so only real changes show; secret values are never compared or shown.

How it stays fast: a flat dotted-path pass over both configs (about 1 ms for 2000 leaves)
keeps only the leaves that differ; DeepDiff then classifies exactly those (value vs type
change, list items added/removed/changed, float tolerance through ``math_epsilon``). Raw
DeepDiff on the whole 2000-leaf dicts costs about 57 ms; see ``benchmarks/bench_fork_diff.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ._errors import AiconfigError
from ._keypath import KeyPath, Parts
from ._schema import AIConfig

__all__ = [
    "Change",
    "ConfigDiff",
    "Side",
    "diff_configs",
    "diff_files",
    "diff_sides",
    "review_load",
]

Kind = Literal["changed", "added", "removed", "type_changed"]


@dataclass(frozen=True)
class Change:
    """One difference at one dotted path (``model.action_space[2]`` for a list item)."""

    path: str
    kind: Kind
    old: Any = None
    new: Any = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "kind": self.kind}
        if self.kind != "added":
            out["old"] = self.old
        if self.kind != "removed":
            out["new"] = self.new
        return out


@dataclass(frozen=True)
class Side:
    """One side of a diff: a loaded config or the reason it could not be loaded."""

    file: str
    config: AIConfig | None = None
    error: str | None = None
    trust_problem: str | None = None  # why the signature check failed (the diff goes on)
    emergency: tuple[dict[str, Any], ...] = ()  # active emergency overrides (not in the diff)
    emergency_problems: tuple[str, ...] = ()  # override files a load would refuse

    @property
    def signers(self) -> list[str]:
        if self.config is None:
            return []
        return sorted({s.principal for s in self.config.provenance.signers})

    @property
    def base(self) -> str | None:
        if self.config is None or len(self.config.provenance.lineage) < 2:
            return None
        base = self.config.provenance.lineage[-1].get("base")
        return str(base) if base is not None else None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"file": self.file}
        if self.error is not None:
            out["error"] = self.error
        if self.config is not None:
            meta = self.config.meta
            out.update(
                name=meta.name,
                version=meta.version,
                expires=meta.expires.isoformat() if meta.expires else None,
                sha256=self.config.provenance.sha256,
                signers=self.signers,
                base=self.base,
            )
        if self.trust_problem is not None:
            out["trust_problem"] = self.trust_problem
        if self.emergency:
            out["emergency"] = list(self.emergency)
        if self.emergency_problems:
            out["emergency_problems"] = list(self.emergency_problems)
        return out


@dataclass(frozen=True)
class ConfigDiff:
    """Everything that differs between two configs."""

    old: Side | None
    new: Side | None
    changes: tuple[Change, ...] = ()  # config values (everything but meta)
    meta_changes: tuple[Change, ...] = ()  # meta.version, meta.expires, meta.name, ...
    label: str = ""  # the file this entry is about (PR mode)
    status: str = "modified"  # modified | added | removed | base-changed | error
    note: str = ""
    signer_changes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def differs(self) -> bool:
        if self.status != "modified":
            return True
        return bool(self.changes or self.meta_changes or self.signer_changes)

    @property
    def verdict(self) -> str:
        """What a reader is told: the status, or ``identical`` for a "modified" file whose
        resolved config did not change at all (comments or formatting only)."""
        return "identical" if self.status == "modified" and not self.differs else self.status

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "status": self.status,
            "differs": self.differs,
            "note": self.note,
            "old": self.old.summary() if self.old else None,
            "new": self.new.summary() if self.new else None,
            "changes": [c.to_dict() for c in self.changes],
            "meta_changes": [c.to_dict() for c in self.meta_changes],
            "signers": self.signer_changes,
        }


def review_load(
    path: str | os.PathLike[str],
    *,
    keys: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    data: bytes | None = None,
) -> Side:
    """Load ``path`` for review: signature problems are reported, not fatal; nothing recorded."""
    from ._loader import read_config_bytes

    file = str(path)
    try:
        raw = data if data is not None else read_config_bytes(path)
        config, problem = _review_bytes(Path(path), raw, keys, env)
    except AiconfigError as exc:
        return Side(file, error=str(exc).splitlines()[0])
    side = Side(file, config=config, trust_problem=problem)
    # Bytes handed in (another revision's) are not the file on disk, and the overrides in
    # emergency/ beside it belong to the file on disk: they are shown only for that.
    return _with_emergency(side, raw, keys) if data is None else side


def _with_emergency(side: Side, data: bytes, keys: str | os.PathLike[str] | None) -> Side:
    """The side with the emergency overrides active on its file (shown, not diffed)."""
    path = Path(side.file)
    if side.config is None or not (path.parent / "emergency").is_dir():
        return side
    from dataclasses import replace

    from ._emergency import review_overrides

    active, problems = review_overrides(path, data, side.config, keys=keys)
    return replace(side, emergency=tuple(active), emergency_problems=tuple(problems))


def _review_bytes(
    path: Path,
    data: bytes,
    keys: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None,
) -> tuple[AIConfig, str | None]:
    """Load in the loader's read-only ``review`` mode: the config and any trust problem."""
    from ._loader import load_trusted

    loaded = load_trusted(path, mode="review", data=data, keys=keys, env=env)
    problem = loaded.trust_problem
    return loaded.config, (str(problem).splitlines()[0] if problem is not None else None)


def _flatten(node: Mapping[str, Any], prefix: Parts, out: dict[Parts, Any]) -> None:
    for key, value in node.items():
        here = (*prefix, key)
        if isinstance(value, dict) and value:
            _flatten(value, here, out)
        else:
            out[here] = value


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b) or a != b:
        return False
    if isinstance(a, list):
        return json.dumps(a) == json.dumps(b)
    return True


def _put(tree: dict[str, Any], key: Parts, value: Any) -> None:
    node = tree
    for part in key[:-1]:
        node = node.setdefault(str(part), {})
    node[str(key[-1])] = value


def _parents(tree: dict[str, Any], full: Mapping[str, Any], key: Parts) -> None:
    """Create in ``tree`` the dicts along ``key`` that exist in ``full``."""
    node, src = tree, full
    for part in key[:-1]:
        child = src.get(str(part)) if isinstance(src, Mapping) else None
        if not isinstance(child, dict):
            return
        node = node.setdefault(str(part), {})
        src = child


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return str(value)


_KINDS: dict[str, Kind] = {
    "values_changed": "changed",
    "type_changes": "type_changed",
    "dictionary_item_added": "added",
    "iterable_item_added": "added",
    "dictionary_item_removed": "removed",
    "iterable_item_removed": "removed",
}


def diff_configs(
    old: AIConfig, new: AIConfig, *, float_tol: float | None = None
) -> tuple[list[Change], list[Change]]:
    """(value changes, meta changes) between two configs, sorted by path."""
    from deepdiff import DeepDiff

    dump_a, dump_b = old.model_dump(mode="json"), new.model_dump(mode="json")
    a: dict[Parts, Any] = {}
    b: dict[Parts, Any] = {}
    _flatten(dump_a, (), a)
    _flatten(dump_b, (), b)
    pruned_a: dict[str, Any] = {}
    pruned_b: dict[str, Any] = {}
    for key, value in a.items():
        if key not in b:
            _put(pruned_a, key, value)
            _parents(pruned_b, dump_b, key)  # so DeepDiff sees the key removed, not the parent
        elif not _same(value, b[key]):
            _put(pruned_a, key, value)
    for key, value in b.items():
        if key not in a:
            _put(pruned_b, key, value)
            _parents(pruned_a, dump_a, key)
        elif not _same(value, a[key]):
            _put(pruned_b, key, value)
    if not pruned_a and not pruned_b:
        return [], []
    # threshold_to_diff_deeper=0: the pruned trees share few keys by construction; never
    # collapse a dict into one whole-value change.
    # ignore_private_variables=False: a map key such as "__x" is data, not a private attribute.
    kwargs: dict[str, Any] = {
        "verbose_level": 2,
        "view": "tree",
        "threshold_to_diff_deeper": 0,
        "ignore_private_variables": False,
    }
    if float_tol:
        kwargs["math_epsilon"] = float_tol
    tree = DeepDiff(pruned_a, pruned_b, **kwargs)
    changes: list[tuple[list[Any], Change]] = []
    for report, kind in _KINDS.items():
        for level in tree.get(report, ()):
            parts = level.path(output_format="list")
            old_v = None if kind == "added" else _json_safe(level.t1)
            new_v = None if kind == "removed" else _json_safe(level.t2)
            changes.append((parts, Change(str(KeyPath(parts)), kind, old_v, new_v)))
    unknown = set(tree) - set(_KINDS)
    if unknown:  # never silently drop a difference DeepDiff found
        for report in sorted(unknown):
            changes.append(([report], Change(report, "changed", None, str(tree[report]))))
    changes.sort(key=lambda pc: [(isinstance(p, int), str(p).zfill(8)) for p in pc[0]])
    values = [c for parts, c in changes if parts[:1] != ["meta"]]
    meta = [c for parts, c in changes if parts[:1] == ["meta"]]
    return values, meta


def diff_sides(
    old: Side | None,
    new: Side | None,
    *,
    float_tol: float | None = None,
    label: str = "",
    status: str = "modified",
    note: str = "",
) -> ConfigDiff:
    """Diff two loaded sides; a side that failed to load makes an ``error`` entry."""
    for side in (old, new):
        if side is not None and side.error is not None:
            return ConfigDiff(old, new, label=label, status="error", note=side.error)
    if old is None or new is None or old.config is None or new.config is None:
        return ConfigDiff(old, new, label=label, status=status, note=note)
    values, meta = diff_configs(old.config, new.config, float_tol=float_tol)
    values = _hide_env(values, old.config, new.config)
    signer_changes: dict[str, list[str]] = {}
    before, after = set(old.signers), set(new.signers)
    if before != after:
        signer_changes = {"added": sorted(after - before), "removed": sorted(before - after)}
    return ConfigDiff(
        old,
        new,
        tuple(values),
        tuple(meta),
        label=label,
        status=status,
        note=note,
        signer_changes=signer_changes,
    )


def _hide_env(changes: list[Change], old: AIConfig, new: AIConfig) -> list[Change]:
    """Values that came from the environment are never shown, only the variable's name."""

    def env_source(config: AIConfig, path: str) -> str | None:
        for key, source in config.provenance.sources.items():
            if source.startswith("env:") and (
                key == path or key.startswith((path + ".", path + "["))
            ):
                return source
        return None

    out = []
    for change in changes:
        was, now = env_source(old, change.path), env_source(new, change.path)
        out.append(
            Change(
                change.path,
                change.kind,
                f"<from {was}>" if was and change.old is not None else change.old,
                f"<from {now}>" if now and change.new is not None else change.new,
            )
        )
    return out


def diff_files(
    old: str | os.PathLike[str],
    new: str | os.PathLike[str],
    *,
    keys: str | os.PathLike[str] | None = None,
    float_tol: float | None = None,
    env: Mapping[str, str] | None = None,
) -> ConfigDiff:
    """Diff two config files (baselines or forks); raises when either cannot be loaded."""
    from ._loader import read_config_bytes

    sides = []
    for path in (old, new):
        raw = read_config_bytes(path)
        config, problem = _review_bytes(Path(path), raw, keys, env)
        sides.append(_with_emergency(Side(str(path), config, trust_problem=problem), raw, keys))
    return diff_sides(sides[0], sides[1], float_tol=float_tol, label=str(new))
