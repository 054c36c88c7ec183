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
        "--principal", help="check that this key is listed for PRINCIPAL in allowed_signers"
    )
    p.add_argument("--keys", metavar="DIR", help="trust store used for --principal")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .._errors import UntrustedKeyError
    from .._trust.signing import sign_file
    from .._trust.sshsig import parse_armored, split_armored
    from .._trust.store import TrustStore, find_keys_dir

    config = Path(args.file)
    if args.principal:
        store = TrustStore.load(find_keys_dir(config, args.keys))
    fingerprint, target = sign_file(config, Path(args.key))
    if args.principal:
        blocks = split_armored(target.read_text(encoding="utf-8"))
        mine = next(b for b in blocks if parse_armored(b).fingerprint == fingerprint)
        listed = {
            p for e in store.entries_for(parse_armored(mine).public_key) for p in e.principals
        }
        if args.principal not in listed:
            sys.stderr.write(
                f"warning: signature written, but {fingerprint} is not listed for "
                f"'{args.principal}' in allowed_signers\n"
            )
            raise UntrustedKeyError(
                f"key {fingerprint} is not listed for principal '{args.principal}'",
                file=str(target),
                hint="add it to keys/allowed_signers through review",
            )
    sys.stdout.write(f"signed {config} with {fingerprint} -> {target}\n")
    return 0
