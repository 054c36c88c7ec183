"""Making signatures: key generation and ``aiconfig sign``.

Unencrypted Ed25519 key files are signed in-process (cryptography). Anything else, a
passphrase-protected key or a public key whose private half lives in ``ssh-agent``, is
delegated to ``ssh-keygen -Y sign`` over stdin/stdout; its output is verified before it is
stored, because ssh-keygen can exit 0 without producing a fresh signature.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from .._errors import ConfigFileError, SignatureFormatError, TrustError
from .._files import atomic_write
from . import sig_path
from .sshsig import NAMESPACE, SshSignature, parse_armored, sign_ed25519, split_armored, verify

__all__ = [
    "add_signature",
    "allowed_signers_line",
    "generate_keypair",
    "make_signature",
    "read_config_bytes",
    "sign_file",
]


def allowed_signers_line(principal: str, public_key_line: str) -> str:
    key_type, key_b64 = public_key_line.split()[:2]
    return f'{principal} namespaces="{NAMESPACE}" {key_type} {key_b64}'


def generate_keypair(path: Path, comment: str = "") -> str:
    """Write an OpenSSH Ed25519 key pair (``path`` 0600 and ``path.pub``); return the pub line."""
    pub_path = path.with_name(path.name + ".pub")
    for p in (path, pub_path):
        if p.exists():
            raise ConfigFileError("already exists; refusing to overwrite a key", file=str(p))
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    line = f"{public} {comment}".strip()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(private)
        pub_path.write_text(line + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"cannot write key: {exc.strerror}", file=str(path)) from None
    return line


def _sign_in_process(key_path: Path, data: bytes) -> str | None:
    try:
        raw = key_path.read_bytes()
    except OSError as exc:
        raise ConfigFileError(f"cannot read key: {exc.strerror}", file=str(key_path)) from None
    if b"PRIVATE KEY" not in raw:
        return None  # a public key: the private half is in ssh-agent
    passphrase = os.environ.get("AICONFIG_KEY_PASSPHRASE")
    try:
        key = serialization.load_ssh_private_key(
            raw, password=passphrase.encode() if passphrase else None
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None  # encrypted (or unusual): let ssh-keygen ask for the passphrase
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    return sign_ed25519(key, data)


def _sign_with_ssh_keygen(key_path: Path, data: bytes) -> str:
    exe = shutil.which("ssh-keygen")
    if exe is None:
        raise TrustError(
            "this key needs ssh-keygen (passphrase or ssh-agent) and it is not installed",
            file=str(key_path),
            hint="install openssh-client, or use an unencrypted Ed25519 key",
        )
    proc = subprocess.run(
        [exe, "-Y", "sign", "-f", str(key_path), "-n", NAMESPACE],
        input=data,
        capture_output=True,
        check=False,
        timeout=120,
    )
    out = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0 or not split_armored(out):
        reason = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise TrustError(
            f"ssh-keygen could not sign: {reason[-1] if reason else 'no signature produced'}",
            file=str(key_path),
            hint="load the key into ssh-agent, or set AICONFIG_KEY_PASSPHRASE",
        )
    return split_armored(out)[0]


def make_signature(data: bytes, key_path: Path) -> tuple[str, SshSignature]:
    """Sign ``data`` with ``key_path`` in memory: ``(armored block, parsed signature)``.

    Nothing is written: callers check everything (the key, its principal) first, then store the
    block with :func:`add_signature`. Raises a handled error for a missing or unusable key.
    """
    armored = _sign_in_process(key_path, data) or _sign_with_ssh_keygen(key_path, data)
    sig = parse_armored(armored)
    if not verify(sig, data):
        raise SignatureFormatError(
            "the new signature does not verify; nothing was written", file=str(key_path)
        )
    return armored, sig


def add_signature(config: Path, armored: str) -> Path:
    """Store one signature block in ``config.sig``, atomically; returns that path.

    A block by the same key replaces the earlier one; others are kept (one block each).
    """
    public_key = parse_armored(armored).public_key
    target = sig_path(config)
    blocks: list[str] = []
    if target.exists():
        for block in split_armored(target.read_text(encoding="utf-8")):
            with contextlib.suppress(ValueError):
                if parse_armored(block).public_key == public_key:
                    continue
            blocks.append(block)
    blocks.append(armored)
    atomic_write(target, "".join(blocks), mode=0o600)
    return target


def read_config_bytes(config: Path) -> bytes:
    """The bytes to sign, read as the loader reads them: regular files only, under the
    config size cap (a file the loader would refuse is never signed)."""
    from .._bounded import read_config_capped
    from .._yamlsafe import Limits

    return read_config_capped(config, Limits().max_bytes)


def sign_file(config: Path, key_path: Path) -> tuple[str, Path]:
    """Add a signature of ``config``'s exact bytes to ``config.sig``; return its fingerprint.

    A signature by the same key replaces the earlier one; others are kept (one block each).
    The file is replaced atomically, and only once the new signature exists and verifies.
    """
    armored, sig = make_signature(read_config_bytes(config), key_path)
    return sig.fingerprint, add_signature(config, armored)
