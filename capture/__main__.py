"""``python -m capture``: record a session, ``validate`` / ``recover`` one, or ``doctor``.

Recording runs under the orchestrator contract (``--run-id``, ``--out``, ``--ready-file``,
``--lock-dir``, ``--no-network``, ``--log-json``, ``AP_*``; see docs/harness.md).

Exit codes: 0 ok, 1 a handled error (one line on stderr, no traceback), 2 usage, 3 with
``--strict`` when a requested stream failed, 143 on SIGTERM (once it records, the session is
finalized first; the run is ``interrupted``), 130 on Ctrl+C before recording started (once it
records, Ctrl+C is a stop key like ``q``: 0).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from aiconfig._guard import UsageParser, guarded
from aiconfig.harness.settings import add_run_arguments

from ._cli import check_audio_report, make_config, overrides, record_args, record_from_args

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = UsageParser(
        prog="python -m capture",
        description="Record the game window and inputs (stop with q or Ctrl+C), or "
        "'validate SESSION' / 'recover SESSION' / 'doctor'.",
    )
    record_args(parser)
    add_run_arguments(parser, out_default="./sessions")
    return parser


def _session_command(name: str, argv: Sequence[str]) -> int:
    parser = UsageParser(prog=f"python -m capture {name}")
    parser.add_argument("session", type=Path)
    args = parser.parse_args(argv)
    if not args.session.is_dir():
        sys.stderr.write(f"error: {args.session}: no such session directory\n")
        return 1
    # Imported here: PyAV, numpy and pyarrow must load inside a recording run, under its budget.
    from ._recover import recover_session
    from ._validate import validate_session

    if name == "validate":
        problems = validate_session(args.session)
        for problem in problems:
            sys.stderr.write(f"invalid: {' '.join(problem.split())}\n")  # one line each
        if not problems:
            print(f"{args.session}: valid")
        return 1 if problems else 0
    meta = recover_session(args.session)
    rec = meta.get("recovery", {})
    print(
        f"{args.session}: recovered {meta['frame_count']} frames "
        f"(lost {rec.get('lost_frames')} frames, {rec.get('lost_input_events')} input events); "
        f"valid: {meta['validation']['ok']}"
    )
    for problem in meta["validation"]["problems"]:
        sys.stderr.write(f"invalid: {' '.join(problem.split())}\n")
    return 0 if meta["validation"]["ok"] else 1


def _doctor(argv: Sequence[str]) -> int:
    """Preflight: one line per check (``--json``: one document); 1 when a requested stream
    cannot work."""
    import json

    from ._doctor import blocking, preflight, render
    from ._streams import requested_streams

    parser = UsageParser(
        prog="python -m capture doctor",
        description="Check that a recording with these flags can work here, and say what to do.",
    )
    record_args(parser)
    parser.add_argument("--out", type=Path, metavar="DIR", help="where sessions would go")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = parser.parse_args(argv)
    cfg = make_config(None, overrides(args))
    checks = preflight(cfg, args.out)
    wanted = requested_streams(cfg)
    failed = blocking(checks, wanted)
    if args.json:
        doc = {
            "ok": not failed,
            "requested_streams": sorted(wanted),
            "checks": [c.to_dict() for c in checks],
        }
        print(json.dumps(doc, indent=2))
    else:
        print(render(checks))
        if failed:
            names = sorted({str(c.stream) for c in failed})
            sys.stderr.write(f"doctor: cannot record {', '.join(names)}; fix the lines above\n")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return guarded(lambda: _main(argv))


def _main(argv: list[str]) -> int:
    if argv and argv[0] in ("validate", "recover"):
        return _session_command(argv[0], argv[1:])
    if argv and argv[0] == "doctor":
        return _doctor(argv[1:])
    args = build_parser().parse_args(argv)
    if args.check_audio:
        return check_audio_report(args.audio_device)
    cfg = make_config(None, overrides(args))
    return record_from_args(cfg, args)


if __name__ == "__main__":
    raise SystemExit(main())
