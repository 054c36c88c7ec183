"""Entry-point plugins (group ``aiconfig.plugins``) under an allowlist and a version+hash lock.

Without ``AP_PLUGINS_ALLOWLIST`` and ``AP_PLUGIN_LOCK`` every installed plugin may load (a
developer machine). With either set (a harness run) a plugin loads only if

* its entry-point name is in the allowlist file (one name per line, ``#`` comments); without an
  allowlist file, the plugins of the distributions pinned in the lock are the allowlist;
* its distribution is pinned in the lock file (JSON, :data:`LOCK_SCHEMA`) with the installed
  version and the sha256 of its installed files (:func:`distribution_digest`);
* it does not declare ``needs_network = True`` while offline mode is on.

Everything is checked **before** the plugin's code is imported, and a pinned plugin is then
imported from its distribution's own files and from source only (see ``_dist_import``).
Refused plugins are reported with the reason; :func:`load_plugins` never raises for one plugin
unless ``strict=True``.

Lock file::

    {"schema_version": "aiconfig.plugin-lock/1",
     "plugins": {"hello-plugin": {"version": "1.0.0", "sha256": "<64 hex>"}}}

``aiconfig plugins lock DIST...`` prints a lock for installed distributions.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import _network as network
from .._errors import PluginRefusedError, Problem
from .._files import sha256_file
from ._dist_import import load_from_distribution

__all__ = [
    "GROUP",
    "LOCK_SCHEMA",
    "PluginPolicy",
    "PluginSet",
    "Refusal",
    "distribution_digest",
    "load_named",
    "load_plugins",
    "lock_entries",
]

GROUP = "aiconfig.plugins"
LOCK_SCHEMA = "aiconfig.plugin-lock/1"
# Files pip writes per install (they differ between two installs of the same wheel).
_VOLATILE = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def distribution_digest(dist: metadata.Distribution) -> str | None:
    """sha256 over ``path NUL sha256(file)`` lines of the distribution's installed files.

    Byte-compiled files and the per-install metadata (RECORD, INSTALLER, REQUESTED,
    direct_url.json) are left out so the same wheel gives the same digest on every machine.
    None when the distribution has no RECORD (its files cannot be enumerated).
    """
    files = dist.files
    if files is None:
        return None
    lines = []
    for f in sorted(files, key=lambda p: p.as_posix()):
        posix = f.as_posix()
        if f.name in _VOLATILE or f.suffix == ".pyc" or "__pycache__" in f.parts:
            continue
        path = Path(str(f.locate()))
        try:
            digest = sha256_file(path).sha256
        except OSError:
            digest = "missing"
        lines.append(f"{posix}\0{digest}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


@dataclass(frozen=True)
class Refusal:
    name: str
    dist: str | None
    reason: str

    def render(self) -> str:
        return f"plugin {self.name!r} ({self.dist or 'unknown distribution'}): {self.reason}"


@dataclass
class PluginSet:
    loaded: dict[str, Any] = field(default_factory=dict)
    refused: list[Refusal] = field(default_factory=list)


def _read_allowlist(path: Path) -> frozenset[str]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise PluginRefusedError(
            f"cannot read plugin allowlist: {exc.strerror}",
            file=str(path),
            path="AP_PLUGINS_ALLOWLIST",
        ) from None
    names = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return frozenset(n for n in names if n)


def _read_lock(path: Path) -> dict[str, tuple[str, str]]:
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise PluginRefusedError(
            f"cannot read plugin lock: {exc.strerror}", file=str(path), path="AP_PLUGIN_LOCK"
        ) from None
    except ValueError as exc:
        raise PluginRefusedError(f"plugin lock is not JSON: {exc}", file=str(path)) from None
    if not isinstance(doc, dict) or doc.get("schema_version") != LOCK_SCHEMA:
        raise PluginRefusedError(
            "not a plugin lock", file=str(path), path="schema_version", expected=LOCK_SCHEMA
        )
    pins: dict[str, tuple[str, str]] = {}
    problems = []
    for dist, pin in (doc.get("plugins") or {}).items():
        ok = isinstance(pin, dict) and isinstance(pin.get("version"), str)
        sha = pin.get("sha256") if isinstance(pin, dict) else None
        if not ok or not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
            problems.append(
                Problem(
                    "needs a version and a 64-hex sha256", file=str(path), path=f"plugins.{dist}"
                )
            )
            continue
        pins[canonical(dist)] = (pin["version"], sha)
    if problems:
        raise PluginRefusedError(problems)
    return pins


@dataclass(frozen=True)
class PluginPolicy:
    """Which plugins may load. ``enforced`` is False on a developer machine (no files set)."""

    allowlist: frozenset[str] | None = None
    pins: Mapping[str, tuple[str, str]] | None = None
    allowlist_file: str | None = None
    lock_file: str | None = None

    @property
    def enforced(self) -> bool:
        return self.allowlist is not None or self.pins is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PluginPolicy:
        environ = os.environ if env is None else env
        allow_path = environ.get("AP_PLUGINS_ALLOWLIST") or None
        lock_path = environ.get("AP_PLUGIN_LOCK") or None
        return cls(
            allowlist=_read_allowlist(Path(allow_path)) if allow_path else None,
            pins=_read_lock(Path(lock_path)) if lock_path else None,
            allowlist_file=allow_path,
            lock_file=lock_path,
        )

    def check(self, ep: metadata.EntryPoint) -> str | None:
        """Why ``ep`` may not load, or None when it may (checked before importing it)."""
        if not self.enforced:
            return None
        dist = ep.dist
        dist_name = canonical(dist.metadata["Name"]) if dist is not None else None
        if self.allowlist is not None:
            if ep.name not in self.allowlist:
                return f"not in the allowlist AP_PLUGINS_ALLOWLIST={self.allowlist_file}"
        elif self.pins is not None and dist_name not in self.pins:
            return f"not allowlisted: its distribution is not in AP_PLUGIN_LOCK={self.lock_file}"
        if self.pins is None:
            return "unpinned: AP_PLUGIN_LOCK is not set, harness runs load only pinned plugins"
        if dist is None or dist_name is None:
            return "unpinned: its distribution cannot be found"
        if dist_name not in self.pins:
            return f"unpinned: distribution {dist_name!r} is not in AP_PLUGIN_LOCK={self.lock_file}"
        version, sha = self.pins[dist_name]
        if dist.version != version:
            return f"version {dist.version} is installed but the lock pins {version}"
        digest = distribution_digest(dist)
        if digest is None:
            return "its files cannot be verified (the distribution has no RECORD)"
        if digest != sha:
            return (
                f"its files changed: sha256 {digest[:16]}... differs from the pinned {sha[:16]}..."
            )
        return None


def load_plugins(
    group: str = GROUP,
    *,
    policy: PluginPolicy | None = None,
    names: Iterable[str] | None = None,
    strict: bool = False,
) -> PluginSet:
    """Load the group's entry points that the policy allows; refusals carry their reason.

    ``names`` restricts loading to those plugins (a requested name that is not installed is
    refused too). With ``strict=True`` any refusal raises PluginRefusedError listing all of them.
    """
    policy = PluginPolicy.from_env() if policy is None else policy
    wanted = None if names is None else set(names)
    result = PluginSet()
    seen: set[str] = set()
    for ep in sorted(metadata.entry_points(group=group), key=lambda e: e.name):
        if wanted is not None and ep.name not in wanted:
            continue
        seen.add(ep.name)
        dist = ep.dist.metadata["Name"] if ep.dist is not None else None
        reason = policy.check(ep)
        if reason is None:
            try:
                # Pinned plugins are imported from their distribution's own files, from source:
                # a same-named package in the current directory or a planted .pyc never runs.
                obj = load_from_distribution(ep) if policy.enforced else ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken plugin is refused, not fatal
                reason = f"import failed: {type(exc).__name__}: {exc}"
            else:
                if network.is_offline() and getattr(obj, "needs_network", False):
                    reason = "needs the network but offline mode (--no-network) is on"
                else:
                    result.loaded[ep.name] = obj
        if reason is not None:
            result.refused.append(Refusal(ep.name, dist, reason))
    for missing in sorted((wanted or set()) - seen):
        result.refused.append(Refusal(missing, None, f"no such plugin in group {group!r}"))
    if strict and result.refused:
        raise PluginRefusedError([Problem(r.render()) for r in result.refused])
    return result


def lock_entries(dist_names: Iterable[str]) -> dict[str, Any]:
    """A plugin lock document pinning the installed version and digest of each distribution."""
    plugins: dict[str, Any] = {}
    for name in dist_names:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise PluginRefusedError(f"distribution {name!r} is not installed") from None
        digest = distribution_digest(dist)
        if digest is None:
            raise PluginRefusedError(f"distribution {name!r} has no RECORD; cannot pin it")
        plugins[canonical(dist.metadata["Name"])] = {"version": dist.version, "sha256": digest}
    return {"schema_version": LOCK_SCHEMA, "plugins": plugins}


def load_named(names: Iterable[str], *, kind: str, what: str) -> dict[str, Any]:
    """Load exactly the named plugins under the policy; each must declare ``kind``.

    Any refusal (policy, import error, offline mode, wrong kind) raises PluginRefusedError
    listing every reason, so a job asked for a plugin never runs without it.
    """
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return {}
    loaded = load_plugins(names=wanted, strict=True).loaded
    for name, obj in loaded.items():
        declared = getattr(obj, "kind", None)
        if declared != kind:
            raise PluginRefusedError(
                f"plugin {name!r} is not a {what} (kind={declared!r})",
                hint=f'a {what} plugin declares kind = "{kind}"',
            )
    return loaded
