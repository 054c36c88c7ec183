"""The ``aiconfig`` command line.

Each subcommand lives in ``aiconfig/commands/<name>.py`` and exposes ``add_parser(subparsers)``
and ``run(args) -> int``. Those modules import only argparse at module level; anything heavy
(capture, torch, OpenTelemetry SDK, deepdiff) is imported inside ``run`` so ``aiconfig
validate`` starts fast.

Exit codes: 0 success, 1 a handled error (one clear line per problem on stderr, no traceback),
2 usage error, 3 a requested capture stream failed under ``capture --strict``. ``diff`` exits 1
when the two sides differ.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence

from . import __version__
from ._guard import UsageParser, guarded

# One entry per subcommand module, in the order shown by --help.
COMMANDS: tuple[str, ...] = (
    "validate",
    "show",
    "keygen",
    "sign",
    "verify",
    "fork",
    "emergency",
    "lineage",
    "diff",
    "schema",
    "track",
    "capture",
    "infer",
    "check-sidecar",
    "pipeline",
    "sessions",
    "manifest",
    "plugins",
    "ready",
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or (``only``) one holding just that subcommand: faster start-up."""
    parser = UsageParser(
        prog="aiconfig",
        description="Signed, typed, forkable, diffable experiment configs.",
    )
    parser.add_argument("--version", action="version", version=f"aiconfig {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=UsageParser)
    sub.required = True
    for name in COMMANDS if only is None else (only,):
        module = importlib.import_module(f"aiconfig.commands.{name.replace('-', '_')}")
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # The CLI uses no pydantic plugins; without this pydantic scans every installed
    # distribution's entry points the first time a model is built (pydantic's documented
    # switch; a value the caller set is kept).
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    argv = list(sys.argv[1:] if argv is None else argv)
    # Top-level options (--help, --version) come before a command and need the full parser.
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    args, extras = parser.parse_known_args(argv)
    if extras:  # told by the (sub)command they were given to, with its own usage line
        _innermost(parser, args).error(f"unrecognized arguments: {' '.join(extras)}")
    if getattr(args, "no_network", False) or os.environ.get("AP_NO_NETWORK", "").strip():
        # Offline mode for every command, before it runs any code of its own (the guard costs
        # nothing when the variable is unset, so `aiconfig validate` still starts fast).
        from ._network import is_offline, offline

        if getattr(args, "no_network", False) or is_offline():
            with offline():
                return guarded(lambda: int(args.run(args)))
    return guarded(lambda: int(args.run(args)))


def _innermost(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> argparse.ArgumentParser:
    """The parser of the (sub)subcommand that ``args`` ran: ``aiconfig plugins list``'s."""
    while True:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        chosen = getattr(args, sub.dest, None) if sub is not None else None
        if sub is None or chosen not in sub.choices:
            return parser
        parser = sub.choices[chosen]
