"""Run manifest: ``$AP_OUT_DIR/manifest.json``, the last file a run writes.

Schema (``schema_version`` ``aiconfig.run-manifest/1``)::

    {
      "schema_version": "aiconfig.run-manifest/1",
      "run_id": "...", "job": "capture", "status": "succeeded" | "failed" | "interrupted",
      "error": null | "one line",
      "started_at": "2026-11-21T18:30:00.000000Z", "ended_at": "...",
      "config": null | {"path": "...", "sha256": "...", "signers": ["alice@example.com"],
                 "emergency": [...]},    # active emergency overrides; absent when none
      "settings": {...resolved run settings...},
      "scope": ["session_20261121_183000"],      # optional: only these subpaths are the run's
      "artifacts": [
        {"path": "session_20261121_183000/frames.mp4", "size": 123, "sha256": "...",
         "kind": "video", "capture": {"start_t_ns": ..., "end_t_ns": ...}}
      ]
    }

Artifact paths are POSIX paths relative to the output directory; a path that is absolute or
leaves the directory is rejected when verifying. Files of a ``session_*/`` directory get their
capture timestamps from that session's ``metadata.json``. A run that writes into a shared
directory (a standalone capture into ``./sessions``) lists only its own subpaths in ``scope``;
hashing and the check for unlisted files then stay inside them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .._bounded import load_json_capped
from .._errors import ConfigFileError, ManifestError, Problem
from .._files import atomic_write_json, is_temp_name, sha256_file

__all__ = [
    "MANIFEST_NAME",
    "SCHEMA_VERSION",
    "Artifact",
    "VerifyResult",
    "collect_artifacts",
    "load_manifest",
    "verify_manifest",
    "write_manifest",
]

SCHEMA_VERSION = "aiconfig.run-manifest/1"
MANIFEST_NAME = "manifest.json"
# Files the harness itself keeps in the output directory; never artifacts.
INTERNAL_NAMES = frozenset({MANIFEST_NAME, ".aiconfig-run.lock"})
_KINDS = {
    ".mp4": "video",
    ".wav": "audio",
    ".parquet": "events",
    ".json": "json",
}


@dataclass
class Artifact:
    path: str
    size: int
    sha256: str
    kind: str | None = None
    capture: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "size": self.size, "sha256": self.sha256}
        if self.kind is not None:
            out["kind"] = self.kind
        if self.capture is not None:
            out["capture"] = self.capture
        out.update(self.extra)
        return out


def _session_capture(session_dir: Path) -> dict[str, Any] | None:
    try:
        meta = load_json_capped(session_dir / "metadata.json", what="session metadata")
    except (OSError, ConfigFileError):
        return None
    if not isinstance(meta, dict):
        return None
    keys = ("session_id", "start_t_ns", "end_t_ns", "duration_s")
    cap = {k: meta[k] for k in keys if k in meta}
    return cap or None


def _walk(out_dir: Path, scope: Iterable[str] | None) -> list[PurePosixPath]:
    """Regular files (no symlinks) under ``out_dir`` or its ``scope`` subpaths, sorted."""
    starts = [out_dir] if scope is None else [out_dir / s for s in sorted(set(scope))]
    found: list[PurePosixPath] = []
    for start in starts:
        if start.is_file() and not start.is_symlink():
            found.append(PurePosixPath(start.relative_to(out_dir).as_posix()))
            continue
        for root, dirs, files in os.walk(start):
            dirs.sort()
            for name in sorted(files):
                full = Path(root) / name
                if full.is_file() and not full.is_symlink():
                    found.append(PurePosixPath(full.relative_to(out_dir).as_posix()))
    return found


def _skip(rel: PurePosixPath, skip: set[str]) -> bool:
    name = rel.name
    if str(rel) in skip or (len(rel.parts) == 1 and name in INTERNAL_NAMES):
        return True
    return is_temp_name(name)


def collect_artifacts(
    out_dir: Path,
    *,
    annotations: Mapping[str, Mapping[str, Any]] | None = None,
    skip: Iterable[str] = (),
    chunk: int = 1024 * 1024,
    scope: Iterable[str] | None = None,
) -> list[Artifact]:
    """Hash every regular file under ``out_dir`` (sorted), merged with per-path annotations.

    ``scope`` limits the walk to those relative subpaths (files or directories).
    """
    notes = dict(annotations or {})
    skipped = set(skip)
    sessions: dict[Path, dict[str, Any] | None] = {}
    found: list[Artifact] = []
    for rel in _walk(out_dir, scope):
        full = out_dir / rel
        if _skip(rel, skipped):
            continue
        digest, size = sha256_file(full, chunk)
        note = dict(notes.get(str(rel), {}))
        capture = note.pop("capture", None)
        top = rel.parts[0]
        if capture is None and len(rel.parts) > 1 and top.startswith("session_"):
            if out_dir / top not in sessions:
                sessions[out_dir / top] = _session_capture(out_dir / top)
            capture = sessions[out_dir / top]
        kind = note.pop("kind", None) or _KINDS.get(full.suffix.lower())
        found.append(Artifact(str(rel), size, digest, kind, capture, note))
    return found


def write_manifest(out_dir: Path, body: Mapping[str, Any], artifacts: list[Artifact]) -> Path:
    """Write ``manifest.json`` atomically (temp file + rename); returns its path."""
    doc = {"schema_version": SCHEMA_VERSION, **body, "artifacts": [a.to_dict() for a in artifacts]}
    path = out_dir / MANIFEST_NAME
    atomic_write_json(path, doc)
    return path


def load_manifest(path: Path) -> dict[str, Any]:
    """Read and structurally check a manifest (a directory means its manifest.json)."""
    if path.is_dir():
        path = path / MANIFEST_NAME
    try:
        doc = load_json_capped(path, what="manifest")
    except FileNotFoundError:
        raise ManifestError(
            "no manifest", file=str(path), hint="is this a run output dir?"
        ) from None
    except ConfigFileError as exc:
        raise ManifestError(
            f"unreadable manifest: {exc.problems[0].message}", file=str(path)
        ) from None
    if not isinstance(doc, dict):
        raise ManifestError("manifest is not a JSON object", file=str(path))
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ManifestError(
            "unsupported schema version",
            file=str(path),
            path="schema_version",
            expected=SCHEMA_VERSION,
            got=repr(doc.get("schema_version")),
        )
    if not isinstance(doc.get("artifacts"), list):
        raise ManifestError("artifacts is not a list", file=str(path), path="artifacts")
    return doc


@dataclass(frozen=True)
class VerifyResult:
    checked: int
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _safe_rel(value: object) -> PurePosixPath | None:
    if not isinstance(value, str) or not value:
        return None
    rel = PurePosixPath(value)
    if rel.is_absolute() or ".." in rel.parts or "\\" in value:
        return None
    return rel


def verify_manifest(out_dir: Path, *, allow_extra: bool = False) -> VerifyResult:
    """Re-hash every artifact; report missing, changed, unsafe and (unless allowed) extra files."""
    mpath = out_dir / MANIFEST_NAME
    doc = load_manifest(mpath)
    problems: list[Problem] = []
    listed: set[str] = set()
    for i, art in enumerate(doc["artifacts"]):
        where = f"artifacts[{i}]"
        if not isinstance(art, dict):
            problems.append(Problem("not an object", file=str(mpath), path=where))
            continue
        rel = _safe_rel(art.get("path"))
        if rel is None:
            problems.append(
                Problem(
                    "unsafe or missing path", file=str(mpath), path=where, got=repr(art.get("path"))
                )
            )
            continue
        listed.add(str(rel))
        full = out_dir / rel
        if not full.is_file() or full.is_symlink():
            problems.append(Problem("artifact is missing", file=str(full), path=where))
            continue
        digest, size = sha256_file(full)
        if size != art.get("size"):
            problems.append(
                Problem(
                    "size differs", file=str(full), expected=str(art.get("size")), got=str(size)
                )
            )
        if digest != art.get("sha256"):
            problems.append(
                Problem(
                    "sha256 differs (file changed after the run)",
                    file=str(full),
                    expected=str(art.get("sha256")),
                    got=digest,
                )
            )
    scope = doc.get("scope")
    if scope is not None:
        if not isinstance(scope, list) or any(_safe_rel(p) is None for p in scope):
            problems.append(
                Problem("scope is not a list of relative paths", file=str(mpath), path="scope")
            )
            scope = []
        for entry in scope:
            if not (out_dir / entry).exists():
                problems.append(Problem("scoped path is missing", file=str(out_dir / entry)))
    if not allow_extra:
        for extra in collect_paths(out_dir, scope):
            if extra not in listed:
                problems.append(
                    Problem("file not listed in the manifest", file=str(out_dir / extra))
                )
    return VerifyResult(len(doc["artifacts"]), tuple(problems))


def collect_paths(out_dir: Path, scope: Iterable[str] | None = None) -> list[str]:
    """Relative paths of the files :func:`collect_artifacts` would list, without hashing."""
    return [str(rel) for rel in _walk(out_dir, scope) if not _skip(rel, set())]
