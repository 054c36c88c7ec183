"""Config trust: SSHSIG signatures, allowed signers, k-of-n policy, anti-rollback, expiry.

Follows python-tuf's lessons: signatures are checked on the exact bytes before parsing; a
threshold of distinct trusted principals must sign; versions never go backwards; expired
configs are refused. Each failure has its own error type and a one-line message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .._errors import (
    BadSignatureError,
    ExpiredConfigError,
    KeyValidityError,
    NamespaceError,
    RevokedKeyError,
    RollbackError,
    SignatureFormatError,
    ThresholdError,
    TrustError,
    UnsignedConfigError,
    UntrustedKeyError,
)
from .._provenance import Signer
from .sshsig import NAMESPACE, SshsigFormatError, parse_armored, split_armored, verify
from .state import default_data_root, record_version
from .store import TrustStore, find_keys_dir

if TYPE_CHECKING:
    from .._schema import AIConfig

__all__ = ["SignatureCheck", "Verification", "check_freshness", "sig_path", "verify_signatures"]


def sig_path(config: Path) -> Path:
    return config.with_name(config.name + ".sig")


@dataclass(frozen=True)
class SignatureCheck:
    """The outcome for one signature block."""

    fingerprint: str
    principals: tuple[str, ...]
    ok: bool
    error: TrustError | None = None


@dataclass(frozen=True)
class Verification:
    file: str
    threshold: int
    rule: str
    signers: tuple[Signer, ...]
    checks: tuple[SignatureCheck, ...] = field(default_factory=tuple)

    @property
    def principals(self) -> tuple[str, ...]:
        return tuple(sorted({s.principal for s in self.signers}))


def _check_one(
    block: str, data: bytes, store: TrustStore, file: str, sig_file: str, now: datetime
) -> tuple[SignatureCheck, list[Signer]]:
    try:
        sig = parse_armored(block)
    except SshsigFormatError as exc:
        err: TrustError = SignatureFormatError(
            f"unreadable signature: {exc}", file=sig_file, hint="re-sign with 'aiconfig sign'"
        )
        return SignatureCheck("?", (), False, err), []
    fp = sig.fingerprint
    if sig.namespace != NAMESPACE:
        err = NamespaceError(
            f"signature by {fp} is for namespace '{sig.namespace}', not '{NAMESPACE}'",
            file=sig_file,
            hint="sign with 'aiconfig sign' or 'ssh-keygen -Y sign -n aiconfig'",
        )
        return SignatureCheck(fp, (), False, err), []
    if fp in store.revoked:
        err = RevokedKeyError(
            f"signed by revoked key {fp}",
            file=sig_file,
            hint="ask a current reviewer to sign; remove this signature",
        )
        return SignatureCheck(fp, (), False, err), []
    entries = store.entries_for(sig.public_key)
    if not entries:
        err = UntrustedKeyError(
            f"signed by {fp}, which is not in allowed_signers",
            file=sig_file,
            hint="add the reviewer's public key to keys/allowed_signers (via review)",
        )
        return SignatureCheck(fp, (), False, err), []
    if not verify(sig, data):
        err = BadSignatureError(
            f"signature by {fp} does not match the file bytes",
            file=file,
            hint="the file changed after signing (or the .sig belongs to another file); "
            "review the change and re-sign",
        )
        return SignatureCheck(fp, (), False, err), []
    usable = [e for e in entries if e.namespaces is None or NAMESPACE in e.namespaces]
    if not usable:
        err = NamespaceError(
            f"key {fp} is not allowed to sign namespace '{NAMESPACE}' (allowed_signers line "
            f"{entries[0].line})",
            file=sig_file,
            hint='add namespaces="aiconfig" to its entry',
        )
        return SignatureCheck(fp, (), False, err), []
    valid = [
        e
        for e in usable
        if (e.valid_after is None or now >= e.valid_after)
        and (e.valid_before is None or now < e.valid_before)
    ]
    if not valid:
        e = usable[0]
        window = f"valid-after={e.valid_after or '-'} valid-before={e.valid_before or '-'}"
        err = KeyValidityError(
            f"key {fp} is outside its validity window ({window})",
            file=sig_file,
            hint="ask a reviewer with a current key to sign",
        )
        return SignatureCheck(fp, (), False, err), []
    principals = tuple(sorted({p for e in valid for p in e.principals}))
    signers = [Signer(principal=p, fingerprint=fp, key_type=sig.key_type) for p in principals]
    return SignatureCheck(fp, principals, True), signers


def verify_signatures(
    config: Path,
    data: bytes,
    *,
    keys: str | os.PathLike[str] | None = None,
    now: datetime | None = None,
) -> Verification:
    """Check ``config``'s ``.sig`` against the trust store; raise the reason it is not trusted."""
    now = now or datetime.now(UTC)
    file = str(config)
    sig_file = sig_path(config)
    store = TrustStore.load(find_keys_dir(config, keys))
    threshold, rule = store.policy.threshold_for(store.relpath(config))
    try:
        text = sig_file.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        raise UnsignedConfigError(
            f"not signed: {sig_file.name} not found",
            file=file,
            hint=f"have a reviewer run 'aiconfig sign {file} --key ~/.ssh/id_ed25519'",
        ) from None
    except OSError as exc:
        raise SignatureFormatError(
            f"cannot read signature: {exc.strerror}", file=str(sig_file)
        ) from None
    blocks = split_armored(text)
    if not blocks:
        raise SignatureFormatError(
            "signature file holds no SSH signature block",
            file=str(sig_file),
            hint="re-sign with 'aiconfig sign'",
        )
    checks: list[SignatureCheck] = []
    signers: dict[str, Signer] = {}
    for block in blocks:
        check, found = _check_one(block, data, store, file, str(sig_file), now)
        checks.append(check)
        for s in found:
            signers.setdefault(s.principal, s)  # one principal counts once
    if len(signers) >= threshold:
        return Verification(file, threshold, rule, tuple(signers.values()), tuple(checks))
    failures = [c.error for c in checks if c.error is not None]
    if not signers and failures:
        raise failures[0]
    names = ", ".join(sorted(signers)) or "nobody"
    raise ThresholdError(
        f"{len(signers)} of {threshold} required reviewers signed ({names}; policy rule '{rule}')",
        file=file,
        hint="another reviewer must run 'aiconfig sign' (the same person twice counts once)",
    )


def check_freshness(
    config: AIConfig,
    file: str,
    *,
    data_root: str | os.PathLike[str] | None = None,
    now: datetime | None = None,
    record: bool = True,
) -> None:
    """Refuse expired configs and versions lower than one already accepted for this name."""
    now = now or datetime.now(UTC)
    meta = config.meta
    if meta.expires is not None and meta.expires <= now:
        raise ExpiredConfigError(
            f"config expired at {meta.expires.isoformat()}",
            file=file,
            path="meta.expires",
            hint="a reviewer must extend meta.expires, bump meta.version and re-sign",
        )
    root = Path(data_root) if data_root is not None else default_data_root()
    previous = record_version(
        root, meta.name, meta.version, config.provenance.sha256, record=record
    )
    if previous is None:
        return
    prev_version = int(previous["version"])
    if meta.version < prev_version:
        raise RollbackError(
            f"version {meta.version} of '{meta.name}' is older than version {prev_version} "
            "already accepted",
            file=file,
            path="meta.version",
            hint="use the current config; a newer one must carry a higher meta.version",
        )
    if meta.version == prev_version and previous.get("sha256") not in (
        None,
        config.provenance.sha256,
    ):
        raise RollbackError(
            f"version {meta.version} of '{meta.name}' was already accepted with different content",
            file=file,
            path="meta.version",
            hint="bump meta.version whenever the config changes, then re-sign",
        )
