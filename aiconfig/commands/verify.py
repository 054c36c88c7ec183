"""``aiconfig verify FILE...``: who signed, threshold met or not, version, expiry."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._common import print_json


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "verify",
        help="check signatures, review threshold, expiry and version; exit 1 on any failure",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    p.add_argument("--keys", metavar="DIR", help="trust store (default: keys/ near the file)")
    p.add_argument(
        "--data-root",
        metavar="DIR",
        help="anti-rollback state, read only (default: $AP_DATA_ROOT, else "
        "$XDG_STATE_HOME/aiconfig, else ~/.local/state/aiconfig)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .._errors import AiconfigError
    from .._loader import load_trusted

    results: list[dict[str, Any]] = []
    failed = False
    for name in args.files:
        try:
            loaded = load_trusted(name, mode="check", keys=args.keys, data_root=args.data_root)
            cfg, v = loaded.config, loaded.verification
            if v is None:  # check mode verifies or raises
                raise RuntimeError("check mode returned no verification")
        except AiconfigError as exc:
            failed = True
            results.append({"file": name, "ok": False, **exc.to_dict()})
            if not args.json:
                for problem in exc.problems:
                    sys.stderr.write(f"FAIL {problem.render()}\n")
            continue
        entry = {
            "file": name,
            "ok": True,
            "name": cfg.meta.name,
            "version": cfg.meta.version,
            "expires": cfg.meta.expires.isoformat() if cfg.meta.expires else None,
            "threshold": v.threshold,
            "policy_rule": v.rule,
            "reviewers": v.reviewers,
            "signers": [
                {"principal": s.principal, "fingerprint": s.fingerprint} for s in v.signers
            ],
            "ignored_signatures": [
                {"fingerprint": c.fingerprint, "reason": str(c.error)} for c in v.checks if not c.ok
            ],
        }
        results.append(entry)
        if not args.json:
            who = ", ".join(f"{s.principal} ({s.fingerprint})" for s in v.signers)
            sys.stdout.write(
                f"OK   {name}: {cfg.meta.name} v{cfg.meta.version}, "
                f"{v.reviewers}/{v.threshold} reviewers: {who}; "
                f"expires {entry['expires'] or 'never'}\n"
            )
            # Blocks that do not count (stale: made over older bytes; untrusted or revoked
            # keys) are shown too, one line each: a reviewer must see that a re-sign is due.
            for ignored in entry["ignored_signatures"]:
                sys.stdout.write(
                    f"     ignored signature {ignored['fingerprint']}: {ignored['reason']}\n"
                )
    if args.json:
        print_json({"ok": not failed, "files": results})
    return 1 if failed else 0
