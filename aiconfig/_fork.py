"""Forks: small signed files that name a base by path and sha256 and list dotted overrides.

A fork file::

    fork:
      base: baseline.yaml          # relative to this file's directory
      sha256: 3f5a...              # digest of the base file's exact bytes
    meta:
      name: lr-1e-3                # the fork's own identity (anti-rollback is per name)
      version: 1
      description: higher learning rate
    overrides:
      training.lr: 0.001

Loading a fork (``aiconfig.load`` detects the top-level ``fork:`` key) verifies the fork's own
signature, checks the base digest (a changed base makes the fork stale), loads the base through
the same trusted pipeline (so a base may itself be a fork), refuses the base's locked paths,
merges and validates. ``Provenance.lineage`` records every step from the root baseline.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import Field
from pydantic import ValidationError as PydanticValidationError

from ._bounded import read_capped
from ._errors import ConfigFileError, ForkError, Problem
from ._interpolate import interpolate
from ._overrides import apply_overrides, normalize_edits, target_of, typed_item
from ._provenance import Provenance, Signer, lineage_step
from ._schema import AIConfig, FrozenModel
from ._yamlsafe import Limits, ParsedYaml

__all__ = [
    "FORK_KEY",
    "BaseLoader",
    "ForkDocument",
    "PreparedFork",
    "fork_for_experiment",
    "is_fork_document",
    "merge_fork",
    "prepare_fork",
    "refork_command",
    "render_fork",
    "resolve_fork",
]

FORK_KEY = "fork"
BaseLoader = Callable[[Path, bytes], AIConfig]
"""Loads a fork's base (path, exact bytes) through the trusted pipeline."""


class ForkRef(FrozenModel):
    base: Annotated[str, Field(min_length=1)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class ForkMeta(FrozenModel):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")]
    version: Annotated[int, Field(ge=1, strict=True)]
    schema_version: Literal[1] = 1
    description: str = ""
    expires: datetime | str | None = None  # typed by the merged config's MetaConfig
    locked: tuple[str, ...] = ()


class ForkDocument(FrozenModel):
    """The structure of a fork file (values of ``overrides`` are typed by the config schema)."""

    fork: ForkRef
    meta: ForkMeta
    overrides: dict[str, Any] = Field(default_factory=dict)


def is_fork_document(data: Any) -> bool:
    return isinstance(data, dict) and FORK_KEY in data


def _doc_problems(exc: PydanticValidationError, file: str, parsed: ParsedYaml) -> list[Problem]:
    from ._explain import translate

    return translate(
        exc,
        parsed.data,
        file=file,
        lines=parsed.lines,
        root=ForkDocument,
        default_source=None,
        message_prefix="malformed fork file: ",
        hint="a fork has 'fork: {base, sha256}', 'meta: {name, version}' and "
        "'overrides: {dotted.path: value}'; write it with 'aiconfig fork'",
    )


def refork_command(base: str, doc: ForkDocument, out_dir: str) -> str:
    """The exact command that re-creates ``doc`` on top of the current ``base``."""
    parts = ["aiconfig", "fork", base, "--name", doc.meta.name, "--out", out_dir]
    for path, value in doc.overrides.items():
        parts += ["--set", f"{path}={_cli_text(value)}"]
    parts += ["--version", str(doc.meta.version + 1), "--force"]
    return shlex.join(parts)


def _cli_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    import json

    return json.dumps(value)


def _read_base(file: str, parsed: ParsedYaml, rel: PurePosixPath) -> tuple[Path, bytes]:
    base_path = Path(file).parent / rel
    try:
        return base_path, read_capped(base_path, Limits().max_bytes, what="base config")
    except (OSError, ConfigFileError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else exc.problems[0].message
        raise ForkError(
            f"base {base_path} cannot be read ({reason})",
            file=file,
            line=parsed.lines.get((FORK_KEY, "base")),
            path="fork.base",
            hint="restore the base file or re-fork from an existing one",
        ) from None


@dataclass(frozen=True)
class PreparedFork:
    """A fork file with its base loaded and its overrides interpolated, not yet merged."""

    doc: ForkDocument
    base_path: Path
    base: AIConfig
    overrides: dict[str, Any]
    lines: dict[str, int]
    sources: dict[str, str]
    env_used: dict[str, str | None]


def prepare_fork(
    parsed: ParsedYaml,
    file: str,
    *,
    env: Mapping[str, str] | None,
    load_base: BaseLoader,
    known_base: tuple[Path, bytes] | None = None,
) -> PreparedFork:
    """Check the fork document and its base digest, load the base, interpolate the overrides.

    ``known_base`` is the base's path and bytes when the caller has read them already: a fork
    being planned into a directory that does not exist yet cannot reach its base through
    ``NEWDIR/../base.yaml``.
    """
    try:
        doc = ForkDocument.model_validate(parsed.data)
    except PydanticValidationError as exc:
        raise ForkError(_doc_problems(exc, file, parsed)) from None
    rel = PurePosixPath(doc.fork.base)
    if rel.is_absolute() or "\\" in doc.fork.base:
        raise ForkError(
            f"base '{doc.fork.base}' must be a relative path",
            file=file,
            line=parsed.lines.get((FORK_KEY, "base")),
            path="fork.base",
            hint="write the base's path relative to this fork file",
        )
    if known_base is not None:
        base_path, base_bytes = known_base
    else:
        base_path, base_bytes = _read_base(file, parsed, rel)
    actual = hashlib.sha256(base_bytes).hexdigest()
    if actual != doc.fork.sha256:
        out_dir = str(Path(file).parent)
        raise ForkError(
            f"stale fork: base {base_path} has sha256 {actual}, but the fork was made from "
            f"sha256 {doc.fork.sha256}",
            file=file,
            line=parsed.lines.get((FORK_KEY, "sha256")),
            path="fork.sha256",
            hint="review the base change, then re-fork: "
            f"{refork_command(str(base_path), doc, out_dir)} (and re-sign the new fork)",
        )
    base = load_base(base_path, base_bytes)
    overrides = dict(doc.overrides)
    lines = {k: parsed.lines.get(("overrides", k), 0) for k in overrides}
    resolved = interpolate(overrides, file, {(k,): v for k, v in lines.items()}, env)
    sources = {k: file for k in overrides}
    sources.update({str(k[0]): v for k, v in resolved.sources.items()})
    lines["meta"] = parsed.lines.get(("meta",), 0)
    return PreparedFork(
        doc, base_path, base, resolved.data, lines, sources, dict(resolved.env_used)
    )


def merge_fork(
    prepared: PreparedFork, data: bytes, file: str, *, signers: tuple[Signer, ...]
) -> AIConfig:
    """Apply a prepared fork's overrides to its base, validate, and record the lineage step."""
    doc, base = prepared.doc, prepared.base
    meta = doc.meta.model_dump(exclude_unset=True)
    meta.setdefault("description", "")
    meta.setdefault("version", doc.meta.version)
    merged = apply_overrides(
        base,
        prepared.overrides,
        meta,
        file=file,
        lines=prepared.lines,
        sources=prepared.sources,
    )
    sha = hashlib.sha256(data).hexdigest()
    base_prov = base.provenance
    step = lineage_step(
        file,
        sha,
        merged.meta.name,
        merged.meta.version,
        signers,
        doc.overrides,
        base=str(prepared.base_path),
    )
    provenance = Provenance(
        path=file,
        sha256=sha,
        signed=bool(signers),
        signers=signers,
        env_vars={**base_prov.env_vars, **prepared.env_used},
        sources={**base_prov.sources, **prepared.sources},
        lineage=(*base_prov.lineage, step),
        template=data.decode("utf-8", "replace"),
        emergency=base_prov.emergency,  # the base's active emergency overrides carry over
    )
    return merged.with_provenance(provenance)


def resolve_fork(
    parsed: ParsedYaml,
    data: bytes,
    file: str,
    *,
    signers: tuple[Signer, ...],
    env: Mapping[str, str] | None,
    load_base: BaseLoader,
    known_base: tuple[Path, bytes] | None = None,
) -> AIConfig:
    """A parsed fork file -> its merged, validated config (base loaded via ``load_base``)."""
    prepared = prepare_fork(parsed, file, env=env, load_base=load_base, known_base=known_base)
    return merge_fork(prepared, data, file, signers=signers)


def fork_for_experiment(
    config: AIConfig,
    name: str,
    overrides: Mapping[str, Any],
    *,
    version: int = 1,
    description: str = "",
) -> AIConfig:
    """A new validated, immutable config: ``config`` with ``overrides`` (dotted path -> value).

    Values are typed by the schema (``"3e-4"`` becomes a float for a float field). Locked,
    ``meta.*`` and unknown paths raise :class:`ForkError`; invalid values raise
    :class:`ConfigValidationError`. ``config`` itself is unchanged.
    """
    meta = {"name": name, "version": version, "description": description}
    overrides = normalize_edits(config, overrides)  # list edits at concrete indexes
    merged = apply_overrides(config, overrides, meta)
    base_prov = config.provenance
    lineage = base_prov.lineage or (
        lineage_step(
            base_prov.path,
            base_prov.sha256,
            config.meta.name,
            config.meta.version,
            base_prov.signers,
            {},
        ),
    )
    typed = _values_at(merged, overrides)
    step = lineage_step(
        "<memory>", "", merged.meta.name, merged.meta.version, (), typed, base=base_prov.path
    )
    return merged.with_provenance(
        Provenance(
            path="<memory>",
            sha256="",
            signed=False,
            env_vars=dict(base_prov.env_vars),
            sources=dict(base_prov.sources),
            lineage=(*lineage, step),
            emergency=base_prov.emergency,
        )
    )


def _values_at(config: AIConfig, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The typed, JSON-safe values the merged config holds at each overridden path."""
    dumped = config.model_dump(mode="json")
    out = {}
    for dotted, value in overrides.items():
        target = target_of(dotted)
        if target.is_item:  # later edits may have moved the item: type the value itself
            out[dotted] = typed_item(target, value)
            continue
        node: Any = dumped
        for seg in target.segments:
            node = node[seg]
        out[dotted] = node
    return out


def render_fork(
    *,
    base_rel: str,
    base_sha256: str,
    name: str,
    version: int,
    description: str,
    overrides: Mapping[str, Any],
    sweep: str | None = None,
) -> bytes:
    """The bytes of a fork file (stable layout, so the same inputs give the same digest)."""
    import yaml

    def dump(obj: Any) -> str:
        return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, width=4096)

    header = [
        f"# Fork of {base_rel}, written by `aiconfig fork`.",
        "# The base is pinned by sha256: if it changes, this fork is refused until re-forked.",
        "# Review and sign: aiconfig sign <this file> --key ~/.ssh/id_ed25519",
    ]
    if sweep:
        header.append(f"# Sweep point: {sweep}")
    meta: dict[str, Any] = {"name": name, "version": version}
    if description:
        meta["description"] = description
    body = dump({FORK_KEY: {"base": base_rel, "sha256": base_sha256}})
    body += dump({"meta": meta})
    body += dump({"overrides": dict(overrides)}) if overrides else "overrides: {}\n"
    return ("\n".join(header) + "\n" + body).encode("utf-8")
