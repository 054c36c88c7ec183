"""``aiconfig capture --config FILE``: record a capture session driven by a signed config.

The config's ``capture`` section decides what is recorded. Command-line flags may override only
operational settings that do not change the data contract (``--duration``, ``--out``,
``--webcam-device``) and only where the config does not lock them (``meta.locked``); anything else
is refused with a pointer to ``aiconfig fork``. The config's provenance (file digest, signers,
lineage, env vars used) is written into the session's ``metadata.json`` and ``manifest.json``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..errors import ConfigValidationError
from ._common import add_trust_options, load_from_args

# CaptureConfig fields a flag may change without a reviewed fork.
OVERRIDABLE = frozenset({"duration_s", "output_dir", "webcam.device", "audio.device"})


def add_parser(sub: Any) -> None:
    from capture.options import record_args

    p = sub.add_parser(
        "capture",
        help="record a capture session from a config's capture section",
        description="Record the target window, inputs, system audio and webcam as a session "
        "directory, with the settings of a verified config. Stop with q or Ctrl+C.",
    )
    p.add_argument("--config", required=True, metavar="FILE", help="signed aiconfig YAML")
    p.add_argument("--run-id", metavar="ID", help="orchestrator run id (default: $AP_RUN_ID)")
    record_args(p)
    add_trust_options(p)
    p.set_defaults(run=run)


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def checked_overrides(cfg: Any, over: dict[str, Any], file: str) -> dict[str, Any]:
    """``over`` if every path may be overridden for this config; else a one-line error."""
    locked = set(cfg.meta.locked)
    for path in sorted(_flatten(over)):
        dotted = f"capture.{path}"
        if path not in OVERRIDABLE:
            raise ConfigValidationError(
                f"{dotted} is set by the reviewed config and cannot be overridden on the command "
                "line",
                file=file,
                hint=f"fork it instead: aiconfig fork {file} --name NAME --set {dotted}=VALUE",
            )
        if dotted in locked or any(dotted.startswith(f"{lock}.") for lock in locked):
            raise ConfigValidationError(
                f"{dotted} is locked by meta.locked", file=file, hint="record without that flag"
            )
    return over


def run(args: argparse.Namespace) -> int:
    from capture.options import make_config, overrides, record

    cfg = load_from_args(args.config, args)
    over = overrides(args)
    if args.out is None and os.environ.get("AP_OUT_DIR"):
        over["output_dir"] = os.environ["AP_OUT_DIR"]
    checked_overrides(cfg, over, args.config)
    capture_cfg = make_config(cfg.capture, over)
    run_id = args.run_id or os.environ.get("AP_RUN_ID")
    return record(capture_cfg, quiet=args.quiet, provenance=cfg.provenance.to_dict(), run_id=run_id)
