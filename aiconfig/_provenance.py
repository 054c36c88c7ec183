"""Where a loaded config came from: file digest, signers, env vars, the source of each value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Provenance", "Signer", "lineage_step"]


@dataclass(frozen=True)
class Signer:
    """A verified signature: who (principal in allowed_signers) and which key."""

    principal: str
    fingerprint: str  # "SHA256:..." as ssh-keygen -l prints it
    key_type: str = "ssh-ed25519"


@dataclass(frozen=True)
class Provenance:
    path: str
    sha256: str
    signed: bool
    signers: tuple[Signer, ...] = ()
    env_vars: dict[str, str | None] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    lineage: tuple[dict[str, Any], ...] = ()
    template: str = ""
    emergency: tuple[dict[str, Any], ...] = ()  # active emergency overrides, in applied order

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe record for run manifests. The value of an env var that feeds a secret field
        (by the schema) was redacted when it was read, so it is never here."""
        return {
            "path": self.path,
            "sha256": self.sha256,
            "signed": self.signed,
            "signers": [s.__dict__ for s in self.signers],
            "env_vars": dict(self.env_vars),
            "sources": dict(self.sources),
            "lineage": list(self.lineage),
            "emergency": list(self.emergency),
        }


def lineage_step(
    path: str,
    sha256: str,
    name: str,
    version: int,
    signers: tuple[Signer, ...],
    overrides: Mapping[str, Any],
    base: str | None = None,
) -> dict[str, Any]:
    """One JSON-safe lineage record (``name``/``version``: the config's ``meta``)."""
    import json

    return {
        "path": path,
        "name": name,
        "version": version,
        "sha256": sha256,
        "signers": [s.principal for s in signers],
        "base": base,
        "overrides": json.loads(json.dumps(dict(overrides), default=str)),
    }
