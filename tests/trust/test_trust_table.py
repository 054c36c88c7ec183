"""Each way a config can fail to be trusted, with its own error type (python-tuf style table)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aiconfig import (
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
    load,
)
from aiconfig._trust import sig_path
from aiconfig._trust.sshsig import fingerprint, parse_armored
from tests.conftest import Keyring

CONFIG = "meta:\n  name: exp\n  version: {version}\n{extra}training:\n  lr: 1e-4\n"


def _config(version: int = 3, extra: str = "") -> str:
    return CONFIG.format(version=version, extra=extra)


def _setup(ring: Keyring) -> Path:
    ring.add("alice@x")
    ring.add("bob@x")
    return ring.write("experiments/exp.yaml", _config(), "alice@x")


def _no_signature(ring: Keyring, cfg: Path) -> None:
    sig_path(cfg).unlink()


def _unknown_key(ring: Keyring, cfg: Path) -> None:
    sig_path(cfg).unlink()
    ring.add("mallory@x", trusted=False)
    ring.sign(cfg, "mallory@x")


def _revoked_key(ring: Keyring, cfg: Path) -> None:
    blob = parse_armored(sig_path(cfg).read_text()).public_key
    ring.policy(f"revoked:\n  - '{fingerprint(blob)}'\n")


def _expired_key(ring: Keyring, cfg: Path) -> None:
    sig_path(cfg).unlink()
    ring.add("old@x", options='namespaces="aiconfig",valid-before="20200101"')
    ring.sign(cfg, "old@x")


def _future_key(ring: Keyring, cfg: Path) -> None:
    sig_path(cfg).unlink()
    ring.add("new@x", options='valid-after="29990101Z"')
    ring.sign(cfg, "new@x")


def _git_namespace(ring: Keyring, cfg: Path) -> None:
    # A git commit signature made by a trusted key, replayed as a config signature.
    sig = subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-f", str(ring.keys["alice@x"]), "-n", "git"],
        input=cfg.read_bytes(),
        capture_output=True,
        check=True,
    ).stdout
    sig_path(cfg).write_bytes(sig)


def _key_not_allowed_namespace(ring: Keyring, cfg: Path) -> None:
    sig_path(cfg).unlink()
    ring.add("gitonly@x", options='namespaces="git"')
    ring.sign(cfg, "gitonly@x")


def _other_files_signature(ring: Keyring, cfg: Path) -> None:
    other = ring.write("experiments/other.yaml", _config(extra="  description: other\n"), "alice@x")
    shutil.copy(sig_path(other), sig_path(cfg))


def _tampered(ring: Keyring, cfg: Path) -> None:
    cfg.write_text(cfg.read_text().replace("1e-4", "1e-3"))


def _comment_added(ring: Keyring, cfg: Path) -> None:
    cfg.write_text(cfg.read_text() + "# harmless?\n")


def _truncated_sig(ring: Keyring, cfg: Path) -> None:
    text = sig_path(cfg).read_text()
    lines = text.splitlines()
    sig_path(cfg).write_text("\n".join([*lines[:2], lines[-1]]) + "\n")


def _garbage_sig(ring: Keyring, cfg: Path) -> None:
    sig_path(cfg).write_bytes(b"\x00\xffnot a signature at all")


def _garbage_base64(ring: Keyring, cfg: Path) -> None:
    sig_path(cfg).write_text("-----BEGIN SSH SIGNATURE-----\n!!!!\n-----END SSH SIGNATURE-----\n")


def _threshold_unmet(ring: Keyring, cfg: Path) -> None:
    ring.policy("rules:\n  - pattern: experiments/*\n    threshold: 2\n")


def _same_signer_twice(ring: Keyring, cfg: Path) -> None:
    ring.policy("rules:\n  - pattern: experiments/*\n    threshold: 2\n")
    # alice's second key: same principal, counts once.
    second = ring.root / "private" / "alice2"
    from aiconfig._trust.signing import allowed_signers_line, generate_keypair

    pub = generate_keypair(second)
    with (ring.keys_dir / "allowed_signers").open("a") as out:
        out.write(allowed_signers_line("alice@x", pub) + "\n")
    ring.keys["alice2"] = second
    ring.sign(cfg, "alice2")


def _expired_config(ring: Keyring, cfg: Path) -> None:
    cfg.write_text(_config(extra="  expires: 2020-01-01\n"))
    sig_path(cfg).unlink()
    ring.sign(cfg, "alice@x")


Case = Callable[[Keyring, Path], None]
CASES: list[tuple[str, Case, type[TrustError], str]] = [
    ("no signature", _no_signature, UnsignedConfigError, "not signed"),
    ("unknown key", _unknown_key, UntrustedKeyError, "not in allowed_signers"),
    ("revoked key", _revoked_key, RevokedKeyError, "revoked key"),
    ("key expired", _expired_key, KeyValidityError, "outside its validity window"),
    ("key not yet valid", _future_key, KeyValidityError, "outside its validity window"),
    ("git namespace", _git_namespace, NamespaceError, "namespace 'git'"),
    ("key limited to git", _key_not_allowed_namespace, NamespaceError, "not allowed to sign"),
    ("signature of another file", _other_files_signature, BadSignatureError, "does not match"),
    ("tampered value", _tampered, BadSignatureError, "does not match"),
    ("comment added", _comment_added, BadSignatureError, "does not match"),
    ("truncated .sig", _truncated_sig, SignatureFormatError, "unreadable signature"),
    ("garbage .sig", _garbage_sig, SignatureFormatError, "no SSH signature block"),
    ("bad base64", _garbage_base64, SignatureFormatError, "not valid base64"),
    ("threshold unmet", _threshold_unmet, ThresholdError, "1 of 2 required"),
    ("same signer twice", _same_signer_twice, ThresholdError, "1 of 2 required"),
    ("expired config", _expired_config, ExpiredConfigError, "expired at 2020-01-01"),
]


@pytest.mark.parametrize(
    ("case", "error", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_trust_failure(
    keyring: Keyring, tmp_path: Path, case: Case, error: type[TrustError], needle: str
) -> None:
    cfg = _setup(keyring)
    load(cfg, data_root=tmp_path)  # trusted before the mutation
    case(keyring, cfg)
    with pytest.raises(error) as info:
        load(cfg, data_root=tmp_path / "fresh")
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_threshold_met_by_two_distinct_reviewers(keyring: Keyring, tmp_path: Path) -> None:
    cfg = _setup(keyring)
    keyring.policy("rules:\n  - pattern: experiments/*\n    threshold: 2\n")
    keyring.sign(cfg, "bob@x")
    loaded = load(cfg, data_root=tmp_path)
    assert {s.principal for s in loaded.provenance.signers} == {"alice@x", "bob@x"}
    assert all(s.fingerprint.startswith("SHA256:") for s in loaded.provenance.signers)


def test_untrusted_extra_signature_is_ignored_when_threshold_met(
    keyring: Keyring, tmp_path: Path
) -> None:
    cfg = _setup(keyring)
    keyring.add("mallory@x", trusted=False)
    keyring.sign(cfg, "mallory@x")
    assert [s.principal for s in load(cfg, data_root=tmp_path).provenance.signers] == ["alice@x"]


def test_rollback_refused_and_same_version_new_content_refused(
    keyring: Keyring, tmp_path: Path
) -> None:
    keyring.add("alice@x")
    v5 = keyring.write("experiments/exp.yaml", _config(version=5), "alice@x")
    old = keyring.write("old/exp.yaml", _config(version=4), "alice@x")
    load(v5, data_root=tmp_path)
    load(v5, data_root=tmp_path)  # reloading the same version is fine
    with pytest.raises(RollbackError, match="version 4 of 'exp' is older than version 5"):
        load(old, data_root=tmp_path)
    changed = keyring.write(
        "other/exp.yaml", _config(version=5, extra="  description: x\n"), "alice@x"
    )
    with pytest.raises(RollbackError, match="already accepted with different content"):
        load(changed, data_root=tmp_path)
    newer = keyring.write("new/exp.yaml", _config(version=6), "alice@x")
    assert load(newer, data_root=tmp_path).meta.version == 6
    with pytest.raises(RollbackError):
        load(v5, data_root=tmp_path)


def test_rollback_state_is_safe_under_concurrent_processes(
    keyring: Keyring, tmp_path: Path
) -> None:
    import sys

    keyring.add("alice@x")
    paths = [keyring.write(f"v/{v}.yaml", _config(version=v), "alice@x") for v in range(1, 9)]
    script = (
        "import sys\nfrom aiconfig import RollbackError, load\n"
        "try:\n    load(sys.argv[1], data_root=sys.argv[2])\nexcept RollbackError:\n    pass\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(p), str(tmp_path / "dr")])
        for p in paths
    ]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    state = (tmp_path / "dr" / "aiconfig-trust" / "versions.json").read_text()
    assert '"version": 8' in state


def test_expiry_in_future_is_fine_and_now_is_injectable(keyring: Keyring, tmp_path: Path) -> None:
    keyring.add("alice@x")
    cfg = keyring.write("experiments/e.yaml", _config(extra="  expires: 2030-01-01\n"), "alice@x")
    assert load(cfg, data_root=tmp_path).meta.expires is not None
    later = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=1)
    with pytest.raises(ExpiredConfigError):
        load(cfg, data_root=tmp_path, now=later)


def test_verify_before_parse_hostile_bytes_never_reach_yaml(
    keyring: Keyring, tmp_path: Path
) -> None:
    keyring.add("alice@x")
    bomb = keyring.root / "experiments" / "bomb.yaml"
    bomb.parent.mkdir(parents=True, exist_ok=True)
    bomb.write_bytes(b"a: !!python/object/apply:os.system ['touch " + bytes(tmp_path) + b"/x']\n")
    with pytest.raises(UnsignedConfigError):
        load(bomb, data_root=tmp_path)
