"""Options shared by the subcommands that load configs."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._schema import AIConfig


def add_trust_options(parser: argparse.ArgumentParser, *, data_root: bool = True) -> None:
    """``--keys``, ``--allow-unsigned`` and (unless the run flags add it) ``--data-root``."""
    parser.add_argument(
        "--keys",
        metavar="DIR",
        help="trust store with allowed_signers and policy.yaml (default: $AICONFIG_KEYS or the "
        "keys/ directory beside the nearest parent of the config)",
    )
    if data_root:
        parser.add_argument(
            "--data-root",
            metavar="DIR",
            help="where anti-rollback state is kept (default: $AP_DATA_ROOT, else "
            "$XDG_STATE_HOME/aiconfig, else ~/.local/state/aiconfig)",
        )
    parser.add_argument(
        "--allow-unsigned",
        action="store_true",
        help="DEVELOPMENT ONLY: skip signature checks; provenance is marked unsigned",
    )


def load_from_args(
    path: str, args: argparse.Namespace, *, record: bool = True, apply_emergency: bool = True
) -> AIConfig:
    """Load ``path`` with the trust flags; ``record=False`` for read-only commands (``show``,
    ``lineage``): they check expiry and rollback but never write anti-rollback state. An
    active emergency override is applied and announced on stderr (loudly: nobody reviewed it);
    ``apply_emergency=False`` gives the reviewed values."""
    import warnings

    from .._emergency import EmergencyOverrideWarning
    from .._loader import load

    if args.allow_unsigned:
        sys.stderr.write(
            f"WARNING: {path}: signature verification is OFF (--allow-unsigned); "
            "never use this for a real run\n"
        )
    logging.getLogger("aiconfig").addHandler(logging.NullHandler())
    logging.getLogger("aiconfig").propagate = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EmergencyOverrideWarning)
        cfg = load(
            path,
            allow_unsigned=args.allow_unsigned,
            keys=args.keys,
            data_root=args.data_root,
            record=record,
            emergency=apply_emergency,
        )
    for warning in caught:
        if issubclass(warning.category, EmergencyOverrideWarning):
            text = str(warning.message)
            loud = text.startswith("EMERGENCY")
            sys.stderr.write(f"{'!' * 78}\n" if loud else "")
            sys.stderr.write(f"WARNING: {text}\n")
            sys.stderr.write(f"{'!' * 78}\n" if loud else "")
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return cfg


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
