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
    from capture._cli import FLAG_OF, record_args

    p = sub.add_parser(
        "capture",
        help="record a capture session from a config's capture section",
        description="Record the target window, inputs, system audio and webcam as a session "
        "directory, with the settings of a verified config. Stop with q or Ctrl+C. Of the "
        "recording flags only --duration, --webcam-device and --audio-device may change what "
        "the config says (not where meta.locked locks them); the others are refused.",
    )
    p.add_argument("--config", required=True, metavar="FILE", help="signed aiconfig YAML")
    record_args(p)
    # The recording flags this command shares with python -m capture, where the config decides:
    # say so in --help (they are refused, naming the fork that would change them).
    refused = {flag for field, flag in FLAG_OF.items() if field not in OVERRIDABLE}
    for action in p._actions:
        if refused.intersection(action.option_strings):
            action.help = f"{action.help} [refused: the config sets this]"
    add_run_arguments(
        p, out_default="the config's capture.output_dir"
    )  # --run-id --out --data-root --no-network --log-json --ready-file ...
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


def _cli_text(value: Any) -> str:
    """``value`` as ``--set`` text: ``true``, ``60``, ``[1280, 720]``, ``'Some Title'``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_cli_text(v) for v in value) + "]"
    text = str(value)
    return f"'{text}'" if any(c in text for c in " ,=\"'") else text


def _fork_command(file: str, dotted: str, text: str, locked: tuple[str, ...]) -> str | None:
    """The ``aiconfig fork`` command that makes this change, if fork would accept it."""
    from .._errors import ForkError
    from .._overrides import check_overridable, type_value

    try:
        check_overridable(dotted, locked)
        type_value(dotted, text.strip("'"))
    except ForkError:
        return None
    return f"aiconfig fork {file} --name NAME --set {dotted}={text}"


def checked_overrides(cfg: Any, over: dict[str, Any], file: str) -> dict[str, Any]:
    """``over`` if every path may be overridden for this config; else every refusal at once,
    each suggesting only what would work (a fork, unless the config locks the path)."""
    from capture._cli import FLAG_OF

    from .._errors import Problem
    from .._overrides import locked_by

    locked = tuple(cfg.meta.locked)
    problems: list[Problem] = []
    for path, value in sorted(_flatten(over).items()):
        dotted = f"capture.{path}"
        flag = FLAG_OF.get(path, dotted)
        lock = locked_by(dotted, locked)
        if lock is not None:
            problems.append(
                Problem(
                    f"{flag}: {dotted} is locked by the config (meta.locked: {lock}); neither a "
                    "flag nor a fork can change it",
                    file=file,
                    hint="record without that flag; a locked path changes only through a "
                    "reviewed edit of the baseline",
                )
            )
        elif path not in OVERRIDABLE:
            command = _fork_command(file, dotted, _cli_text(value), locked)
            problems.append(
                Problem(
                    f"{flag}: {dotted} is set by the reviewed config and cannot be overridden "
                    "on the command line",
                    file=file,
                    hint=f"fork it instead: {command}" if command else "record without that flag",
                )
            )
    if problems:
        raise ConfigValidationError(problems)
    return over


def run(args: argparse.Namespace) -> int:
    from capture._cli import make_config, overrides, record_from_args

    from ..harness.settings import resolve_settings

    if args.check_audio:  # the config's audio source (or --audio-device), tested; no recording
        from capture._cli import check_audio_report

        cfg = load_from_args(args.config, args)
        over = checked_overrides(cfg, overrides(args), args.config)
        audio = make_config(cfg.capture, over).audio
        return check_audio_report(audio.device, sample_rate=audio.sample_rate)
    # Run settings first: a bad --run-id or AP_MEM_LIMIT_MB is refused before the config loads.
    resolve_settings(args, "capture", default_out=Path("sessions"))
    cfg = load_from_args(args.config, args)
    over = checked_overrides(cfg, overrides(args), args.config)
    capture_cfg = make_config(cfg.capture, over)
    return record_from_args(capture_cfg, args, provenance=cfg.provenance.to_dict())
