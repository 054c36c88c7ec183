"""``aiconfig track FILE --mlflow URI [--run-id ID]``: log a verified config to MLflow."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from ._common import add_trust_options, load_from_args, print_json


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "track",
        help="log a verified config to an MLflow run: params, digest/signer tags, artifacts",
        description="Load FILE through the trusted pipeline, then log it to MLflow: the "
        "resolved config flattened to section.key params, tags for its digest, signers, "
        "lineage, fork overrides and the aiconfig version, and the file, its .sig and its "
        "bases as artifacts under aiconfig/. Needs the mlflow extra.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument(
        "--mlflow",
        required=True,
        metavar="URI",
        help="tracking URI: sqlite:///mlflow.db for a local store, http://HOST:PORT for a server",
    )
    p.add_argument("--run-id", metavar="ID", help="log into this existing run (default: a new run)")
    p.add_argument(
        "--experiment",
        metavar="NAME",
        help="experiment of a new run (default: the root baseline's meta.name)",
    )
    p.add_argument("--run-name", metavar="NAME", help="name of a new run (default: NAME-vN)")
    p.add_argument("--json", action="store_true", help="print what was logged as JSON")
    add_trust_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_from_args(args.file, args)
    # MLflow and its store migrations log at INFO on first use; keep stderr for problems.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from .._tracking import log_to_mlflow

    tracked = log_to_mlflow(
        cfg,
        tracking_uri=args.mlflow,
        run_id=args.run_id,
        experiment=args.experiment,
        run_name=args.run_name,
    )
    if args.json:
        print_json(tracked.__dict__)
        return 0
    sys.stdout.write(
        f"logged {args.file} to MLflow run {tracked.run_id} (experiment {tracked.experiment_id}) "
        f"at {tracked.tracking_uri}: {tracked.params} params, {tracked.tags} tags, "
        f"{len(tracked.artifacts)} artifacts\n"
    )
    for flat, key in tracked.rewritten_keys.items():
        sys.stdout.write(f"  param {flat} logged as {key} (MLflow key rules)\n")
    for key in tracked.truncated:
        sys.stdout.write(f"  param {key} cut to MLflow's length limit; full value in params.json\n")
    return 0
