"""``aiconfig sign FILE --key K``: add the reviewer's SSHSIG signature to FILE.sig."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "sign",
        help="sign a config's exact bytes (appends to FILE.sig)",
        description="Sign the exact bytes of a config with an SSH key (namespace 'aiconfig'). "
        "Unencrypted Ed25519 keys are used directly; passphrase-protected keys and keys in "
        "ssh-agent (pass the .pub) go through ssh-keygen -Y sign.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--key", required=True, metavar="K", help="private key (or .pub for ssh-agent)")
    p.add_argument(
        "--principal",
        help="refuse (writing nothing) unless this key is listed for PRINCIPAL in allowed_signers",
    )
    p.add_argument("--keys", metavar="DIR", help="trust store used for --principal")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .._errors import UntrustedKeyError
    from .._trust.signing import add_signature, make_signature, read_config_bytes
    from .._trust.store import TrustStore, find_keys_dir

    config = Path(args.file)
    # Everything is checked before FILE.sig changes: the config, the key, and (--principal) that
    # the trust store lists this key for that principal.
    store = TrustStore.load(find_keys_dir(config, args.keys)) if args.principal else None
    armored, sig = make_signature(read_config_bytes(config), Path(args.key))
    if store is not None:
        listed = {p for e in store.entries_for(sig.public_key) for p in e.principals}
        if args.principal not in listed:
            raise UntrustedKeyError(
                f"key {sig.fingerprint} is not listed for principal '{args.principal}'; "
                "nothing was signed",
                file=str(args.key),
                hint="add it to keys/allowed_signers through review, or sign with the key "
                "listed for that principal",
            )
    target = add_signature(config, armored)
    sys.stdout.write(f"signed {config} with {sig.fingerprint} -> {target}\n")
    return 0
