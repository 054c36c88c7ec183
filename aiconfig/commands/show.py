"""``aiconfig show FILE``: print a config as written, or fully resolved with defaults."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._common import add_trust_options, load_from_args


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "show",
        help="print a config (as written, or --resolved with env values and defaults)",
        description="Print a verified config. By default the values as written in the file; "
        "with --resolved, the validated config with env interpolation applied and every "
        "default filled in. Secrets are always redacted.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--resolved", action="store_true", help="apply env and schema defaults")
    p.add_argument("--format", choices=("yaml", "json"), default="yaml")
    add_trust_options(p)
    p.set_defaults(run=run)


def _redact(
    value: Any, key: str = "", sources: dict[str, str] | None = None, at: tuple[Any, ...] = ()
) -> Any:
    """Secrets are masked: by key name, and by the name of the env variable a value came from.

    ``show --resolved`` exists to show what the environment resolved to, so a value from a
    variable such as ``NUM_WORKERS`` is shown; one from ``GITHUB_TOKEN`` or ``SLACK_WEBHOOK`` is
    not, whatever key it lands in. (Error messages and diffs never show env values at all.)
    """
    from .._keypath import KeyPath, is_secret_key

    if key and is_secret_key(key) and value is not None and not isinstance(value, dict | list):
        return "**********"
    source = (sources or {}).get(str(KeyPath(at)), "") if at else ""
    if source.startswith("env:") and is_secret_key(source[4:]) and value is not None:
        return "**********"
    if isinstance(value, dict):
        return {k: _redact(v, str(k), sources, (*at, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, key, sources, (*at, i)) for i, v in enumerate(value)]
    if key and is_secret_key(key) and value is not None:
        return "**********"
    return value


def run(args: argparse.Namespace) -> int:
    cfg = load_from_args(args.file, args, record=False)
    if args.resolved:
        data = _redact(cfg.model_dump(mode="json"), sources=dict(cfg.provenance.sources))
    else:
        from .._yamlsafe import parse_yaml

        data = _redact(parse_yaml(cfg.provenance.template.encode(), args.file).data)
    if args.format == "json":
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        import yaml

        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return 0
