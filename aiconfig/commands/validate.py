"""``aiconfig validate FILE...``: verify, parse and validate; one line per problem."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._common import add_trust_options, load_from_args, print_json


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "validate",
        help="check configs (signatures, YAML, env, schema); exit 1 if any is invalid",
        description="Check configs: signatures, hardened YAML, env interpolation, schema. "
        "Prints one line per problem on stderr and exits 1 if any file is invalid.",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    add_trust_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .._errors import AiconfigError

    report: list[dict[str, Any]] = []
    failed = False
    for path in args.files:
        try:
            cfg = load_from_args(path, args)
        except AiconfigError as exc:
            failed = True
            report.append({"file": path, "valid": False, **exc.to_dict()})
            if not args.json:
                for problem in exc.problems:
                    sys.stderr.write(f"error: {problem.render()}\n")
            continue
        prov = cfg.provenance
        entry = {
            "file": path,
            "valid": True,
            "name": cfg.meta.name,
            "version": cfg.meta.version,
            "sha256": prov.sha256,
            "signed": prov.signed,
            "signers": [s.principal for s in prov.signers],
        }
        report.append(entry)
        if not args.json:
            who = ", ".join(entry["signers"]) or "UNSIGNED"
            sys.stdout.write(f"ok: {path} ({cfg.meta.name} v{cfg.meta.version}; {who})\n")
    if args.json:
        print_json({"valid": not failed, "files": report})
    return 1 if failed else 0
