"""The trusted load pipeline.

``read bytes -> verify signatures -> parse (hardened YAML) -> interpolate env -> validate
-> check expiry and rollback -> AIConfig``

Signatures are checked on the exact file bytes before the YAML parser sees them, so untrusted
bytes never reach the parser in strict mode (the default).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from .errors import ConfigFileError, ConfigValidationError, ForkError
from .explain import explain
from .interpolate import interpolate
from .provenance import Provenance, Signer
from .schema import AIConfig
from .yamlsafe import Limits, parse_yaml

__all__ = [
    "MAX_FORK_DEPTH",
    "base_loader",
    "load",
    "load_unverified_bytes",
    "read_config_bytes",
    "validate_data",
]

log = logging.getLogger("aiconfig")

MAX_FORK_DEPTH = 16
BaseLoader = Callable[[Path, bytes], AIConfig]


def read_config_bytes(path: str | os.PathLike[str], limits: Limits | None = None) -> bytes:
    """A config file's bytes, read with the size cap (a bigger file is never read or hashed)."""
    from ._bounded import read_capped

    p = Path(path)
    try:
        return read_capped(p, (limits or Limits()).max_bytes, what="config file")
    except FileNotFoundError:
        raise ConfigFileError(
            "no such file", file=str(p), hint="check the path (configs live in experiments/)"
        ) from None


@dataclass(frozen=True)
class _Options:
    allow_unsigned: bool = False
    keys: str | os.PathLike[str] | None = None
    data_root: str | os.PathLike[str] | None = None
    env: Mapping[str, str] | None = None
    now: datetime | None = None
    limits: Limits | None = None
    record: bool = True
    depth: int = 0


def load(
    path: str | os.PathLike[str],
    *,
    allow_unsigned: bool = False,
    keys: str | os.PathLike[str] | None = None,
    data_root: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
    limits: Limits | None = None,
    record: bool = True,
) -> AIConfig:
    """Load, verify and validate one config file (a baseline or a fork).

    ``allow_unsigned`` is for development only: signatures are not required and the
    provenance is marked unsigned. ``keys`` is the trust store directory (default: ``keys/``
    beside the nearest ancestor of the file, or ``$AICONFIG_KEYS``). ``data_root`` holds the
    anti-rollback state (default ``$AP_DATA_ROOT``); ``record=False`` checks it without
    recording this version.

    A fork file (top-level ``fork:``) is verified, its base is checked against the pinned
    sha256 and loaded through this same pipeline (verified too), the base's locked paths are
    refused, and the merged config is validated; ``provenance.lineage`` lists every step.
    """
    opts = _Options(allow_unsigned, keys, data_root, env, now, limits, record)
    return _load_bytes(Path(path), read_config_bytes(path, limits), opts)


def base_loader(
    *,
    allow_unsigned: bool = False,
    keys: str | os.PathLike[str] | None = None,
    data_root: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
    limits: Limits | None = None,
    record: bool = True,
) -> BaseLoader:
    """The loader :func:`load_unverified_bytes` uses for a fork's base: the full pipeline."""
    opts = _Options(allow_unsigned, keys, data_root, env, now, limits, record, depth=1)
    return lambda path, data: _load_bytes(path, data, opts)


def _load_bytes(path: Path, data: bytes, opts: _Options) -> AIConfig:
    file = str(path)
    if opts.depth > MAX_FORK_DEPTH:
        raise ForkError(
            f"fork chain deeper than {MAX_FORK_DEPTH} steps",
            file=file,
            hint="fork from a baseline instead of a long chain of forks",
        )
    signers: tuple[Signer, ...] = ()
    if opts.allow_unsigned:
        log.warning("%s: loading WITHOUT signature verification (--allow-unsigned)", file)
    else:
        from .trust import verify_signatures

        signers = verify_signatures(path, data, keys=opts.keys).signers
    deeper = replace(opts, depth=opts.depth + 1)
    config = load_unverified_bytes(
        data,
        file,
        env=opts.env,
        limits=opts.limits,
        signers=signers,
        load_base=lambda p, d: _load_bytes(p, d, deeper),
    )
    if not opts.allow_unsigned:
        from .trust import check_freshness

        check_freshness(config, file, data_root=opts.data_root, now=opts.now, record=opts.record)
    return config


def load_unverified_bytes(
    data: bytes,
    file: str,
    *,
    env: Mapping[str, str] | None = None,
    limits: Limits | None = None,
    signers: tuple[Signer, ...] = (),
    load_base: BaseLoader | None = None,
) -> AIConfig:
    """Parse, interpolate and validate bytes whose trust has already been decided.

    A fork file needs ``load_base`` (see :func:`base_loader`) to load its base.
    """
    parsed = parse_yaml(data, file, limits)
    from .fork import is_fork_document, lineage_step, resolve_fork

    if is_fork_document(parsed.data):
        if load_base is None:
            raise ForkError(
                "this is a fork file; its base must be loaded too",
                file=file,
                hint="load it with aiconfig.load()",
            )
        return resolve_fork(parsed, data, file, signers=signers, env=env, load_base=load_base)
    resolved = interpolate(parsed.data, file, parsed.lines, env)
    config = validate_data(resolved.data, file, parsed.lines, resolved.sources, parsed.yaml11_bools)
    sha = hashlib.sha256(data).hexdigest()
    provenance = Provenance(
        path=file,
        sha256=sha,
        signed=bool(signers),
        signers=signers,
        env_vars=dict(resolved.env_used),
        sources={".".join(map(str, k)): v for k, v in resolved.sources.items()},
        template=data.decode("utf-8", "replace"),
        lineage=(lineage_step(file, sha, config, signers, {}),),
    )
    return config.with_provenance(provenance)


def validate_data(
    data: dict[str, Any],
    file: str,
    lines: Mapping[tuple[str | int, ...], int],
    sources: Mapping[tuple[str | int, ...], str],
    yaml11_bools: Mapping[tuple[str | int, ...], str],
) -> AIConfig:
    """Validate plain data against the schema; every problem explained at once."""
    try:
        return AIConfig.model_validate(data)
    except PydanticValidationError as exc:
        raise ConfigValidationError(
            explain(exc, data, file, lines, sources, yaml11_bools)
        ) from None
