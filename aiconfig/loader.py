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
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from .errors import ConfigFileError, ConfigValidationError
from .explain import explain
from .interpolate import interpolate
from .provenance import Provenance, Signer
from .schema import AIConfig
from .yamlsafe import Limits, parse_yaml

__all__ = ["load", "load_unverified_bytes", "read_config_bytes", "validate_data"]

log = logging.getLogger("aiconfig")


def read_config_bytes(path: str | os.PathLike[str]) -> bytes:
    p = Path(path)
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise ConfigFileError(
            "no such file", file=str(p), hint="check the path (configs live in experiments/)"
        ) from None
    except IsADirectoryError:
        raise ConfigFileError("is a directory, not a config file", file=str(p)) from None
    except OSError as exc:
        raise ConfigFileError(f"cannot read: {exc.strerror}", file=str(p)) from None


def load(
    path: str | os.PathLike[str],
    *,
    allow_unsigned: bool = False,
    keys: str | os.PathLike[str] | None = None,
    data_root: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
    limits: Limits | None = None,
) -> AIConfig:
    """Load, verify and validate one config file (a baseline or a fork).

    ``allow_unsigned`` is for development only: signatures are not required and the
    provenance is marked unsigned. ``keys`` is the trust store directory (default: ``keys/``
    beside the nearest ancestor of the file, or ``$AICONFIG_KEYS``). ``data_root`` holds the
    anti-rollback state (default ``$AP_DATA_ROOT``).
    """
    file = str(path)
    data = read_config_bytes(path)
    signers: tuple[Signer, ...] = ()
    if allow_unsigned:
        log.warning("%s: loading WITHOUT signature verification (--allow-unsigned)", file)
    else:
        from .trust import verify_signatures

        signers = verify_signatures(Path(path), data, keys=keys).signers
    config = load_unverified_bytes(data, file, env=env, limits=limits, signers=signers)
    if not allow_unsigned:
        from .trust import check_freshness

        check_freshness(config, file, data_root=data_root, now=now)
    return config


def load_unverified_bytes(
    data: bytes,
    file: str,
    *,
    env: Mapping[str, str] | None = None,
    limits: Limits | None = None,
    signers: tuple[Signer, ...] = (),
) -> AIConfig:
    """Parse, interpolate and validate bytes whose trust has already been decided."""
    parsed = parse_yaml(data, file, limits)
    resolved = interpolate(parsed.data, file, parsed.lines, env)
    config = validate_data(resolved.data, file, parsed.lines, resolved.sources, parsed.yaml11_bools)
    provenance = Provenance(
        path=file,
        sha256=hashlib.sha256(data).hexdigest(),
        signed=bool(signers),
        signers=signers,
        env_vars=dict(resolved.env_used),
        sources={".".join(map(str, k)): v for k, v in resolved.sources.items()},
        template=data.decode("utf-8", "replace"),
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
