"""SSHSIG: the signature format of ``ssh-keygen -Y sign`` (OpenSSH PROTOCOL.sshsig).

Written by hand because no maintained Python library reads or writes SSHSIG; the
cryptography itself (Ed25519, ECDSA, RSA) is done by ``cryptography``. Signatures made here
verify with ``ssh-keygen -Y verify`` and the other way round.

Blob layout (all strings are uint32-length-prefixed)::

    "SSHSIG" uint32(1) string(publickey) string(namespace) string(reserved)
    string(hash_algorithm) string(signature)

The signed data is ``"SSHSIG" string(namespace) string(reserved) string(hash_algorithm)
string(H(message))``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

__all__ = [
    "NAMESPACE",
    "SshSignature",
    "SshsigFormatError",
    "armor",
    "fingerprint",
    "parse_armored",
    "sign_ed25519",
    "signed_data",
    "split_armored",
    "verify",
]

NAMESPACE = "aiconfig"
MAGIC = b"SSHSIG"
BEGIN = "-----BEGIN SSH SIGNATURE-----"
END = "-----END SSH SIGNATURE-----"
_HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


class SshsigFormatError(ValueError):
    """The bytes are not a well-formed SSHSIG signature."""


@dataclass(frozen=True)
class SshSignature:
    public_key: bytes  # SSH wire-format public key blob
    namespace: str
    hash_algorithm: str
    sig_type: str
    sig: bytes
    armored: str

    @property
    def key_type(self) -> str:
        return _read_string(self.public_key, 0)[0].decode("ascii", "replace")

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    def public_key_line(self) -> str:
        return f"{self.key_type} {base64.b64encode(self.public_key).decode()}"


def fingerprint(key_blob: bytes) -> str:
    """``SHA256:...`` fingerprint as ``ssh-keygen -l`` prints it."""
    digest = base64.b64encode(hashlib.sha256(key_blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _read_string(buf: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(buf):
        raise SshsigFormatError("truncated signature")
    (length,) = struct.unpack_from(">I", buf, offset)
    end = offset + 4 + length
    if end > len(buf):
        raise SshsigFormatError("truncated signature")
    return buf[offset + 4 : end], end


def signed_data(message: bytes, namespace: str, hash_algorithm: str = "sha512") -> bytes:
    digest = _HASHES[hash_algorithm](message).digest()
    return (
        MAGIC
        + _string(namespace.encode())
        + _string(b"")
        + _string(hash_algorithm.encode())
        + _string(digest)
    )


def split_armored(text: str) -> list[str]:
    """Every armored block in a signature file, in order."""
    blocks: list[str] = []
    current: list[str] | None = None
    for raw in text.split("\n"):
        line = raw.removesuffix("\r")
        if line == BEGIN:
            current = [line]
        elif line == END and current is not None:
            current.append(line)
            blocks.append("\n".join(current) + "\n")
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def parse_armored(block: str) -> SshSignature:
    lines = block.strip("\n").split("\n")
    if len(lines) < 3 or lines[0] != BEGIN or lines[-1] != END:
        raise SshsigFormatError("not an armored SSH signature")
    body = "".join(lines[1:-1])
    try:
        blob = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise SshsigFormatError("signature is not valid base64") from None
    if base64.b64encode(blob).decode() != body:  # refuse malleable (non-canonical) encodings
        raise SshsigFormatError("signature is not canonical base64")
    if not blob.startswith(MAGIC):
        raise SshsigFormatError("missing SSHSIG magic")
    off = len(MAGIC)
    if off + 4 > len(blob):
        raise SshsigFormatError("truncated signature")
    (version,) = struct.unpack_from(">I", blob, off)
    off += 4
    if version != 1:
        raise SshsigFormatError(f"unsupported SSHSIG version {version}")
    public_key, off = _read_string(blob, off)
    namespace, off = _read_string(blob, off)
    _reserved, off = _read_string(blob, off)
    hash_alg, off = _read_string(blob, off)
    sig_blob, off = _read_string(blob, off)
    if off != len(blob):
        raise SshsigFormatError("trailing bytes after signature")
    sig_type, soff = _read_string(sig_blob, 0)
    sig, soff = _read_string(sig_blob, soff)
    if hash_alg.decode("ascii", "replace") not in _HASHES:
        raise SshsigFormatError(f"unsupported hash algorithm {hash_alg!r}")
    try:
        return SshSignature(
            public_key=public_key,
            namespace=namespace.decode("utf-8"),
            hash_algorithm=hash_alg.decode("ascii"),
            sig_type=sig_type.decode("ascii"),
            sig=sig,
            armored=block,
        )
    except UnicodeDecodeError:
        raise SshsigFormatError("undecodable field in signature") from None


def _load_public(blob: bytes) -> PublicKeyTypes:
    key_type_raw, offset = _read_string(blob, 0)
    if key_type_raw == b"ssh-ed25519":
        # The common case, read directly: cryptography's SSH key loader (and the RSA/ECDSA
        # modules it pulls in) costs several ms of start-up that `aiconfig validate` avoids.
        raw, end = _read_string(blob, offset)
        if len(raw) == 32 and end == len(blob):
            return ed25519.Ed25519PublicKey.from_public_bytes(raw)
        raise SshsigFormatError("unreadable public key in signature: bad ssh-ed25519 blob")
    from cryptography.hazmat.primitives import serialization

    key_type = key_type_raw.decode("ascii", "replace")
    line = f"{key_type} {base64.b64encode(blob).decode()}".encode()
    try:
        return serialization.load_ssh_public_key(line)
    except (ValueError, TypeError) as exc:
        raise SshsigFormatError(f"unreadable public key in signature: {exc}") from None


def verify(signature: SshSignature, message: bytes) -> bool:
    """True if ``signature`` is a valid signature of ``message`` under its own key."""
    key = _load_public(signature.public_key)
    data = signed_data(message, signature.namespace, signature.hash_algorithm)
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            if signature.sig_type != "ssh-ed25519":
                return False
            key.verify(signature.sig, data)
            return True
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        if isinstance(key, ec.EllipticCurvePublicKey):
            r_blob, off = _read_string(signature.sig, 0)
            s_blob, _ = _read_string(signature.sig, off)
            der = encode_dss_signature(int.from_bytes(r_blob, "big"), int.from_bytes(s_blob, "big"))
            curve_hash = {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}
            key.verify(der, data, ec.ECDSA(curve_hash[key.curve.key_size]))
        elif isinstance(key, rsa.RSAPublicKey):
            algs = {"rsa-sha2-256": hashes.SHA256(), "rsa-sha2-512": hashes.SHA512()}
            if signature.sig_type not in algs:  # plain ssh-rsa (SHA-1) is refused, as by OpenSSH
                return False
            key.verify(signature.sig, data, padding.PKCS1v15(), algs[signature.sig_type])
        else:
            return False
    except (InvalidSignature, SshsigFormatError, KeyError):
        return False
    return True


def armor(blob: bytes) -> str:
    text = base64.b64encode(blob).decode()
    body = "\n".join(text[i : i + 70] for i in range(0, len(text), 70))
    return f"{BEGIN}\n{body}\n{END}\n"


def sign_ed25519(
    private_key: ed25519.Ed25519PrivateKey, message: bytes, namespace: str = NAMESPACE
) -> str:
    """An armored SSHSIG signature of ``message``, byte-compatible with ssh-keygen's."""
    from cryptography.hazmat.primitives import serialization

    pub = private_key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    key_blob = base64.b64decode(pub.split()[1])
    sig = private_key.sign(signed_data(message, namespace, "sha512"))
    blob = (
        MAGIC
        + struct.pack(">I", 1)
        + _string(key_blob)
        + _string(namespace.encode())
        + _string(b"")
        + _string(b"sha512")
        + _string(_string(b"ssh-ed25519") + _string(sig))
    )
    return armor(blob)
