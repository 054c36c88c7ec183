"""``aiconfig fork BASE --name NAME --set path=value ... [--sweep path=a,b,c ...]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._common import add_trust_options, load_from_args


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "fork",
        help="write a small fork file (base path + sha256 + dotted overrides); sweeps too",
        description="Fork a verified config: write NAME.yaml naming BASE by relative path and "
        "sha256 with the given overrides. Values are typed by the schema (training.lr=3e-4 is "
        "a float); quote strings holding '=', ',' or spaces: --set 'model.name=\"a, b\"'. "
        "With --sweep, one fork per point of the cartesian product, named NAME-<leaf><value>. "
        "Everything is validated before anything is written; BASE is never modified.",
    )
    p.add_argument("base", metavar="BASE", help="the config to fork (a baseline or a fork)")
    p.add_argument("--name", required=True, help="meta.name of the fork (sweep name prefix)")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override one value (repeatable)",
    )
    p.add_argument(
        "--sweep",
        dest="sweeps",
        action="append",
        default=[],
        metavar="PATH=A,B,C",
        help="one fork per value (repeatable: cartesian product)",
    )
    p.add_argument("--out", metavar="DIR", help="directory for the fork files (default: BASE's)")
    p.add_argument("--description", default="", help="meta.description of the fork(s)")
    p.add_argument("--version", type=int, help="meta.version (default 1, or old+1 with --force)")
    p.add_argument("--sign-key", metavar="K", help="sign each new fork with this SSH key")
    p.add_argument("--force", action="store_true", help="replace existing fork files")
    p.add_argument("--dry-run", action="store_true", help="validate and print, write nothing")
    add_trust_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .._sweep import plan_forks, write_forks

    base = load_from_args(args.base, args)
    base_path = Path(args.base)
    out_dir = Path(args.out) if args.out else base_path.parent
    plans = plan_forks(
        base_path,
        base,
        name=args.name,
        sets=args.sets,
        sweeps=args.sweeps,
        out_dir=out_dir,
        version=args.version,
        description=args.description,
        force=args.force,
    )
    if args.dry_run:
        for plan in plans:
            sys.stdout.write(f"# {plan.path}\n{plan.data.decode()}\n")
        return 0
    written = write_forks(plans, sign_key=Path(args.sign_key) if args.sign_key else None)
    for plan, path in zip(plans, written, strict=True):
        state = "signed" if args.sign_key else "unsigned: run 'aiconfig sign' before use"
        sys.stdout.write(f"wrote {path} ({plan.name} v{plan.version}; {state})\n")
    return 0
