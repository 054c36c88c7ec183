"""Attacks on the trust store, performed for real: ssh-keygen keys, real files, real CLI.

Each test plants what an attacker would plant and checks that it is refused with one line
that names the rule it breaks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aiconfig import ConfigFileError, RevokedKeyError, SignatureFormatError, ThresholdError, load
from aiconfig._trust import sig_path
from aiconfig._trust.signing import sign_file
from aiconfig._trust.sshsig import fingerprint, parse_armored
from aiconfig.cli import main
from tests.conftest import Keyring

CONFIG = "meta:\n  name: exp\n  version: {version}\ntraining:\n  lr: 1e-4\n"
TWO = "rules:\n  - pattern: experiments/*\n    threshold: 2\n"


def _ssh_keygen(key: Path, principal: str) -> str:
    """A real OpenSSH key pair; returns the public line."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", principal, "-f", str(key)],
        check=True,
        capture_output=True,
    )
    return key.with_name(key.name + ".pub").read_text().strip()


def _sign(key: Path, cfg: Path) -> None:
    """``ssh-keygen -Y sign`` exactly as a reviewer would run it (one block per reviewer)."""
    out = subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-f", str(key), "-n", "aiconfig"],
        input=cfg.read_bytes(),
        capture_output=True,
        check=True,
    ).stdout
    with sig_path(cfg).open("ab") as sig:
        sig.write(out)


def _store(ring: Keyring, *lines: str, policy: str = TWO) -> None:
    (ring.keys_dir / "allowed_signers").write_text("\n".join(lines) + "\n")
    ring.policy(policy)


def _cfg(ring: Keyring, version: int = 1) -> Path:
    path = ring.root / "experiments" / "exp.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(CONFIG.format(version=version))
    return path


def _verify_cli(ring: Keyring, cfg: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["verify", str(cfg), "--keys", str(ring.keys_dir)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out + err


# ---------------------------------------------------------------- 2: one key, two principals


def test_one_key_under_two_principals_is_one_reviewer(
    keyring: Keyring, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pub = _ssh_keygen(tmp_path / "alice", "alice")
    kt, blob = pub.split()[:2]
    _store(keyring, f'alice@x,alice@home namespaces="aiconfig" {kt} {blob}')
    cfg = _cfg(keyring)
    _sign(tmp_path / "alice", cfg)
    with pytest.raises(ThresholdError, match=r"1 of 2 required reviewers .*policy rule") as info:
        load(cfg, keys=keyring.keys_dir)
    assert "experiments/*" in str(info.value) and "\n" not in str(info.value)
    code, text = _verify_cli(keyring, cfg, capsys)
    assert code == 1 and "1 of 2 required reviewers" in text and len(text.splitlines()) == 1


def test_same_key_on_two_lines_is_one_reviewer(keyring: Keyring, tmp_path: Path) -> None:
    pub = _ssh_keygen(tmp_path / "alice", "alice")
    kt, blob = pub.split()[:2]
    _store(
        keyring,
        f'alice@x namespaces="aiconfig" {kt} {blob}',
        f'bob@x namespaces="aiconfig" {kt} {blob}',
    )
    cfg = _cfg(keyring)
    _sign(tmp_path / "alice", cfg)
    _sign(tmp_path / "alice", cfg)  # the same signature twice does not help either
    with pytest.raises(ThresholdError, match="1 of 2 required reviewers"):
        load(cfg, keys=keyring.keys_dir)


def test_keys_sharing_a_principal_are_one_reviewer(keyring: Keyring, tmp_path: Path) -> None:
    # key A is alice's; key B is listed for "alice@x,bob@x": whoever holds B may be alice.
    a = _ssh_keygen(tmp_path / "a", "a").split()
    b = _ssh_keygen(tmp_path / "b", "b").split()
    _store(
        keyring,
        f'alice@x namespaces="aiconfig" {a[0]} {a[1]}',
        f'alice@x,bob@x namespaces="aiconfig" {b[0]} {b[1]}',
    )
    cfg = _cfg(keyring)
    _sign(tmp_path / "a", cfg)
    _sign(tmp_path / "b", cfg)
    with pytest.raises(ThresholdError, match="1 of 2 required reviewers"):
        load(cfg, keys=keyring.keys_dir)


def test_two_real_reviewers_still_pass(
    keyring: Keyring, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _ssh_keygen(tmp_path / "a", "a").split()
    b = _ssh_keygen(tmp_path / "b", "b").split()
    _store(
        keyring,
        f'alice@x,alice@home namespaces="aiconfig" {a[0]} {a[1]}',
        f'bob@x namespaces="aiconfig" {b[0]} {b[1]}',
    )
    cfg = _cfg(keyring)
    _sign(tmp_path / "a", cfg)
    _sign(tmp_path / "b", cfg)
    assert load(cfg, keys=keyring.keys_dir).meta.name == "exp"
    code, text = _verify_cli(keyring, cfg, capsys)
    assert code == 0 and "2/2 reviewers" in text


# ---------------------------------------------------------------- 10: revocation fails closed


def _revocation_setup(keyring: Keyring, tmp_path: Path) -> tuple[Path, str, str]:
    pub = _ssh_keygen(tmp_path / "alice", "alice@x")
    kt, blob = pub.split()[:2]
    line = f'alice@x namespaces="aiconfig" {kt} {blob}'
    _store(keyring, line, policy="threshold: 1\n")
    cfg = _cfg(keyring)
    _sign(tmp_path / "alice", cfg)
    load(cfg, keys=keyring.keys_dir)  # trusted before the revocation
    return cfg, line, pub


@pytest.mark.parametrize(
    "form", ["allowed_signers line", "padded", "lowercase prefix", "public key line", "ssh-keygen"]
)
def test_revocation_forms_all_revoke(keyring: Keyring, tmp_path: Path, form: str) -> None:
    cfg, line, pub = _revocation_setup(keyring, tmp_path)
    fp = fingerprint(parse_armored(sig_path(cfg).read_text()).public_key)
    printed = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(tmp_path / "alice.pub")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[1]
    entry = {
        "allowed_signers line": line,
        "padded": fp + "=",
        "lowercase prefix": "sha256:" + fp.split(":", 1)[1],
        "public key line": pub,
        "ssh-keygen": printed,
    }[form]
    keyring.policy(f"threshold: 1\nrevoked:\n  - {json.dumps(entry)}\n")
    with pytest.raises(RevokedKeyError, match="revoked key"):
        load(cfg, keys=keyring.keys_dir, data_root=tmp_path / "fresh")


@pytest.mark.parametrize(
    "entry",
    [
        "SHA256:typo",  # not 32 bytes
        "SHA265:" + "A" * 43,  # misspelt prefix
        "MD5:12:34:56",  # another digest
        "alice@x",  # a principal, not a key
        "ssh-ed25519 !!!notbase64",
    ],
)
def test_unparsable_revocation_is_refused(
    keyring: Keyring, tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: str
) -> None:
    cfg, _, _ = _revocation_setup(keyring, tmp_path)
    keyring.policy(f"threshold: 1\nrevoked:\n  - {json.dumps(entry)}\n")
    with pytest.raises(
        ConfigFileError, match=r"policy.yaml: revoked: bad revocation: revoked\[0\]"
    ):
        load(cfg, keys=keyring.keys_dir, data_root=tmp_path / "fresh")
    code, text = _verify_cli(keyring, cfg, capsys)
    assert code == 1 and "bad revocation" in text and len(text.splitlines()) == 1


# ---------------------------------------------------------------- 11: caps applied while reading


def _measure(script: str, *args: str) -> tuple[int, str, int]:
    """Run ``script`` in a child; (exit code, stderr, peak RSS in KiB).

    The peak is the child's own ``VmHWM`` (``ru_maxrss`` would include the parent's peak
    inherited through fork and exec).
    """
    code = (
        "import sys\n"
        + script
        + "\nhwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]"
        + "\nprint(hwm.split()[1], file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    lines = proc.stderr.strip().splitlines()
    return proc.returncode, "\n".join(lines[:-1]), int(lines[-1])


VERIFY = (
    "from aiconfig.cli import main\n"
    "code = main(['verify', sys.argv[1], '--keys', sys.argv[2]])\n"
    "sys.stderr.flush()\n"
)


def test_huge_signature_is_not_read(keyring: Keyring, tmp_path: Path) -> None:
    cfg, _, _ = _revocation_setup(keyring, tmp_path)
    with sig_path(cfg).open("r+b") as sig:
        sig.truncate(400 << 20)  # sparse: 400 MB on paper, nothing on disk
    _, err, rss = _measure(VERIFY, str(cfg), str(keyring.keys_dir))
    assert "signature file is 419430400 bytes, over the" in err
    assert len(err.splitlines()) == 1
    assert rss < 200 * 1024, err  # KiB: the file was never read (reading it took 860 MB)


def test_signature_symlinked_to_dev_zero(keyring: Keyring, tmp_path: Path) -> None:
    cfg, _, _ = _revocation_setup(keyring, tmp_path)
    sig_path(cfg).unlink()
    sig_path(cfg).symlink_to("/dev/zero")
    with pytest.raises(SignatureFormatError, match="not a regular file"):
        load(cfg, keys=keyring.keys_dir)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    sig_path(cfg).unlink()
    sig_path(cfg).symlink_to(fifo)
    with pytest.raises(SignatureFormatError, match="not a regular file"):
        load(cfg, keys=keyring.keys_dir)  # a FIFO with no writer: would block forever


def test_huge_config_is_not_read_or_hashed(keyring: Keyring, tmp_path: Path) -> None:
    cfg, _, _ = _revocation_setup(keyring, tmp_path)
    with cfg.open("r+b") as f:
        f.truncate(500 << 20)
    _, err, rss = _measure(VERIFY, str(cfg), str(keyring.keys_dir))
    assert "config file is 524288000 bytes, over the 1048576-byte limit" in err
    assert rss < 200 * 1024
    with cfg.open("r+b") as f:
        f.truncate(len(CONFIG.format(version=1)))
    (keyring.keys_dir / "allowed_signers").unlink()
    (keyring.keys_dir / "allowed_signers").symlink_to("/dev/zero")
    with pytest.raises(ConfigFileError, match="allowed_signers is not a regular file"):
        load(cfg, keys=keyring.keys_dir)


def test_signing_reads_the_config_as_the_loader_does(keyring: Keyring, tmp_path: Path) -> None:
    """A file the loader would refuse (over the cap, a FIFO) is refused by the signer too,
    before anything is read or a .sig written; the CLI says so in one line, exit 1."""
    key = keyring.add("a@x")
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(500 << 20)  # sparse
    with pytest.raises(ConfigFileError, match="config file is 524288000 bytes, over the"):
        sign_file(big, key)
    assert not sig_path(big).exists()
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    code = main(["sign", str(fifo), "--key", str(key)])  # a FIFO with no writer: would block
    assert code == 1
    assert not sig_path(fifo).exists()


# ---------------------------------------------------------------- 12: corrupt rollback state


@pytest.mark.parametrize(
    "record",
    [{"version": "1e9"}, {"version": True}, {"version": 1.5}, {"version": None}, "v9", []],
)
def test_corrupt_rollback_state_is_one_line(
    keyring: Keyring, tmp_path: Path, capsys: pytest.CaptureFixture[str], record: object
) -> None:
    cfg, _, _ = _revocation_setup(keyring, tmp_path)
    state = tmp_path / "dr" / "aiconfig-trust" / "versions.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"exp": record}))
    with pytest.raises(ConfigFileError, match="anti-rollback state is corrupt"):
        load(cfg, keys=keyring.keys_dir, data_root=tmp_path / "dr")
    capsys.readouterr()
    code = main(["validate", str(cfg), "--keys", str(keyring.keys_dir), "--data-root",
                 str(tmp_path / "dr")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "corrupt" in err and "Traceback" not in err


def test_deep_rollback_state_is_one_line(keyring: Keyring, tmp_path: Path) -> None:
    cfg, _, _ = _revocation_setup(keyring, tmp_path)
    state = tmp_path / "dr" / "aiconfig-trust" / "versions.json"
    state.parent.mkdir(parents=True)
    state.write_text('{"exp": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ConfigFileError, match="anti-rollback state is corrupt"):
        load(cfg, keys=keyring.keys_dir, data_root=tmp_path / "dr")


def test_symlinked_rollback_lock_is_refused(keyring: Keyring, tmp_path: Path) -> None:
    cfg, _, _ = _revocation_setup(keyring, tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    lock = tmp_path / "dr" / "aiconfig-trust" / "versions.lock"
    lock.parent.mkdir(parents=True)
    lock.symlink_to(victim)
    with pytest.raises(ConfigFileError, match="lock file is a symbolic link"):
        load(cfg, keys=keyring.keys_dir, data_root=tmp_path / "dr")
    assert victim.read_text() == "precious\n"
