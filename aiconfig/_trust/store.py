"""The trust store in ``keys/``: ``allowed_signers`` (git's format) and ``policy.yaml``.

``allowed_signers`` lines are ``principals [options] keytype base64-key [comment]`` exactly as
``ssh-keygen -Y verify`` and git read them; options understood: ``namespaces="..."``,
``valid-after="YYYYMMDD[HHMM[SS]][Z]"``, ``valid-before=...`` and ``cert-authority`` (refused:
plain keys only). ``policy.yaml`` sets the number of distinct principals that must sign
(k-of-n) per config path pattern, and lists revoked keys.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from .._bounded import read_capped
from .._errors import ConfigFileError, ConfigValidationError
from .sshsig import fingerprint

__all__ = [
    "AllowedSigner",
    "EmergencyPolicy",
    "Policy",
    "TrustStore",
    "find_keys_dir",
    "revoked_fingerprint",
]

MAX_STORE_BYTES = 1 << 20  # allowed_signers / policy.yaml

KEY_TYPES = {
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
}


@dataclass(frozen=True)
class AllowedSigner:
    principals: tuple[str, ...]
    key_blob: bytes
    key_type: str
    namespaces: tuple[str, ...] | None
    valid_after: datetime | None
    valid_before: datetime | None
    line: int

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key_blob)


class Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    pattern: str
    threshold: Annotated[int, Field(ge=1, le=100)]


class EmergencyPolicy(BaseModel):
    """Who may sign an emergency override (``aiconfig emergency``): k of these principals."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    principals: Annotated[tuple[str, ...], Field(min_length=1)]
    threshold: Annotated[int, Field(ge=1, le=100)] = 1
    max_ttl_hours: Annotated[float, Field(gt=0, le=24)] = 24


class NameRule(BaseModel):
    """A threshold for every file that carries a config identity (``meta.name`` pattern)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    threshold: Annotated[int, Field(ge=1, le=100)]


DEFAULT_RULE = "<default>"


class Policy(BaseModel):
    """k-of-n review policy.

    ``rules`` match the config's real path relative to the trust store's tree (first match
    wins); ``names`` match its ``meta.name`` (first match wins). A file needs the stricter of
    the two, so copying the baseline to another path does not lower its threshold. A file
    that matches no path rule, or whose real path lies outside the tree, is refused when the
    policy has rules, unless ``unmatched: default`` says ``threshold`` applies to it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    version: int = 1
    threshold: Annotated[int, Field(ge=1, le=100)] = 1
    rules: tuple[Rule, ...] = ()
    names: tuple[NameRule, ...] = ()
    unmatched: Literal["refuse", "default"] | None = None
    revoked: tuple[str, ...] = ()  # fingerprints (SHA256:...) or public key lines
    emergency: EmergencyPolicy | None = None  # None: emergency overrides are refused

    @property
    def refuses_unmatched(self) -> bool:
        """``unmatched`` as written, else refuse whenever there are rules at all."""
        if self.unmatched is not None:
            return self.unmatched == "refuse"
        return bool(self.rules or self.names)

    def threshold_for(self, relpath: str) -> tuple[int, str]:
        for rule in self.rules:
            if fnmatch.fnmatchcase(relpath, rule.pattern):
                return rule.threshold, rule.pattern
        return self.threshold, DEFAULT_RULE

    def name_threshold_for(self, name: str) -> tuple[int, str] | None:
        """The first ``names`` rule matching ``meta.name``: (threshold, "name: PATTERN")."""
        for rule in self.names:
            if fnmatch.fnmatchcase(name, rule.name):
                return rule.threshold, f"name: {rule.name}"
        return None

    def revoked_fingerprints(self) -> set[str]:
        """Every ``revoked`` entry as a canonical ``SHA256:...`` fingerprint.

        Raises ValueError (naming the entry's index) for an entry that does not parse: a
        revocation that silently matches nothing would leave the key trusted (fail open).
        """
        return {revoked_fingerprint(entry, index) for index, entry in enumerate(self.revoked)}


def revoked_fingerprint(entry: str, index: int = 0) -> str:
    """One revocation entry (fingerprint, public key line or allowed_signers line) -> fingerprint.

    ``sha256:`` in any case and with or without ``=`` padding is the same fingerprint.
    """
    text = entry.strip()
    head, sep, body = text.partition(":")
    if sep and head.lower() == "sha256" and " " not in text:
        raw = body.rstrip("=")
        try:
            digest = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
        except (binascii.Error, ValueError):
            digest = b""
        if len(digest) != 32:
            raise ValueError(f"revoked[{index}]: '{text}' is not a SHA256 key fingerprint")
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
    if sep and head.lower() == "md5" and " " not in text:
        raise ValueError(
            f"revoked[{index}]: MD5 fingerprints are not accepted; use the SHA256 one "
            "('ssh-keygen -l -f KEY.pub') or the public key line"
        )
    try:
        toks = _tokens(text)
    except ValueError:
        toks = []
    for pos, tok in enumerate(toks[:-1]):
        if tok in KEY_TYPES:
            try:
                return fingerprint(base64.b64decode(toks[pos + 1], validate=True))
            except (binascii.Error, ValueError):
                break
    raise ValueError(
        f"revoked[{index}]: '{text[:60]}' is neither a SHA256:... fingerprint nor a public key line"
    )


def _tokens(line: str) -> list[str]:
    """Split on whitespace, keeping double-quoted sections together."""
    out: list[str] = []
    buf: list[str] = []
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
            buf.append(ch)
        elif ch.isspace() and not quoted:
            if buf:
                out.append("".join(buf))
                buf = []
        else:
            buf.append(ch)
    if quoted:
        raise ValueError("unterminated quote")
    if buf:
        out.append("".join(buf))
    return out


def _options(text: str) -> dict[str, str]:
    opts: dict[str, str] = {}
    buf: list[str] = []
    quoted = False
    items: list[str] = []
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            items.append("".join(buf))
            buf = []
            continue
        buf.append(ch)
    items.append("".join(buf))
    for item in items:
        name, _, value = item.partition("=")
        opts[name.strip().lower()] = value.strip().strip('"')
    return opts


def _parse_time(value: str) -> datetime:
    utc = value.endswith(("Z", "z"))
    digits = value.rstrip("Zz")
    fmt = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}.get(len(digits))
    if fmt is None:
        raise ValueError(f"bad time '{value}' (want YYYYMMDD[HHMM[SS]][Z])")
    parsed = datetime.strptime(digits, fmt)
    return parsed.replace(tzinfo=UTC) if utc else parsed.astimezone()


def parse_allowed_signers(text: str, file: str) -> list[AllowedSigner]:
    signers: list[AllowedSigner] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            toks = _tokens(line)
            if len(toks) < 3:
                raise ValueError("want: principals [options] keytype key")
            principals = tuple(p for p in toks[0].strip('"').split(",") if p)
            idx = 1
            opts: dict[str, str] = {}
            if toks[idx] not in KEY_TYPES:
                opts = _options(toks[idx])
                idx += 1
            if idx + 1 >= len(toks) + 0 and idx >= len(toks):
                raise ValueError("missing key")
            key_type = toks[idx]
            if key_type not in KEY_TYPES:
                raise ValueError(f"unknown key type '{key_type}'")
            blob = base64.b64decode(toks[idx + 1], validate=True)
            if "cert-authority" in opts:
                raise ValueError("cert-authority entries are not supported; list plain keys")
            namespaces = (
                tuple(n.strip() for n in opts["namespaces"].split(","))
                if "namespaces" in opts
                else None
            )
            signers.append(
                AllowedSigner(
                    principals=principals,
                    key_blob=blob,
                    key_type=key_type,
                    namespaces=namespaces,
                    valid_after=_parse_time(opts["valid-after"]) if "valid-after" in opts else None,
                    valid_before=(
                        _parse_time(opts["valid-before"]) if "valid-before" in opts else None
                    ),
                    line=number,
                )
            )
        except (ValueError, IndexError, binascii.Error) as exc:
            raise ConfigFileError(
                f"bad allowed_signers entry: {exc}",
                file=file,
                line=number,
                hint='format: principal[,principal] [namespaces="aiconfig"] ssh-ed25519 AAAA...',
            ) from None
    return signers


def find_keys_dir(config_path: Path, keys: str | os.PathLike[str] | None) -> Path:
    """``--keys``, else ``$AICONFIG_KEYS``, else the nearest ``keys/`` above the config."""
    if keys is not None:
        return Path(keys)
    env = os.environ.get("AICONFIG_KEYS")
    if env:
        return Path(env)
    for parent in config_path.resolve().parents:
        if (parent / "keys" / "allowed_signers").is_file():
            return parent / "keys"
    return Path("keys")


@dataclass(frozen=True)
class TrustStore:
    root: Path  # the directory holding keys/ (config paths are matched relative to it)
    signers: tuple[AllowedSigner, ...]
    policy: Policy
    revoked: frozenset[str]

    @classmethod
    def load(cls, keys_dir: Path) -> TrustStore:
        """Read ``keys_dir``; parsed stores are reused while the files' bytes are the same."""
        allowed = keys_dir / "allowed_signers"
        try:
            raw = read_capped(allowed, MAX_STORE_BYTES, what="allowed_signers")
            text = raw.decode("utf-8")
        except FileNotFoundError:
            raise ConfigFileError(
                "no trust store: allowed_signers not found",
                file=str(allowed),
                hint="pass --keys DIR or set AICONFIG_KEYS (see README: trust model)",
            ) from None
        except UnicodeDecodeError as exc:
            raise ConfigFileError(f"cannot read: {exc}", file=str(allowed)) from None
        policy_path = keys_dir / "policy.yaml"
        policy_bytes = _read_policy(policy_path)
        root = keys_dir.resolve().parent
        # Keyed by the exact bytes read just now, so a cached store is never stale.
        key = (root, raw, policy_bytes)
        cached = _CACHE.get(key)
        if cached is not None:
            return cached
        signers = parse_allowed_signers(text, str(allowed))
        policy = _parse_policy(policy_path, policy_bytes)
        try:
            revoked = frozenset(policy.revoked_fingerprints())
        except ValueError as exc:
            raise ConfigFileError(
                f"bad revocation: {exc}",
                file=str(policy_path),
                path="revoked",
                hint="write a fingerprint as 'ssh-keygen -l' prints it (SHA256:...) or paste the "
                "key's public line; a revocation that matches nothing would leave the key trusted",
            ) from None
        store = cls(
            root=root,
            signers=tuple(signers),
            policy=policy,
            revoked=revoked,
        )
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = store
        return store

    def entries_for(self, key_blob: bytes) -> list[AllowedSigner]:
        return [s for s in self.signers if s.key_blob == key_blob]

    def relpath(self, config: Path) -> str:
        """The config's REAL path (symlinks resolved) relative to the tree, else absolute."""
        resolved = config.resolve()
        try:
            return resolved.relative_to(self.root).as_posix()
        except ValueError:
            return resolved.as_posix()

    def inside(self, config: Path) -> bool:
        return config.resolve().is_relative_to(self.root)


_CACHE: dict[tuple[Path, bytes, bytes | None], TrustStore] = {}
_CACHE_SIZE = 16


def _read_policy(path: Path) -> bytes | None:
    try:
        return read_capped(path, MAX_STORE_BYTES, what="policy file")
    except FileNotFoundError:
        return None


def _parse_policy(path: Path, data: bytes | None) -> Policy:
    if data is None:
        return Policy()
    from .._yamlsafe import parse_yaml

    parsed = parse_yaml(data, str(path))
    try:
        return Policy.model_validate(parsed.data)
    except PydanticValidationError as exc:
        from .._explain import translate

        raise ConfigValidationError(
            translate(
                exc,
                parsed.data,
                file=str(path),
                lines=parsed.lines,
                root=Policy,
                message_prefix="bad policy: ",
                hint="see README: trust model",
            )
        ) from None
