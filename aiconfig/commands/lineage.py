"""``aiconfig lineage FILE``: the chain from the root baseline to FILE."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._common import add_trust_options, load_from_args, print_json


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "lineage",
        help="print the fork chain from the root baseline: digests, signers, overrides",
        description="Load FILE through the trusted pipeline (every step verified) and print "
        "each step from the root baseline: path, name and version, sha256, signers and the "
        "overrides that step applied.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="machine-readable chain on stdout")
    add_trust_options(p)
    p.set_defaults(run=run)


def format_lineage(steps: list[dict[str, Any]]) -> str:
    lines = []
    for depth, step in enumerate(steps):
        lead = "" if depth == 0 else "   " * (depth - 1) + "└─ "
        pad = "   " * depth
        who = ", ".join(step["signers"]) or "UNSIGNED"
        kind = "baseline" if depth == 0 else "fork"
        lines.append(f"{lead}{step['path']}  [{kind}] {step['name']} v{step['version']}")
        lines.append(f"{pad}  sha256 {step['sha256']}")
        lines.append(f"{pad}  signed by {who}")
        for path, value in step["overrides"].items():
            lines.append(f"{pad}  {path} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    cfg = load_from_args(args.file, args, record=False)
    steps = list(cfg.provenance.lineage)
    if args.json:
        print_json({"file": args.file, "lineage": steps})
    else:
        sys.stdout.write(format_lineage(steps))
    return 0
