"""``aiconfig plugins``: list entry-point plugins with the policy's verdict, or pin them."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("plugins", help="list or pin entry-point plugins")
    psub = p.add_subparsers(dest="plugins_command", metavar="ACTION", parser_class=type(p))
    psub.required = True
    ls = psub.add_parser("list", help="installed plugins and whether the policy lets them load")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(run=run_list)
    lk = psub.add_parser("lock", help="print an AP_PLUGIN_LOCK file pinning distributions")
    lk.add_argument("dists", nargs="+", metavar="DIST", help="distribution names to pin")
    lk.set_defaults(run=run_lock)


def run_list(args: argparse.Namespace) -> int:
    import json
    from importlib import metadata

    from ..harness.plugins import GROUP, PluginPolicy, distribution_digest

    policy = PluginPolicy.from_env()
    rows = []
    for ep in sorted(metadata.entry_points(group=GROUP), key=lambda e: e.name):
        reason = policy.check(ep)
        rows.append(
            {
                "name": ep.name,
                "value": ep.value,
                "dist": ep.dist.metadata["Name"] if ep.dist else None,
                "version": ep.dist.version if ep.dist else None,
                "sha256": distribution_digest(ep.dist) if ep.dist else None,
                "allowed": reason is None,
                "reason": reason,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            verdict = "allowed" if r["allowed"] else f"refused: {r['reason']}"
            print(f"{r['name']}  {r['dist']}=={r['version']}  {verdict}")
    return 0


def run_lock(args: argparse.Namespace) -> int:
    import json

    from ..harness.plugins import lock_entries

    print(json.dumps(lock_entries(args.dists), indent=2))
    return 0
