"""Planning and writing fork files: ``aiconfig fork`` and ``--sweep`` (a cartesian product).

Everything is typed, merged and validated (through the same code that loads fork files) before
any file is written; existing forks are never overwritten without ``force``; each file is
written atomically; the base is only read.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import ConfigFileError, ForkError, Problem
from ._files import atomic_write
from ._fork import render_fork, resolve_fork
from ._keypath import KeyPath
from ._overrides import (
    FieldTarget,
    check_overridable,
    normalize_edits,
    parse_assignment,
    split_values,
    type_value,
)
from ._schema import AIConfig
from ._yamlsafe import parse_yaml

__all__ = ["PlannedFork", "plan_forks", "point_name", "write_forks"]

_NAME_BAD = re.compile(r"[^A-Za-z0-9_.]+")
_MAX_NAME = 128


@dataclass(frozen=True)
class PlannedFork:
    path: Path
    name: str
    version: int
    overrides: dict[str, Any]
    data: bytes
    config: AIConfig
    exists: bool


def _slug(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return _NAME_BAD.sub("_", text).strip("_") or "x"


def point_name(name: str, labels: Sequence[str], values: Sequence[Any]) -> str:
    """Deterministic sweep point name: ``NAME-lr0.001-batch_size128``."""
    parts = [f"{label}{_slug(v)}" for label, v in zip(labels, values, strict=True)]
    return "-".join([name, *parts])[:_MAX_NAME]


def _label(path: KeyPath) -> str:
    """A sweep label: the leaf's name, or ``betas1_`` for item 1 of ``betas``."""
    if isinstance(path[-1], int) and len(path) > 1:
        return f"{_slug(str(path[-2]))}{path[-1]}_"
    return _slug(str(path[-1]))


def _labels(paths: Sequence[str]) -> list[str]:
    keys = [KeyPath.parse(p) for p in paths]
    leaves = [_label(k) for k in keys]
    if len(set(leaves)) == len(leaves):
        return leaves
    return [_slug("_".join(map(str, k))) for k in keys]


def _existing_version(path: Path) -> int | None:
    try:
        meta = parse_yaml(path.read_bytes(), str(path)).data.get("meta", {})
        return int(meta["version"]) if isinstance(meta, dict) else None
    except Exception:  # noqa: BLE001 - only a hint for numbering; the file is replaced anyway
        return None


def plan_forks(
    base_path: Path,
    base: AIConfig,
    *,
    name: str,
    sets: Sequence[str] = (),
    sweeps: Sequence[str] = (),
    out_dir: Path,
    version: int | None = None,
    description: str = "",
    force: bool = False,
) -> list[PlannedFork]:
    """Type, merge and validate every fork to be written; raise before anything is written."""
    base_bytes = base_path.read_bytes()
    if hashlib.sha256(base_bytes).hexdigest() != base.provenance.sha256 and base.provenance.sha256:
        raise ForkError(
            "the base changed while forking", file=str(base_path), hint="run the command again"
        )
    locked = tuple(base.meta.locked)
    problems: list[Problem] = []  # every problem of every --set / --sweep, reported at once

    def checked(text: str) -> tuple[str, str | None, FieldTarget] | None:
        try:
            path, raw = parse_assignment(text)
            field = check_overridable(path, locked)
        except ForkError as exc:
            problems.extend(exc.problems)
            return None
        return path, raw, field

    def typed(path: str, raws: Sequence[str | None]) -> list[Any] | None:
        try:
            return [type_value(path, raw) for raw in raws]
        except ForkError as exc:
            problems.extend(exc.problems)
            return None

    fixed: list[tuple[str, Any]] = []  # pairs: list edits such as a[+] may repeat
    for text in sets:
        assignment = checked(text)
        if assignment is None:
            continue
        path, raw, _ = assignment
        if path in dict(fixed) and not (path.endswith("[+]") or path.startswith("~")):
            problems.append(Problem(f"--set {path} given twice", path=path, hint="keep one"))
            continue
        values = typed(path, [raw])
        if values is not None:
            fixed.append((path, values[0]))
    axes: list[tuple[str, list[Any]]] = []
    for text in sweeps:
        assignment = checked(text)
        if assignment is None:
            continue
        path, raw, field = assignment
        if raw is None or field.op != "set":
            problems.append(
                Problem(
                    f"--sweep {path}: a sweep sets values; it cannot append or remove items",
                    path=path,
                    hint="sweep over a value (path=a,b) or an item (path[2]=a,b)",
                )
            )
            continue
        if path in dict(fixed) or any(path == p for p, _ in axes):
            problems.append(Problem(f"{path} is both set and swept", path=path, hint="keep one"))
            continue
        try:
            raws = split_values(raw)
        except ForkError as exc:
            problems.extend(exc.problems)
            continue
        swept = typed(path, raws)
        if swept is not None:
            axes.append((path, swept))
    if problems:
        raise ForkError(problems)
    labels = _labels([p for p, _ in axes])
    points = list(itertools.product(*(values for _, values in axes))) if axes else [()]
    rel = Path(os.path.relpath(base_path.resolve(), out_dir.resolve())).as_posix()
    plans: list[PlannedFork] = []
    seen: dict[str, int] = {}
    sweep_name = name if axes else None
    for index, point in enumerate(points):
        point_nm = point_name(name, labels, point) if axes else name
        if point_nm in seen:
            point_nm = f"{point_nm}-{index}"
        seen[point_nm] = index
        pairs = [*fixed, *((p, v) for (p, _), v in zip(axes, point, strict=True))]
        overrides = normalize_edits(base, pairs)  # list edits at concrete indexes
        target = out_dir / f"{point_nm}.yaml"
        exists = target.exists()
        if exists and not force:
            problems.append(
                Problem(
                    "refusing to overwrite an existing fork",
                    file=str(target),
                    hint="pass --force to replace it (its signature is removed; re-sign it), "
                    "or choose another --name",
                )
            )
            continue
        ver = version or ((_existing_version(target) or 0) + 1 if exists else 1)
        desc = description or (
            f"fork of {base.meta.name} v{base.meta.version}: "
            + (", ".join(f"{k}={json.dumps(v)}" for k, v in overrides.items()) or "no overrides")
        )
        sweep_note = (
            f"{sweep_name} point {index + 1}/{len(points)}: "
            + ", ".join(f"{p}={json.dumps(v)}" for (p, _), v in zip(axes, point, strict=True))
            if sweep_name
            else None
        )
        data = render_fork(
            base_rel=rel,
            base_sha256=hashlib.sha256(base_bytes).hexdigest(),
            name=point_nm,
            version=ver,
            description=desc,
            overrides=overrides,
            sweep=sweep_note,
        )
        parsed = parse_yaml(data, str(target))
        config = resolve_fork(
            parsed,
            data,
            str(target),
            signers=(),
            env=None,
            load_base=lambda _p, _d: base,
            known_base=(base_path, base_bytes),
        )
        plans.append(PlannedFork(target, point_nm, ver, overrides, data, config, exists))
    if problems:
        raise ForkError(problems)
    return plans


def _atomic_write(path: Path, data: bytes) -> None:
    try:
        atomic_write(path, data, mode=0o600)
    except OSError as exc:
        raise ConfigFileError(f"cannot write: {exc.strerror}", file=str(path)) from None


def write_forks(plans: Sequence[PlannedFork], *, sign_key: Path | None = None) -> list[Path]:
    """Write planned forks atomically (stale signatures of replaced files removed); sign them.

    Every signature is made in memory first, so a missing or unusable ``sign_key`` refuses the
    whole command before any file is written. A write that fails later removes the files this
    call created, so a rerun never meets a half-written sweep.
    """
    from ._trust import sig_path
    from ._trust.signing import add_signature, make_signature

    signatures = [make_signature(plan.data, sign_key)[0] for plan in plans] if sign_key else []
    written: list[Path] = []
    created: list[Path] = []
    try:
        for i, plan in enumerate(plans):
            _atomic_write(plan.path, plan.data)
            if not plan.exists:
                created.append(plan.path)
            if plan.exists:
                with contextlib.suppress(FileNotFoundError):
                    sig_path(plan.path).unlink()
            if signatures:
                try:
                    created.append(add_signature(plan.path, signatures[i]))
                except OSError as exc:
                    raise ConfigFileError(
                        f"cannot write: {exc.strerror}", file=str(sig_path(plan.path))
                    ) from None
            written.append(plan.path)
    except BaseException:
        for path in created:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    return written
