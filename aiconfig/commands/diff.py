"""``aiconfig diff OLD NEW`` and ``aiconfig diff --git REV [REV2]``: semantic config diffs."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "diff",
        help="semantic diff of resolved configs; exit 0 identical, 1 different, 2 error",
        description="Compare resolved configs (env interpolated, defaults filled): changed, "
        "added, removed and type-changed values by dotted path, list items one by one, and "
        "changes of version, expiry and signers. Signatures are checked and reported but do "
        "not stop the diff. With --git, every config file changed between REV and REV2 (or "
        "the working tree), including forks whose base changed. Exit 0 when identical, 1 when "
        "different, 2 on error.",
    )
    p.add_argument("paths", nargs="*", metavar="OLD NEW | REV [REV2]")
    p.add_argument("--git", action="store_true", help="compare git revisions instead of files")
    p.add_argument("--repo", default=".", metavar="DIR", help="repository for --git")
    p.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    p.add_argument(
        "--float-tol",
        type=float,
        default=None,
        metavar="X",
        help="treat floats within X (absolute) of each other as equal",
    )
    p.add_argument(
        "--keys",
        metavar="DIR",
        help="trust store (default: keys/ near each file; with --git: the keys/ of REV, the "
        "base revision, for both sides)",
    )
    p.add_argument("--output", metavar="FILE", help="write the report to FILE instead of stdout")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .._errors import AiconfigError

    if args.git and not 1 <= len(args.paths) <= 2:
        sys.stderr.write("aiconfig diff: error: --git takes REV [REV2]\n")
        return 2
    if not args.git and len(args.paths) != 2:
        sys.stderr.write("aiconfig diff: error: give OLD and NEW (or --git REV [REV2])\n")
        return 2
    if args.float_tol is not None and args.float_tol < 0:
        sys.stderr.write("aiconfig diff: error: --float-tol must be >= 0\n")
        return 2
    try:
        from .._diff_render import render

        if args.git:
            from .._gitdiff import git_diffs

            rev2 = args.paths[1] if len(args.paths) == 2 else None
            diffs = git_diffs(
                args.paths[0], rev2, repo=args.repo, float_tol=args.float_tol, keys=args.keys
            )
        else:
            from .._diff import diff_files

            diffs = [
                diff_files(args.paths[0], args.paths[1], keys=args.keys, float_tol=args.float_tol)
            ]
        text = render(diffs, args.format)
        if args.output:
            from pathlib import Path

            Path(args.output).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
    except AiconfigError as exc:
        for problem in exc.problems:
            sys.stderr.write(f"error: {problem.render()}\n")
        return 2
    except OSError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    return 1 if any(d.differs for d in diffs) else 0
