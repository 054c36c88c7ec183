"""``aiconfig emergency BASE --set P=V --ttl 2h --reason ... --sign-key K``: the playbook."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._common import add_trust_options, load_from_args, print_json


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "emergency",
        help="write a short-lived signed emergency override of a config's listed paths",
        description="Write BASE's emergency/<stem>@<time>.yaml: the given overrides of paths "
        "BASE lists in meta.emergency, pinned to BASE's sha256, with a reason and an expiry "
        "of at most 24 h, signed with --sign-key by a principal of keys/policy.yaml's "
        "emergency section. Every load of BASE then applies it, with a loud warning, until it "
        "expires or BASE changes. With --status: list the overrides of BASE and their state.",
    )
    p.add_argument("base", metavar="BASE", help="the config to override (a baseline or a fork)")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override one listed path (repeatable; list items: path[N]=v, path[+]=v, ~path[N])",
    )
    p.add_argument("--ttl", default="2h", help="lifetime: 30m, 2h, 1d (at most 24 h; default 2h)")
    p.add_argument("--reason", default="", help="why, for the record (required)")
    p.add_argument("--sign-key", metavar="K", help="sign the override with this SSH key")
    p.add_argument("--status", action="store_true", help="list BASE's overrides; write nothing")
    p.add_argument("--json", action="store_true", help="--status as JSON")
    add_trust_options(p)
    p.set_defaults(run=run)


def _status(args: argparse.Namespace) -> int:
    from .._emergency import check_override, find_overrides, read_override
    from .._errors import AiconfigError

    base = Path(args.base)
    cfg = load_from_args(args.base, args, apply_emergency=False)
    data = base.read_bytes()
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for path in find_overrides(base):
        try:
            one = check_override(
                path,
                read_override(path),
                config_path=base,
                config_bytes=data,
                config=cfg,
                keys=args.keys,
                now=now,
            )
        except AiconfigError as exc:
            rows.append({"file": str(path), "state": "refused", "why": str(exc).splitlines()[0]})
            continue
        if one is not None:
            state = "active" if one.active else "expired"
            rows.append({**one.record(str(base), cfg.provenance.sha256), "state": state})
    if args.json:
        print_json({"base": str(base), "overrides": rows})
    elif not rows:
        sys.stdout.write(f"{base}: no emergency overrides\n")
    for row in rows if not args.json else ():
        if row["state"] == "refused":
            sys.stdout.write(f"REFUSED {row['file']}: {row['why']}\n")
            continue
        changes = ", ".join(f"{k} = {v!r}" for k, v in row["overrides"].items())
        sys.stdout.write(
            f"{row['state'].upper():7} {row['file']}: {changes}; reason: {row['reason']}; "
            f"expires {row['expires']}; signed by {', '.join(row['signers'])}\n"
        )
    return 1 if any(r["state"] == "refused" for r in rows) else 0


def run(args: argparse.Namespace) -> int:
    if args.status:
        return _status(args)
    from .._emergency import parse_ttl, plan_override
    from .._errors import ConfigFileError, EmergencyOverrideError
    from .._files import atomic_write

    try:
        ttl = parse_ttl(args.ttl)
    except ValueError as exc:
        raise EmergencyOverrideError(str(exc), hint="--ttl 30m, 2h, 1d") from None
    if not args.sign_key:
        raise EmergencyOverrideError(
            "--sign-key is required: an unsigned emergency override is never applied",
            hint="sign with an on-call key: --sign-key ~/.ssh/id_ed25519",
        )
    base = Path(args.base)
    cfg = load_from_args(args.base, args, apply_emergency=False)
    plan = plan_override(base, cfg, sets=args.sets, ttl=ttl, reason=args.reason, keys=args.keys)
    target, data = plan.path, plan.data
    if target.exists():
        raise ConfigFileError("an override with this name exists", file=str(target))
    from .._emergency import check_override
    from .._loader import read_config_bytes
    from .._trust.signing import add_signature, make_signature

    # Signed in memory first: a missing or unusable key fails before anything is written.
    armored, _ = make_signature(data, Path(args.sign_key))
    atomic_write(target, data)
    try:
        add_signature(target, armored)
        # The signer must be one the emergency policy allows: check it as a load would.
        check_override(
            target,
            data,
            config_path=base,
            config_bytes=read_config_bytes(base),
            config=cfg,
            keys=args.keys,
            now=datetime.now(UTC),
        )
    except BaseException:
        target.unlink(missing_ok=True)
        target.with_name(target.name + ".sig").unlink(missing_ok=True)
        raise
    changes = ", ".join(f"{k} = {v!r}" for k, v in plan.overrides.items())
    sys.stdout.write(
        f"wrote {target} (signed): {changes}; active until {plan.expires.isoformat()}; "
        "every load of the config now applies it\n"
    )
    return 0
