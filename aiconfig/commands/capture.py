"""``aiconfig capture --config FILE``: record a capture session driven by a signed config.

The config's ``capture`` section decides what is recorded. Command-line flags may override only
operational settings that do not change the data contract (``--duration``, ``--webcam-device``,
``--audio-device``) and only where the config does not lock them (``meta.locked``); anything else
is refused with a pointer to ``aiconfig fork``. The config's provenance (file digest, signers,
lineage, env vars used) is written into the session's ``metadata.json`` and ``manifest.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .._errors import ConfigValidationError
from ..harness.settings import add_run_arguments
from ._common import add_trust_options, load_from_args

# CaptureConfig fields a flag may change without a reviewed fork.
OVERRIDABLE = frozenset({"duration_s", "webcam.device", "audio.device"})


def add_parser(sub: Any) -> None:
    from capture.options import record_args

    p = sub.add_parser(
        "capture",
        help="record a capture session from a config's capture section",
        description="Record the target window, inputs, system audio and webcam as a session "
        "directory, with the settings of a verified config. Stop with q or Ctrl+C.",
    )
    p.add_argument("--config", required=True, metavar="FILE", help="signed aiconfig YAML")
    record_args(p)
    add_run_arguments(p)  # --run-id --out --data-root --no-network --log-json --ready-file ...
    add_trust_options(p, data_root=False)
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

    from ..harness.settings import resolve_settings

    if args.check_audio:  # the config's audio source (or --audio-device), tested; no recording
        from capture.options import check_audio_report

        cfg = load_from_args(args.config, args)
        over = checked_overrides(cfg, overrides(args), args.config)
        audio = make_config(cfg.capture, over).audio
        return check_audio_report(audio.device, sample_rate=audio.sample_rate)
    # Run settings first: a bad --run-id or AP_MEM_LIMIT_MB is refused before the config loads.
    resolve_settings(args, "capture", default_out=Path("sessions"))
    cfg = load_from_args(args.config, args)
    over = checked_overrides(cfg, overrides(args), args.config)
    capture_cfg = make_config(cfg.capture, over)
    return record(capture_cfg, args, provenance=cfg.provenance.to_dict())
