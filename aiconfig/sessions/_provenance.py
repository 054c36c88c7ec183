"""Where a session came from, read once for every reader that shows it.

The catalog's row, the LeRobot export's ``aiconfig/*`` episode fields and the report's
provenance table all come from :func:`session_provenance`: the session's id, path and
``format_version``, its run id and the config that drove the recording (the recorder's
``provenance`` record: a loaded config's ``path``, ``sha256``, ``signed``, ``signers`` and
``lineage``, root baseline first). Metadata is read as found (a reader never raises for bad
data): a field of another type reads as unknown (``None``), never as a crash or a wrong value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._session import Session

__all__ = ["ConfigSigner", "SessionProvenance", "session_provenance"]


@dataclass(frozen=True)
class ConfigSigner:
    principal: str
    fingerprint: str | None = None


@dataclass(frozen=True)
class SessionProvenance:
    """``signers``/``lineage`` are ``None`` when not recorded (no config, or not a list),
    empty when recorded empty (an unsigned config)."""

    session_id: str
    session_path: str
    format_version: str
    run_id: str | None
    config_name: str | None
    config_path: str | None
    config_digest: str | None
    signed: bool | None
    signers: tuple[ConfigSigner, ...] | None
    lineage: tuple[str, ...] | None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _signer(item: Any) -> ConfigSigner | None:
    """A signer as the loader records it (``{"principal", "fingerprint", ...}``) or as a
    lineage step does (the principal alone)."""
    if isinstance(item, str):
        return ConfigSigner(item)
    if isinstance(item, dict) and isinstance(item.get("principal"), str):
        return ConfigSigner(item["principal"], _str(item.get("fingerprint")))
    return None


def session_provenance(session: Session) -> SessionProvenance:
    """The provenance of ``session`` (see the module docstring)."""
    prov = session.provenance
    path = _str(prov.get("path"))
    signers, lineage = prov.get("signers"), prov.get("lineage")
    steps = lineage if isinstance(lineage, list) else []
    # The config's own name (its meta.name) is in its lineage step, the last one: the step
    # whose path and sha256 are the record's own. A record without one names the file.
    last = steps[-1] if steps and isinstance(steps[-1], dict) else {}
    name = _str(prov.get("name")) or _str(last.get("name")) or (Path(path).stem if path else None)
    signed = prov.get("signed")
    return SessionProvenance(
        session_id=session.id,
        session_path=str(session.path),
        format_version=session.format_version,
        run_id=session.run_id,
        config_name=name,
        config_path=path,
        config_digest=_str(prov.get("sha256")) or _str(prov.get("digest")),
        signed=signed if isinstance(signed, bool) else None,
        signers=tuple(s for s in map(_signer, signers) if s is not None)
        if isinstance(signers, list)
        else None,
        lineage=tuple(str(x.get("path", x)) if isinstance(x, dict) else str(x) for x in steps)
        if isinstance(lineage, list)
        else None,
    )
