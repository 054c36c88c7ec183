"""``aiconfig ready check FILE``: is the job behind a ready file alive and ready?"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("ready", help="inspect a job's ready file")
    rsub = p.add_subparsers(dest="ready_command", metavar="ACTION", parser_class=type(p))
    rsub.required = True
    c = rsub.add_parser(
        "check",
        help="exit 0 only if the ready file's process is alive and is the same process",
        description="Print the state of a --ready-file: ready, stale (its process died, e.g. "
        "SIGKILL, or the pid was reused), absent or invalid. Exit 0 only when ready.",
    )
    c.add_argument("file", metavar="FILE", help="the job's --ready-file")
    c.add_argument("--json", action="store_true", help="print the state and the file as JSON")
    c.set_defaults(run=run_check)


def run_check(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from ..harness.ready import ready_state

    state = ready_state(Path(args.file))
    if args.json:
        print(json.dumps({"state": state.state, **state.info}))
    else:
        who = ""
        if state.info:
            who = f" (run {state.info.get('run_id')!r}, pid {state.info.get('pid')})"
        print(f"{state.state}{who}")
    return 0 if state.is_ready else 1
