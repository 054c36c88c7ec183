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

    from ..harness.context import RunContext

    # Bad values are refused here, before any work. numpy, pyarrow and PyAV load on entry,
    # under the budget's thread and allocator settings (OpenBLAS and Arrow read them on load).
    preload = ("aiconfig.harness.pipeline", "numpy", "pyarrow.parquet", "pyarrow.compute", "av")
    ctx = RunContext.from_args(args, job="pipeline", preload=preload)
    template = Path(args.config_template) if args.config_template else None
    with ctx as r:
        from ..harness.pipeline import REPORT_NAME, STEP_KIND, run_pipeline
        from ..harness.plugins import load_named

        # Inside the run: offline mode is on, so a step that needs the network is refused.
        steps = load_named(args.step or (), kind=STEP_KIND, what="pipeline step")
        report = run_pipeline(
            r,
            manifest=Path(args.manifest),
            template=template,
            force_idle=args.force_idle,
            steps=steps,
        )
    if not ctx.settings.log_json:
        t = report["totals"]
        print(
            f"{t['valid']}/{t['sessions']} sessions valid ({t['degraded']} degraded); "
            f"report: {ctx.out_dir / REPORT_NAME}"
        )
    return 0
