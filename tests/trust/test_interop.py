"""SSHSIG interoperability with the real OpenSSH ssh-keygen, both directions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aiconfig import load
from aiconfig._trust import sig_path
from aiconfig._trust.sshsig import split_armored
from tests.conftest import Keyring

CONFIG = "meta:\n  name: interop\n  version: 1\n"


def _ssh_verify(
    ring: Keyring, cfg: Path, principal: str, sig: Path
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            "ssh-keygen",
            "-Y",
            "verify",
            "-f",
            str(ring.keys_dir / "allowed_signers"),
            "-I",
            principal,
            "-n",
            "aiconfig",
            "-s",
            str(sig),
        ],
        input=cfg.read_bytes(),
        capture_output=True,
        check=False,
    )


def test_aiconfig_signature_verifies_with_ssh_keygen(keyring: Keyring, tmp_path: Path) -> None:
    keyring.add("alice@x")
    keyring.add("bob@x")
    cfg = keyring.write("c.yaml", CONFIG, "alice@x", "bob@x")
    blocks = split_armored(sig_path(cfg).read_text())
    assert len(blocks) == 2
    for principal, block in zip(("alice@x", "bob@x"), blocks, strict=True):
        one = tmp_path / f"{principal}.sig"
        one.write_text(block)
        proc = _ssh_verify(keyring, cfg, principal, one)
        assert proc.returncode == 0, proc.stderr
        assert b'Good "aiconfig" signature' in proc.stdout
    # ssh-keygen reads the first block of the multi-signature file directly.
    assert _ssh_verify(keyring, cfg, "alice@x", sig_path(cfg)).returncode == 0
    cfg.write_text(CONFIG + "# changed\n")
    assert _ssh_verify(keyring, cfg, "alice@x", sig_path(cfg)).returncode != 0


def _ssh_sign(key: Path, cfg: Path, namespace: str = "aiconfig") -> str:
    return subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-f", str(key), "-n", namespace],
        input=cfg.read_bytes(),
        capture_output=True,
        check=True,
    ).stdout.decode()


@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa", "rsa"])
def test_ssh_keygen_signature_verifies_with_aiconfig(
    keyring: Keyring, tmp_path: Path, key_type: str
) -> None:
    key = tmp_path / f"id_{key_type}"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-f", str(key), "-C", "k"], check=True
    )
    pub = key.with_name(key.name + ".pub").read_text().split()
    (keyring.keys_dir / "allowed_signers").write_text(f"carol@x {pub[0]} {pub[1]}\n")
    cfg = keyring.root / "c.yaml"
    cfg.write_text(CONFIG)
    sig_path(cfg).write_text(_ssh_sign(key, cfg))
    loaded = load(cfg, data_root=tmp_path)
    assert [s.principal for s in loaded.provenance.signers] == ["carol@x"]
    cli = subprocess.run(
        [sys.executable, "-m", "aiconfig", "verify", str(cfg), "--data-root", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert cli.returncode == 0 and "carol@x" in cli.stdout


def test_passphrase_key_signs_through_ssh_keygen_or_env(keyring: Keyring, tmp_path: Path) -> None:
    key = tmp_path / "id_locked"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "correct horse", "-f", str(key)], check=True
    )
    pub = key.with_name(key.name + ".pub").read_text().split()
    (keyring.keys_dir / "allowed_signers").write_text(f"dave@x {pub[0]} {pub[1]}\n")
    cfg = keyring.root / "c.yaml"
    cfg.write_text(CONFIG)
    env = {**os.environ, "AICONFIG_KEY_PASSPHRASE": "correct horse"}
    proc = subprocess.run(
        [sys.executable, "-m", "aiconfig", "sign", str(cfg), "--key", str(key)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert load(cfg, data_root=tmp_path).provenance.signers[0].principal == "dave@x"
    # Without the passphrase and no terminal: a clear one-line failure, nothing written.
    sig_path(cfg).unlink()
    env.pop("AICONFIG_KEY_PASSPHRASE")
    proc = subprocess.run(
        [sys.executable, "-m", "aiconfig", "sign", str(cfg), "--key", str(key)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "ssh-keygen could not sign" in proc.stderr
    assert not sig_path(cfg).exists()


def test_ssh_agent_key_signs(keyring: Keyring, tmp_path: Path) -> None:
    key = tmp_path / "id_agent"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    pub_path = key.with_name(key.name + ".pub")
    pub = pub_path.read_text().split()
    (keyring.keys_dir / "allowed_signers").write_text(f"erin@x {pub[0]} {pub[1]}\n")
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        for _ in range(50):
            if sock.exists():
                break
            subprocess.run(["sleep", "0.1"], check=True)
        subprocess.run(["ssh-add", "-q", str(key)], env=env, check=True, capture_output=True)
        key.unlink()  # only the agent holds the private key now
        cfg = keyring.root / "c.yaml"
        cfg.write_text(CONFIG)
        proc = subprocess.run(
            [sys.executable, "-m", "aiconfig", "sign", str(cfg), "--key", str(pub_path)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert load(cfg, data_root=tmp_path).provenance.signers[0].principal == "erin@x"
    finally:
        agent.terminate()
        agent.wait(timeout=10)


def test_keygen_cli_writes_pair_and_allowed_signers_line(tmp_path: Path) -> None:
    out = tmp_path / "k" / "id_review"
    proc = subprocess.run(
        [sys.executable, "-m", "aiconfig", "keygen", "--out", str(out), "--principal", "rev@x"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith('rev@x namespaces="aiconfig" ssh-ed25519 AAAA')
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    # ssh-keygen accepts the private key we wrote.
    derived = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(out)], capture_output=True, text=True, check=True
    ).stdout.split()[:2]
    assert derived == out.with_name("id_review.pub").read_text().split()[:2]
    again = subprocess.run(
        [sys.executable, "-m", "aiconfig", "keygen", "--out", str(out), "--principal", "rev@x"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 1 and "refusing to overwrite" in again.stderr
