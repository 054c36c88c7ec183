"""A session's own ``manifest.json``: the commit record the recorder writes last.

Schema (``schema_version`` :data:`~._format.MANIFEST_SCHEMA_VERSION`)::

    {"schema_version": "1.0.0", "kind": "capture_session", "session_id": "session_...",
     "status": "recording" | "complete" | "recovered",
     "created_at": "...Z", "updated_at": "...Z", "run_id": "...", "provenance": {...},
     "artifacts": [{"path": "frames.mp4", "sha256": "...", "bytes": 123,
                    "media_type": "video/mp4"}, ...]}

A session directory that is itself a run's output directory holds the run manifest
(``aiconfig.run-manifest/1``, artifacts with ``path``/``size``/``sha256``) instead; it is read the
same way. Any other ``schema_version`` is refused, naming it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .._files import sha256_file
from ._format import (
    MANIFEST_FILE,
    MANIFEST_KIND,
    MANIFEST_SCHEMA_VERSION,
    RUN_MANIFEST_SCHEMA,
    STATUS_COMPLETE,
    STATUS_FAILED,
    STATUS_RECORDING,
    STATUS_RECOVERED,
)

__all__ = ["ManifestInfo", "build_manifest", "read_manifest", "verify_artifacts"]

MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".wav": "audio/wav",
    ".parquet": "application/vnd.apache.parquet",
    ".json": "application/json",
}
_RUN_STATUS = {"succeeded": STATUS_COMPLETE, "interrupted": STATUS_COMPLETE}


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def build_manifest(
    session: Path, status: str, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The manifest document for ``session`` now (hashes every artifact); not written."""
    artifacts = []
    for path in sorted(session.iterdir()):
        if path.name == MANIFEST_FILE or path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix not in MEDIA_TYPES:
            continue
        artifacts.append(
            {
                "path": path.name,
                "sha256": (digest := sha256_file(path)).sha256,
                "bytes": digest.size,
                "media_type": MEDIA_TYPES[path.suffix],
            }
        )
    previous: dict[str, Any] = {}
    try:
        loaded = json.loads((session / MANIFEST_FILE).read_text())
        previous = loaded if isinstance(loaded, dict) else {}
    except (OSError, ValueError):
        previous = {}
    doc: dict[str, Any] = {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "kind": MANIFEST_KIND,
        "session_id": session.name,
        "status": status,
        "created_at": previous.get("created_at", _now_iso()),
        "updated_at": _now_iso(),
        **(extra or {}),
        "artifacts": artifacts,
    }
    for key in ("run_id", "provenance"):
        if key in previous and key not in doc:
            doc[key] = previous[key]
    return doc


@dataclass(frozen=True)
class ManifestInfo:
    """What a reader needs from a manifest: its schema, the session status, the artifacts."""

    schema_version: str
    status: str
    artifacts: tuple[dict[str, Any], ...]
    doc: dict[str, Any]


def read_manifest(session: Path) -> ManifestInfo | str | None:
    """The parsed manifest, ``None`` when there is none, or a one-line problem."""
    path = session / MANIFEST_FILE
    from .._bounded import load_json_capped
    from .._errors import ConfigFileError

    try:
        doc = load_json_capped(path, 16 << 20, what=MANIFEST_FILE)
    except FileNotFoundError:
        return None
    except ConfigFileError as exc:
        return (
            f"{MANIFEST_FILE} is unreadable ({exc.problems[0].message}); "
            f"run 'python -m capture recover {session}'"
        )
    if not isinstance(doc, dict):
        return f"{MANIFEST_FILE} is not a JSON object"
    version = doc.get("schema_version")
    arts = doc.get("artifacts", [])
    if not isinstance(arts, list) or not all(isinstance(a, dict) for a in arts):
        return f"{MANIFEST_FILE}: artifacts is not a list of objects"
    if version == MANIFEST_SCHEMA_VERSION:
        status = doc.get("status")
        if status not in (STATUS_RECORDING, STATUS_COMPLETE, STATUS_RECOVERED, STATUS_FAILED):
            return (
                f"{MANIFEST_FILE}: status {status!r} is not recording, complete, recovered or "
                "failed"
            )
    elif version == RUN_MANIFEST_SCHEMA:
        status = _RUN_STATUS.get(str(doc.get("status")), "failed")
    else:
        return (
            f"{MANIFEST_FILE}: schema_version {version!r} is not one this aiconfig reads "
            f"({MANIFEST_SCHEMA_VERSION!r} or {RUN_MANIFEST_SCHEMA!r}); upgrade aiconfig"
        )
    return ManifestInfo(str(version), str(status), tuple(arts), doc)


def verify_artifacts(session: Path, manifest: ManifestInfo) -> list[str]:
    """Re-hash every listed artifact: missing, unsafe or changed files, one line each."""
    problems = []
    for art in manifest.artifacts:
        rel = art.get("path")
        if not isinstance(rel, str) or not rel or PurePosixPath(rel).is_absolute():
            problems.append(f"{MANIFEST_FILE}: artifact path {rel!r} is not a relative path")
            continue
        if ".." in PurePosixPath(rel).parts:
            problems.append(f"{MANIFEST_FILE}: artifact path {rel!r} leaves the session")
            continue
        path = session / rel
        if not path.is_file():
            problems.append(f"{MANIFEST_FILE}: lists {rel}, which is missing")
        elif sha256_file(path).sha256 != art.get("sha256"):
            problems.append(
                f"{MANIFEST_FILE}: {rel}: sha256 differs from the manifest (file changed after "
                "recording)"
            )
    return problems
