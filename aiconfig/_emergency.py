"""Emergency overrides: the seed's "emergency playbooks", the one way to change a running value.

A reviewed config lists in ``meta.emergency`` the paths that may change in an emergency. An
on-call principal writes a small signed file beside it (``aiconfig emergency``)::

    # experiments/emergency/baseline@20261201T091200Z.yaml
    emergency:
      base: ../baseline.yaml       # the config it changes, relative to this file
      sha256: 2618fb76...          # that config's exact bytes: a reviewed change ends it
      reason: vLLM p99 regression; raise the budget until the rollback lands
      created: 2026-12-01T09:12:00Z
      expires: 2026-12-01T11:12:00Z   # at most 24 h after created (policy: max_ttl_hours)
    overrides:
      inference.latency_budget_ms: 120

Every load of that config (``aiconfig.load`` and every command) looks for
``<config dir>/emergency/<config stem>@*.yaml``. Each such file is verified before it is parsed:
signed under the trust store like any config, and by ``emergency.threshold`` of the principals
in ``keys/policy.yaml``'s ``emergency:`` section. Then it must name this config by its current
digest, live at most ``max_ttl_hours`` (24), and change only listed paths. A file that fails any
of this refuses the load (:class:`EmergencyOverrideError`): a change to a running config that
cannot be verified is never ignored. An expired override is not applied (the config reverts to
its reviewed values) and a warning says so. An active one is applied with a loud
:class:`EmergencyOverrideWarning` and recorded in ``provenance.emergency`` (and so in run
manifests, ``aiconfig diff`` and tracker tags); jobs raise an alert through monitoring.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import re
import warnings
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from ._errors import AiconfigError, EmergencyOverrideError, ForkError, Problem
from ._schema import AIConfig, FrozenModel

if TYPE_CHECKING:
    import os

    from ._trust.store import EmergencyPolicy

__all__ = [
    "EMERGENCY_DIR",
    "EmergencyOverrideWarning",
    "Found",
    "PlannedOverride",
    "apply_emergency",
    "find_overrides",
    "override_path",
    "parse_ttl",
    "plan_override",
    "read_override",
    "render_override",
    "review_overrides",
]

EMERGENCY_DIR = "emergency"
MAX_TTL = timedelta(hours=24)
CLOCK_SKEW = timedelta(minutes=5)
_TTL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class EmergencyOverrideWarning(UserWarning):
    """An emergency override is active (or has expired) for a config being loaded."""


class _Header(FrozenModel):
    # Built on first use: most loads find no emergency file, and building both models at
    # import is a measurable part of every command's start-up.
    model_config = ConfigDict(defer_build=True)  # merged with FrozenModel's

    base: Annotated[str, Field(min_length=1)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    reason: Annotated[str, Field(min_length=3, max_length=2000)]
    created: datetime
    expires: datetime

    @field_validator("created", "expires")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return v if v.tzinfo is not None else v.replace(tzinfo=UTC)


class _Document(FrozenModel):
    model_config = ConfigDict(defer_build=True)  # merged with FrozenModel's

    emergency: _Header
    overrides: Annotated[dict[str, Any], Field(min_length=1)]


@dataclasses.dataclass(frozen=True)
class Found:
    """One override file for a config: verified and checked; ``active`` or expired."""

    file: str
    sha256: str
    reason: str
    created: datetime
    expires: datetime
    signers: tuple[str, ...]
    overrides: dict[str, Any]
    lines: dict[str, int]
    active: bool

    def record(self, base: str, base_sha256: str) -> dict[str, Any]:
        """The JSON-safe provenance record of an applied override."""
        return {
            "file": self.file,
            "sha256": self.sha256,
            "base": base,
            "base_sha256": base_sha256,
            "reason": self.reason,
            "created": self.created.isoformat(),
            "expires": self.expires.isoformat(),
            "signers": list(self.signers),
            "overrides": dict(self.overrides),
        }

    def summary(self) -> str:
        changes = ", ".join(f"{k} = {v!r}" for k, v in self.overrides.items())
        who = ", ".join(self.signers)
        return (
            f"{changes} (reason: {self.reason}; expires {self.expires.isoformat()}; "
            f"signed by {who}; {self.file})"
        )


def parse_ttl(text: str) -> timedelta:
    """``90m``, ``2h``, ``1.5h``, ``3600`` (seconds) -> timedelta; ValueError otherwise."""
    m = _TTL.match(text)
    if m is None:
        raise ValueError(f"'{text}' is not a duration: write 30m, 2h or 1d")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2) or "s"])


def override_path(config: Path, created: datetime) -> Path:
    """Where ``aiconfig emergency`` writes an override of ``config`` made at ``created``."""
    stamp = created.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return config.parent / EMERGENCY_DIR / f"{config.stem}@{stamp}.yaml"


def find_overrides(config: Path) -> list[Path]:
    """The override files that name ``config`` by their file name (cheap: one stat if none)."""
    folder = config.parent / EMERGENCY_DIR
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"{glob.escape(config.stem)}@*.yaml"))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_override(
    *,
    base_rel: str,
    base_sha256: str,
    reason: str,
    created: datetime,
    expires: datetime,
    overrides: Mapping[str, Any],
) -> bytes:
    """The bytes of an override file (stable layout)."""
    import yaml

    def dump(obj: Any) -> str:
        return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, width=4096)

    header = (
        f"# EMERGENCY OVERRIDE written by `aiconfig emergency`: active until {_iso(expires)}.\n"
        "# Applied to every load of its base while signed by an on-call principal, unexpired,\n"
        "# and while the base's sha256 is unchanged. Delete this file to end it sooner.\n"
    )
    body = dump(
        {
            "emergency": {
                "base": base_rel,
                "sha256": base_sha256,
                "reason": reason,
                "created": _iso(created),
                "expires": _iso(expires),
            }
        }
    )
    return (header + body + dump({"overrides": dict(overrides)})).encode("utf-8")


def read_override(path: Path) -> bytes:
    """The bytes of an override file: a regular file of at most a config's size (a FIFO or a
    link to a device planted in ``emergency/`` must not hang or exhaust every load)."""
    from ._bounded import read_capped
    from ._yamlsafe import Limits

    try:
        return read_capped(path, Limits().max_bytes, what="emergency override")
    except OSError as exc:
        raise _refuse(f"cannot read it ({exc.strerror})", str(path)) from None
    except AiconfigError as exc:
        raise _refused(exc) from None


def _policy(path: Path, keys: str | os.PathLike[str] | None) -> EmergencyPolicy:
    from ._trust.store import TrustStore, find_keys_dir

    policy = TrustStore.load(find_keys_dir(path, keys)).policy.emergency
    if policy is None:
        raise _no_policy(path)
    return policy


def _no_policy(path: Path) -> EmergencyOverrideError:
    return EmergencyOverrideError(
        "emergency override refused: the trust store has no emergency policy",
        file=str(path),
        hint="add 'emergency: {principals: [oncall@example.com], threshold: 1}' to "
        "keys/policy.yaml (a reviewed change)",
    )


def _refuse(
    message: str,
    file: str,
    *,
    line: int | None = None,
    path: str | None = None,
    hint: str | None = None,
) -> EmergencyOverrideError:
    return EmergencyOverrideError(
        f"emergency override refused: {message}", file=file, line=line, path=path, hint=hint
    )


def _refused(exc: AiconfigError) -> EmergencyOverrideError:
    """``exc``'s problems, each said to refuse the emergency override."""
    return EmergencyOverrideError(
        [
            dataclasses.replace(p, message=f"emergency override refused: {p.message}")
            for p in exc.problems
        ]
    )


def _verify(
    path: Path, data: bytes, keys: str | os.PathLike[str] | None
) -> tuple[tuple[str, ...], EmergencyPolicy]:
    """Signatures on the exact bytes, then the emergency rule: k of the on-call principals.

    The review policy's path rules do not apply (the file lies beside the config it changes,
    where a rule such as ``experiments/*.yaml: 2`` would otherwise demand reviewers): the
    emergency rule is the only threshold, counted like any threshold, a key and the principals
    it is listed under being one person. Returns the on-call signers and the emergency policy.
    """
    from ._trust import count_reviewers, verify_signatures

    try:
        verification = verify_signatures(path, data, keys=keys, rule=(1, "emergency"))
    except AiconfigError as exc:
        raise _refused(exc) from None
    policy = verification.policy.emergency if verification.policy is not None else None
    if policy is None:
        raise _no_policy(path)
    signers = verification.principals
    allowed = tuple(p for p in signers if p in policy.principals)
    on_call = count_reviewers(
        c for c in verification.checks if c.ok and set(c.principals) & set(policy.principals)
    )
    if on_call < policy.threshold:
        raise _refuse(
            f"signed by {', '.join(signers)}, but it needs {policy.threshold} of the emergency "
            f"principals ({', '.join(policy.principals)})",
            str(path),
            hint="have an on-call principal sign it: aiconfig sign FILE --key KEY",
        )
    return allowed, policy


def _covered(key: str, listed: Sequence[str]) -> bool:
    from ._overrides import locked_by

    return locked_by(key, listed) is not None and not any(
        _is_ancestor_only(key, entry) for entry in listed
    )


def _is_ancestor_only(key: str, entry: str) -> bool:
    """True when ``key`` is above ``entry`` (a whole section for one listed key): not covered."""
    from ._keypath import KeyPath
    from ._overrides import parse_edit

    try:
        path, listed = parse_edit(key).path, KeyPath.parse(entry)
    except ValueError:
        return False
    return len(path) < len(listed) and listed.startswith(path)


def check_override(
    path: Path,
    data: bytes,
    *,
    config_path: Path,
    config_bytes: bytes,
    config: AIConfig,
    keys: str | os.PathLike[str] | None,
    now: datetime,
) -> Found | None:
    """Verify, parse and check one override file; None when it is for another config."""
    from ._yamlsafe import parse_yaml

    file = str(path)
    signers, policy = _verify(path, data, keys)
    parsed = parse_yaml(data, file)
    try:
        doc = _Document.model_validate(parsed.data)
    except PydanticValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(map(str, err["loc"]))
        raise _refuse(
            f"malformed override file: {where}: {err['msg']}",
            file,
            hint="write it with 'aiconfig emergency'",
        ) from None
    head = doc.emergency
    base = (path.parent / head.base).resolve()
    if base != config_path.resolve():
        return None  # named like this config, but made for another one
    line = parsed.lines.get
    actual = hashlib.sha256(config_bytes).hexdigest()
    if head.sha256 != actual:
        raise _refuse(
            f"it was made for sha256 {head.sha256}, but {config_path} is now sha256 {actual} "
            "(the config changed)",
            file,
            line=line(("emergency", "sha256")),
            path="emergency.sha256",
            hint="delete it, or issue a new one for the current config with 'aiconfig emergency'",
        )
    longest = min(MAX_TTL, timedelta(hours=policy.max_ttl_hours))
    if head.expires - head.created > longest or head.expires <= head.created:
        raise _refuse(
            f"it lives from {_iso(head.created)} to {_iso(head.expires)}; at most "
            f"{longest.total_seconds() / 3600:g} h is allowed",
            file,
            line=line(("emergency", "expires")),
            path="emergency.expires",
            hint="an emergency override is short-lived: change the config through review",
        )
    if head.created > now + CLOCK_SKEW:
        raise _refuse(
            f"it was created in the future ({_iso(head.created)})",
            file,
            line=line(("emergency", "created")),
            path="emergency.created",
            hint="check the clock of the machine that wrote it",
        )
    listed = tuple(config.meta.emergency)
    problems = [
        Problem(
            f"emergency override refused: '{key}' is not listed in meta.emergency of "
            f"{config_path} ({', '.join(listed) or 'none listed'})",
            file=file,
            line=line(("overrides", key)),
            path=f"overrides.{key}",
            hint="only paths the reviewed config lists may change in an emergency",
        )
        for key in doc.overrides
        if key.split(".", 1)[0].lstrip("~") == "meta" or not _covered(key, listed)
    ]
    if problems:
        raise EmergencyOverrideError(problems)
    return Found(
        file=file,
        sha256=hashlib.sha256(data).hexdigest(),
        reason=head.reason,
        created=head.created,
        expires=head.expires,
        signers=signers,
        overrides=dict(doc.overrides),
        lines={k: line(("overrides", k)) or 0 for k in doc.overrides},
        active=now < head.expires,
    )


def apply_emergency(
    config: AIConfig,
    config_path: Path,
    config_bytes: bytes,
    *,
    keys: str | os.PathLike[str] | None = None,
    now: datetime | None = None,
) -> AIConfig:
    """``config`` with every active override of ``config_path`` applied (oldest first)."""
    files = find_overrides(config_path)
    if not files:
        return config
    now = now or datetime.now(UTC)
    found: list[Found] = []
    for path in files:
        one = check_override(
            path,
            read_override(path),
            config_path=config_path,
            config_bytes=config_bytes,
            config=config,
            keys=keys,
            now=now,
        )
        if one is not None:
            found.append(one)
    for one in found:
        if not one.active:
            warnings.warn(
                f"{config_path}: emergency override {one.file} expired at "
                f"{one.expires.isoformat()}: refused, not applied (the reviewed values hold); "
                "delete the file",
                EmergencyOverrideWarning,
                stacklevel=2,
            )
    active = sorted((f for f in found if f.active), key=lambda f: f.created)
    if not active:
        return config
    return _merge(config, config_path, active)


def _merge(config: AIConfig, config_path: Path, active: list[Found]) -> AIConfig:
    from ._overrides import apply_overrides

    merged = config
    prov = config.provenance
    records = list(prov.emergency)
    sources = dict(prov.sources)
    for one in active:
        try:
            merged = apply_overrides(
                merged, one.overrides, {}, file=one.file, lines=one.lines, locked=()
            )
        except (ForkError, AiconfigError) as exc:
            raise _refused(exc) from None
        records.append(one.record(str(config_path), prov.sha256))
        sources.update({key: f"emergency:{one.file}" for key in one.overrides})
        warnings.warn(
            f"EMERGENCY OVERRIDE ACTIVE on {config_path}: {one.summary()}",
            EmergencyOverrideWarning,
            stacklevel=2,
        )
    return merged.with_provenance(
        dataclasses.replace(prov, emergency=tuple(records), sources=sources)
    )


@dataclasses.dataclass(frozen=True)
class PlannedOverride:
    """An override file ready to write: where, its bytes, what it changes, until when."""

    path: Path
    data: bytes
    overrides: dict[str, Any]
    expires: datetime


def plan_override(
    config_path: Path,
    config: AIConfig,
    *,
    sets: Sequence[str],
    ttl: timedelta,
    reason: str,
    now: datetime | None = None,
    keys: str | os.PathLike[str] | None = None,
) -> PlannedOverride:
    """Type and check an override of ``config`` (loaded from ``config_path``). Nothing is
    written; everything that could refuse it is checked first (except the signer's key)."""
    from ._overrides import normalize_edits, parse_assignment, type_value

    now = (now or datetime.now(UTC)).replace(microsecond=0)
    longest = min(MAX_TTL, timedelta(hours=_policy(config_path, keys).max_ttl_hours))
    if not timedelta(0) < ttl <= longest:
        raise EmergencyOverrideError(
            f"--ttl {ttl} is outside (0, {longest.total_seconds() / 3600:g} h]",
            hint="an emergency override lives at most 24 h: change the config through review",
        )
    if len(reason.strip()) < 3:
        raise EmergencyOverrideError(
            "--reason is required", hint='say why, for the record: --reason "vLLM p99 regression"'
        )
    if not sets:
        raise EmergencyOverrideError("nothing to override", hint="give --set PATH=VALUE")
    pairs = []
    for text in sets:
        key, raw = parse_assignment(text)
        if not _covered(key, config.meta.emergency):
            listed = ", ".join(config.meta.emergency) or "none listed"
            raise EmergencyOverrideError(
                f"'{key}' is not listed in meta.emergency of {config_path} ({listed})",
                path=key,
                hint="only paths the reviewed config lists may change in an emergency",
            )
        pairs.append((key, type_value(key, raw)))
    overrides = normalize_edits(config, pairs)
    target = override_path(config_path, now)
    data = render_override(
        base_rel=f"../{config_path.name}",
        base_sha256=config.provenance.sha256,
        reason=reason.strip(),
        created=now,
        expires=now + ttl,
        overrides=overrides,
    )
    from ._overrides import apply_overrides

    apply_overrides(config, overrides, {}, file=str(target), locked=())  # refuses what won't load
    return PlannedOverride(target, data, overrides, now + ttl)


def review_overrides(
    config_path: Path,
    config_bytes: bytes,
    config: AIConfig,
    *,
    keys: str | os.PathLike[str] | None = None,
    now: datetime | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """For review (``aiconfig diff``): the active overrides of the config file on disk whose
    bytes are ``config_bytes``, as provenance records, and one line per override that would
    be refused. Never raises."""
    now = now or datetime.now(UTC)
    active: list[dict[str, Any]] = []
    problems: list[str] = []
    for path in find_overrides(config_path):
        try:
            one = check_override(
                path,
                read_override(path),
                config_path=config_path,
                config_bytes=config_bytes,
                config=config,
                keys=keys,
                now=now,
            )
        except (AiconfigError, OSError) as exc:
            problems.append(str(exc).splitlines()[0])
            continue
        if one is not None and one.active:
            active.append(one.record(str(config_path), hashlib.sha256(config_bytes).hexdigest()))
    return active, problems
