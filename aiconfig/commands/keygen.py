"""``aiconfig keygen``: write an OpenSSH Ed25519 key pair and print its allowed_signers line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "keygen",
        help="create an Ed25519 signing key pair (OpenSSH format)",
        description="Write an OpenSSH Ed25519 key pair (private key 0600, never commit it) and "
        "print the line to add to keys/allowed_signers.",
    )
    p.add_argument("--out", required=True, metavar="PATH", help="private key path (PATH.pub too)")
    p.add_argument("--principal", required=True, help="reviewer identity, e.g. an email")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .._trust.signing import allowed_signers_line, generate_keypair

    line = generate_keypair(Path(args.out), comment=args.principal)
    sys.stderr.write(f"wrote {args.out} (keep it private) and {args.out}.pub\n")
    sys.stdout.write(allowed_signers_line(args.principal, line) + "\n")
    return 0
