"""``aiconfig sessions export ROOT OUT --format lerobot``: sessions as a LeRobot v3 dataset.

The action map comes from ``--config`` (loaded through the trusted pipeline) or, without one,
the schema's defaults (League). PyAV, pyarrow and (``--engine ray``) Ray are imported inside.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._common import add_trust_options, load_from_args, print_json


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def add_export_parser(s: Any) -> None:
    """The ``export`` action of ``aiconfig sessions``."""
    e = s.add_parser(
        "export",
        help="export sessions as a training dataset (LeRobot v3)",
        description="Write every usable session below ROOT (one episode each) to OUT in "
        "LeRobot's v3 layout (codebase v3.0). OUT must not exist; it appears only when "
        "complete. Unfinished, invalid and unreadable sessions are skipped and counted.",
    )
    e.add_argument("root", metavar="ROOT", type=Path)
    e.add_argument("out", metavar="OUT", type=Path)
    e.add_argument("--format", choices=("lerobot",), default="lerobot", help="(default: lerobot)")
    e.add_argument(
        "--fps",
        type=_positive,
        metavar="N",
        help="frames per second of the export; must divide the sessions' fps (default: theirs)",
    )
    e.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="ray: one task per session on a Ray cluster (RAY_ADDRESS, else a local one)",
    )
    e.add_argument("--config", metavar="FILE", help="config whose model.action_map to use")
    e.add_argument("--task", default="play League of Legends", help="the episodes' task text")
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    add_trust_options(e)
    e.set_defaults(run=_export)


def _export(args: argparse.Namespace) -> int:
    from ..sessions._actions import ActionSpec
    from ..sessions._lerobot import export_lerobot

    if args.config is not None:
        model = load_from_args(args.config, args).model
    else:
        from .._schema import ModelConfig

        model = ModelConfig()
    spec = ActionSpec.from_model(model)
    bar = None
    if not args.json and sys.stderr.isatty():
        try:
            from tqdm import tqdm

            bar = tqdm(desc="export", unit="session", file=sys.stderr, leave=False)
        except ImportError:  # the bar is a nicety
            bar = None
    try:
        result = export_lerobot(
            [args.root],
            args.out,
            spec=spec,
            fps=args.fps,
            task=args.task,
            engine=args.engine,
            progress=bar.update if bar is not None else None,
        )
    finally:
        if bar is not None:
            bar.close()
    doc = result.to_dict()
    if args.json:
        print_json(doc)
        return 0
    skipped = doc["sessions"]["skipped"]
    print(
        f"{doc['out']}: LeRobot {doc['codebase_version']}, {doc['episodes']} episodes, "
        f"{doc['frames']} frames at {doc['fps']} fps"
        + (f"; skipped {sum(skipped.values())} sessions ({_kinds(skipped)})" if skipped else "")
    )
    for s in doc["sessions"]["skipped_sessions"]:
        sys.stderr.write(f"skipped: {s['session']}: {s['reason']}\n")
    return 0


def _kinds(skipped: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in skipped.items())
