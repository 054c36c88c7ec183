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


_Edit = tuple[str, Any]  # one --set pair: the path and its typed value
_Axis = tuple[str, list[Any]]  # one --sweep axis: the path and its typed values


class _Edits:
    """The ``--set`` pairs and ``--sweep`` axes of one command, with every problem of any of them.

    Each assignment is parsed, checked against the base's locked paths and typed; a bad one is
    recorded in ``problems`` and left out, so that one run reports them all at once.
    """

    def __init__(self, locked: tuple[str, ...]) -> None:
        self.locked = locked
        self.problems: list[Problem] = []
        self.fixed: list[_Edit] = []  # pairs: list edits such as a[+] may repeat
        self.axes: list[_Axis] = []

    def _checked(self, text: str) -> tuple[str, str | None, FieldTarget] | None:
        try:
            path, raw = parse_assignment(text)
            field = check_overridable(path, self.locked)
        except ForkError as exc:
            self.problems.extend(exc.problems)
            return None
        return path, raw, field

    def _typed(self, path: str, raws: Sequence[str | None]) -> list[Any] | None:
        try:
            return [type_value(path, raw) for raw in raws]
        except ForkError as exc:
            self.problems.extend(exc.problems)
            return None

    def add_set(self, text: str) -> None:
        assignment = self._checked(text)
        if assignment is None:
            return
        path, raw, _ = assignment
        if path in dict(self.fixed) and not (path.endswith("[+]") or path.startswith("~")):
            self.problems.append(Problem(f"--set {path} given twice", path=path, hint="keep one"))
            return
        values = self._typed(path, [raw])
        if values is not None:
            self.fixed.append((path, values[0]))

    def add_sweep(self, text: str) -> None:
        assignment = self._checked(text)
        if assignment is None:
            return
        path, raw, field = assignment
        if raw is None or field.op != "set":
            self.problems.append(
                Problem(
                    f"--sweep {path}: a sweep sets values; it cannot append or remove items",
                    path=path,
                    hint="sweep over a value (path=a,b) or an item (path[2]=a,b)",
                )
            )
            return
        if path in dict(self.fixed) or any(path == p for p, _ in self.axes):
            self.problems.append(
                Problem(f"{path} is both set and swept", path=path, hint="keep one")
            )
            return
        try:
            raws = split_values(raw)
        except ForkError as exc:
            self.problems.extend(exc.problems)
            return
        swept = self._typed(path, raws)
        if swept is not None:
            self.axes.append((path, swept))


def _parse_edits(
    sets: Sequence[str], sweeps: Sequence[str], locked: tuple[str, ...]
) -> tuple[list[_Edit], list[_Axis]]:
    """The typed ``--set`` pairs and ``--sweep`` axes; all their problems raised at once."""
    edits = _Edits(locked)
    for text in sets:
        edits.add_set(text)
    for text in sweeps:
        edits.add_sweep(text)
    if edits.problems:
        raise ForkError(edits.problems)
    return edits.fixed, edits.axes


def _point_names(name: str, axes: Sequence[_Axis], points: Sequence[tuple[Any, ...]]) -> list[str]:
    """One file name per point (``name`` alone without a sweep); a repeated one gets ``-INDEX``."""
    labels = _labels([p for p, _ in axes])
    names: list[str] = []
    seen: set[str] = set()
    for index, point in enumerate(points):
        point_nm = point_name(name, labels, point) if axes else name
        if point_nm in seen:
            point_nm = f"{point_nm}-{index}"
        seen.add(point_nm)
        names.append(point_nm)
    return names


def _refuse_overwrite(target: Path) -> Problem:
    return Problem(
        "refusing to overwrite an existing fork",
        file=str(target),
        hint="pass --force to replace it (its signature is removed; re-sign it), "
        "or choose another --name",
    )


def _describe(base: AIConfig, overrides: dict[str, Any]) -> str:
    """The default description of a fork: its base and its overrides."""
    return f"fork of {base.meta.name} v{base.meta.version}: " + (
        ", ".join(f"{k}={json.dumps(v)}" for k, v in overrides.items()) or "no overrides"
    )


def _sweep_note(
    sweep_name: str, index: int, total: int, axes: Sequence[_Axis], point: tuple[Any, ...]
) -> str:
    """Which point of which sweep a fork is: ``NAME point 2/6: lr=0.01, ...``."""
    return f"{sweep_name} point {index + 1}/{total}: " + ", ".join(
        f"{p}={json.dumps(v)}" for (p, _), v in zip(axes, point, strict=True)
    )


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
    base_sha256 = hashlib.sha256(base_bytes).hexdigest()
    if base_sha256 != base.provenance.sha256 and base.provenance.sha256:
        raise ForkError(
            "the base changed while forking", file=str(base_path), hint="run the command again"
        )
    fixed, axes = _parse_edits(sets, sweeps, tuple(base.meta.locked))
    points = list(itertools.product(*(values for _, values in axes))) if axes else [()]
    names = _point_names(name, axes, points)
    rel = Path(os.path.relpath(base_path.resolve(), out_dir.resolve())).as_posix()
    sweep_name = name if axes else None
    problems: list[Problem] = []  # every existing fork that would be overwritten, at once
    plans: list[PlannedFork] = []
    for index, (point_nm, point) in enumerate(zip(names, points, strict=True)):
        pairs = [*fixed, *((p, v) for (p, _), v in zip(axes, point, strict=True))]
        overrides = normalize_edits(base, pairs)  # list edits at concrete indexes
        target = out_dir / f"{point_nm}.yaml"
        exists = target.exists()
        if exists and not force:
            problems.append(_refuse_overwrite(target))
            continue
        ver = version or ((_existing_version(target) or 0) + 1 if exists else 1)
        data = render_fork(
            base_rel=rel,
            base_sha256=base_sha256,
            name=point_nm,
            version=ver,
            description=description or _describe(base, overrides),
            overrides=overrides,
            sweep=_sweep_note(sweep_name, index, len(points), axes, point) if sweep_name else None,
        )
        config = resolve_fork(
            parse_yaml(data, str(target)),
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
