"""``aiconfig schema [--fork|--any] [-o FILE]``: the JSON Schema of config or fork files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "schema",
        help="print the JSON Schema (draft 2020-12) of config files or fork files",
        description="Print the JSON Schema of config files (default), of fork files (--fork), "
        "or of either (--any: a fork when the file has a top-level 'fork:' key), generated "
        "from the models. Editors with the YAML language server use it for completion and "
        "inline errors; check-jsonschema validates files against it. The same files ship "
        "inside the package (aiconfig/schemas/).",
    )
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--fork", action="store_true", help="the schema of fork files")
    kind.add_argument("--any", action="store_true", help="one schema for both kinds of file")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .._json_schema import schema_text

    text = schema_text("fork" if args.fork else "any" if args.any else "config")
    if args.output is None:
        sys.stdout.write(text)
        return 0
    from .._errors import ConfigFileError
    from .._files import atomic_write

    out = Path(args.output)
    try:
        atomic_write(out, text)
    except OSError as exc:
        raise ConfigFileError(
            f"cannot write the schema: {exc.strerror}",
            file=str(out),
            hint="choose a writable path for -o",
        ) from None
    sys.stdout.write(f"wrote {out}\n")
    return 0
