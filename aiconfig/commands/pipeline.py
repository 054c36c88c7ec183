"""``aiconfig pipeline``: validate persisted capture sessions and write fixture_report.json."""

from __future__ import annotations

import argparse
from typing import Any

from ..harness.settings import add_run_arguments


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "pipeline",
        help="process persisted capture sessions into fixture_report.json",
        description="Validate the capture sessions listed in a manifest, compute their "
        "statistics and write OUT/fixture_report.json and OUT/manifest.json.",
    )
    p.add_argument("--manifest", required=True, metavar="FILE", help="sessions to process")
    p.add_argument("--config-template", metavar="FILE", help="JSON quality thresholds")
    p.add_argument(
        "--force-idle",
        action="store_true",
        help="process now instead of waiting for an idle machine (this pipeline never waits; "
        "accepted for the harness command line and recorded in the report)",
    )
    p.add_argument(
        "--step",
        action="append",
        metavar="NAME",
        help="also run this pipeline-step plugin on every valid session (repeatable)",
    )
    add_run_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..harness.pipeline import REPORT_NAME, process_sessions
    from ..harness.settings import resolve_settings

    settings = resolve_settings(args, "pipeline")  # bad values are refused before any work
    report = process_sessions(
        settings,
        manifest=Path(args.manifest),
        template=Path(args.config_template) if args.config_template else None,
        force_idle=args.force_idle,
        steps=args.step or (),
    )
    if not settings.log_json:
        t = report["totals"]
        print(
            f"{t['valid']}/{t['sessions']} sessions valid ({t['degraded']} degraded); "
            f"report: {settings.out_dir / REPORT_NAME}"
        )
    return 0
