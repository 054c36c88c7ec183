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
    value: Any, path: tuple[str | int, ...] = (), sources: dict[str, str] | None = None
) -> Any:
    """Secrets are masked: every secret field (the schema decides: ``SecretStr`` or marked,
    never the key's name), and any value that came from an env variable whose name looks
    secret (``GITHUB_TOKEN``, ``SLACK_WEBHOOK``), whatever key it lands in.

    ``show --resolved`` exists to show what the environment resolved to, so a value from a
    variable such as ``NUM_WORKERS`` is shown. (Error messages and diffs never show env values.)
    """
    from .._keypath import KeyPath, is_secret_key
    from .._schema import is_secret_path

    source = (sources or {}).get(str(KeyPath(path)), "") if path else ""
    if source.startswith("env:") and is_secret_key(source[4:]) and value is not None:
        return "**********"
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            sub: tuple[str | int, ...] = (*path, str(k))
            if path == ("overrides",):  # a fork file: its keys are dotted config paths
                try:
                    sub = KeyPath.parse(str(k))
                except ValueError:
                    sub = (str(k),)
            out[k] = _redact(v, sub, sources)
        return out
    if isinstance(value, list):
        return [_redact(v, (*path, i), sources) for i, v in enumerate(value)]
    if path and value is not None and is_secret_path(path):
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
