"""Config trust: SSHSIG signatures, allowed signers, k-of-n policy, anti-rollback, expiry.

Follows python-tuf's lessons: signatures are checked on the exact bytes before parsing; a
threshold of distinct trusted principals must sign; versions never go backwards; expired
configs are refused. Each failure has its own error type and a one-line message.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._bounded import read_capped
from .._errors import (
    BadSignatureError,
    ConfigFileError,
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
from .store import DEFAULT_RULE, Policy, TrustStore, find_keys_dir

if TYPE_CHECKING:
    from .._schema import AIConfig

__all__ = [
    "SignatureCheck",
    "Verification",
    "check_freshness",
    "check_identity",
    "count_reviewers",
    "name_threshold",
    "sig_path",
    "verify_signatures",
]


MAX_SIG_BYTES = 256 << 10  # one SSHSIG block is under 2 KiB even for RSA-4096


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
    reviewers: int = 0  # distinct reviewers (see count_reviewers), what the threshold counts
    keys_dir: Path | None = None  # the trust store used (a fork's base is verified with it too)
    policy: Policy | None = None

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
    rule: tuple[int, str] | None = None,
) -> Verification:
    """Check ``config``'s ``.sig`` against the trust store; raise the reason it is not trusted.

    The threshold is the review policy's path rule for ``config``, or ``rule`` (threshold,
    name) for a document the policy's path rules do not govern: an emergency override is held
    to the emergency rule alone, which its caller then applies to the on-call principals.
    """
    now = now or datetime.now(UTC)
    file = str(config)
    sig_file = sig_path(config)
    keys_dir = find_keys_dir(config, keys)
    store = TrustStore.load(keys_dir)
    try:
        text = read_capped(sig_file, MAX_SIG_BYTES, what="signature file").decode(
            "utf-8", "replace"
        )
    except FileNotFoundError:
        raise UnsignedConfigError(
            f"not signed: {sig_file.name} not found",
            file=file,
            hint=f"have a reviewer run 'aiconfig sign {file} --key ~/.ssh/id_ed25519'",
        ) from None
    except ConfigFileError as exc:
        raise SignatureFormatError(
            exc.problems[0].message, file=str(sig_file), hint=exc.problems[0].hint
        ) from None
    blocks = split_armored(text)
    if not blocks:
        raise SignatureFormatError(
            "signature file holds no SSH signature block",
            file=str(sig_file),
            hint="re-sign with 'aiconfig sign'",
        )
    threshold, rule_name = rule or _path_threshold(store, config, keys_dir)
    checks: list[SignatureCheck] = []
    signers: dict[str, Signer] = {}
    for block in blocks:
        check, found = _check_one(block, data, store, file, str(sig_file), now)
        checks.append(check)
        for s in found:
            signers.setdefault(s.principal, s)
    reviewers = count_reviewers(c for c in checks if c.ok)
    if signers and reviewers >= threshold:
        return Verification(
            file,
            threshold,
            rule_name,
            tuple(signers.values()),
            tuple(checks),
            reviewers,
            keys_dir=keys_dir,
            policy=store.policy,
        )
    failures = [c.error for c in checks if c.error is not None]
    if not signers and failures:
        raise failures[0]
    names = ", ".join(sorted(signers)) or "nobody"
    raise ThresholdError(
        f"{reviewers} of {threshold} required reviewers signed ({names}; policy rule "
        f"'{rule_name}')",
        file=file,
        hint="another reviewer must run 'aiconfig sign' (a key counts once whatever principals "
        "it is listed under, and a person with several keys counts once)",
    )


def _path_threshold(store: TrustStore, config: Path, keys_dir: Path) -> tuple[int, str]:
    """The path rule for ``config``'s real path; refuse a file outside the tree or no rule."""
    policy_file = str(keys_dir / "policy.yaml")
    if not store.inside(config):
        if store.policy.refuses_unmatched:
            raise ThresholdError(
                f"real path {config.resolve()} lies outside the trust store's tree {store.root} "
                "(policy rule 'unmatched: refuse')",
                file=str(config),
                hint=f"keep configs under {store.root}, or set 'unmatched: default' in "
                f"{policy_file} to give such files the default threshold",
            )
        return store.policy.threshold, DEFAULT_RULE
    relpath = store.relpath(config)
    threshold, rule = store.policy.threshold_for(relpath)
    if rule == DEFAULT_RULE and store.policy.refuses_unmatched:
        raise ThresholdError(
            f"{relpath} matches no rule of the review policy (policy rule 'unmatched: refuse')",
            file=str(config),
            hint=f"add a rule for it to {policy_file}, or set 'unmatched: default'",
        )
    return threshold, rule


def name_threshold(verification: Verification, name: str) -> tuple[int, str]:
    """What a file carrying ``meta.name == name`` needs: the stricter of path and name rules."""
    best = (verification.threshold, verification.rule)
    if verification.policy is not None:
        by_name = verification.policy.name_threshold_for(name)
        if by_name is not None and by_name[0] > best[0]:
            best = by_name
    return best


def check_identity(config: AIConfig, verification: Verification, file: str) -> None:
    """Refuse a file whose reviewers do not meet the threshold of the config it claims to be.

    Called once the verified bytes are parsed: the threshold belongs to ``meta.name`` too, so
    ``experiments/hotfix.yaml`` carrying ``name: lol-bc-baseline`` needs the baseline's
    reviewers, not the ``experiments/*`` rule's.
    """
    needed, rule = name_threshold(verification, config.meta.name)
    if verification.reviewers < needed:
        raise _short(
            verification, needed, f"policy rule '{rule}' for config '{config.meta.name}'", file
        )


def _short(verification: Verification, needed: int, why: str, file: str) -> ThresholdError:
    names = ", ".join(verification.principals) or "nobody"
    return ThresholdError(
        f"{verification.reviewers} of {needed} required reviewers signed ({names}; {why})",
        file=file,
        hint="another reviewer must run 'aiconfig sign' (a key counts once whatever principals "
        "it is listed under, and a person with several keys counts once)",
    )


def count_reviewers(checks: Iterable[SignatureCheck]) -> int:
    """Distinct reviewers among verified signatures.

    A reviewer is a connected group of keys and principals: one key listed under two principals
    (``alice@x,alice@home``, or two lines with the same key) is one reviewer, and so is one
    principal holding two keys. Counting principals alone, or keys alone, lets one person
    reach a 2-of-n threshold.
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for check in checks:
        key = "key:" + check.fingerprint
        find(key)
        for principal in check.principals:
            parent[find("principal:" + principal)] = find(key)
    return len({find(k) for k in parent if k.startswith("key:")})


def _check_version(previous: dict[str, Any], config: AIConfig, file: str) -> None:
    meta = config.meta
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


def _admit(
    previous: dict[str, Any] | None, config: AIConfig, file: str, verification: Verification | None
) -> None:
    """Checked under the state lock, before anything is recorded."""
    if previous is None:
        return
    strictest = int(previous.get("threshold") or 0)
    if verification is not None and verification.reviewers < strictest:
        raise _short(
            verification,
            strictest,
            f"'{config.meta.name}' was accepted before with {strictest} reviewers required; "
            "anti-rollback state",
            file,
        )
    _check_version(previous, config, file)


def check_freshness(
    config: AIConfig,
    file: str,
    *,
    data_root: str | os.PathLike[str] | None = None,
    now: datetime | None = None,
    record: bool = True,
    verification: Verification | None = None,
) -> None:
    """Refuse expired configs and versions lower than one already accepted for this name.

    With ``verification``, also refuse fewer reviewers than the strictest threshold ever
    required for this name on this data root (recorded beside the version): once the baseline
    was accepted with 2 reviewers, no 1-reviewer file carrying its name is accepted.
    """
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
    needed = name_threshold(verification, meta.name)[0] if verification is not None else 0
    record_version(
        root,
        meta.name,
        meta.version,
        config.provenance.sha256,
        record=record,
        threshold=needed,
        admit=lambda prev: _admit(prev, config, file, verification),
    )
