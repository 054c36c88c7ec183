"""``aiconfig manifest verify DIR``: re-hash a run's artifacts against its manifest.json."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("manifest", help="inspect run manifests")
    msub = p.add_subparsers(dest="manifest_command", metavar="ACTION", parser_class=type(p))
    msub.required = True
    v = msub.add_parser(
        "verify",
        help="re-hash every artifact of a run directory",
        description="Exit 0 when every artifact listed in DIR/manifest.json exists with the "
        "recorded size and sha256 and no unlisted file is present; 1 otherwise.",
    )
    v.add_argument("dir", metavar="DIR", help="run output directory (holding manifest.json)")
    v.add_argument("--allow-extra", action="store_true", help="accept files not in the manifest")
    v.add_argument("--json", action="store_true", help="print the result as JSON")
    v.set_defaults(run=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from .._errors import ManifestError
    from ..harness.manifest import verify_manifest

    result = verify_manifest(Path(args.dir), allow_extra=args.allow_extra)
    if args.json:
        print(
            json.dumps(
                {
                    "ok": result.ok,
                    "checked": result.checked,
                    "problems": [p.to_dict() for p in result.problems],
                }
            )
        )
        return 0 if result.ok else 1
    if not result.ok:
        raise ManifestError(list(result.problems))
    print(f"ok: {result.checked} artifacts verified in {args.dir}")
    return 0
