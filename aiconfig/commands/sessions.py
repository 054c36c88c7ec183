"""``aiconfig sessions``: list, index, query, stats, validate and report recorded sessions.

pyarrow, DuckDB, PyAV and matplotlib are imported inside the subcommand that needs them.
Exit codes: 0 ok, 1 a handled error or (``validate``) an invalid session, 2 usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._common import print_json

_LIST_COLUMNS = (
    ("session", "session_id"),
    ("start (UTC)", "start"),
    ("dur s", "duration_s"),
    ("fps", "fps"),
    ("actual", "actual_fps"),
    ("pad/drop", "pad_drop"),
    ("size", "size"),
    ("streams", "streams"),
    ("inputs", "input_events"),
    ("status", "status"),
    ("config", "config"),
    ("run", "run_id"),
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "sessions",
        help="list, index, query, check and report recorded capture sessions",
        description="Work with the capture sessions below a folder (searched recursively).",
    )
    s = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    s.required = True

    ls = s.add_parser("list", help="one line per session", description="One line per session.")
    ls.add_argument("root", metavar="ROOT", type=Path)
    ls.add_argument("--json", action="store_true", help="JSON: one object per session")
    ls.set_defaults(run=_list)

    ix = s.add_parser(
        "index",
        help="write ROOT/sessions.parquet (incrementally)",
        description="Write or refresh ROOT/sessions.parquet, reading only new or changed sessions.",
    )
    ix.add_argument("root", metavar="ROOT", type=Path)
    ix.add_argument("--json", action="store_true", help="print what was read as JSON")
    ix.set_defaults(run=_index)

    q = s.add_parser(
        "query",
        help="SQL (DuckDB) over the views sessions, events, frames, inputs",
        description="Run one SELECT over the views sessions, events, frames and inputs "
        "(every row carries session_id). The data is opened read-only.",
    )
    q.add_argument("root", metavar="ROOT", type=Path)
    q.add_argument("sql", metavar="SQL")
    fmt = q.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV on stdout")
    fmt.add_argument("--json", action="store_true", help="JSON on stdout (a list of objects)")
    fmt.add_argument("--parquet", metavar="FILE", type=Path, help="write the result to FILE")
    q.set_defaults(run=_query)

    st = s.add_parser(
        "stats",
        help="totals and distributions",
        description="Totals and distributions: hours, frames, events per type, padded and "
        "dropped rates, focus-lost time.",
    )
    st.add_argument("root", metavar="ROOT", type=Path)
    st.add_argument("--json", action="store_true", help="JSON instead of text")
    st.set_defaults(run=_stats)

    v = s.add_parser(
        "validate",
        help="check every session; exit 1 if any is invalid",
        description="Validate every session below ROOT (the checks of 'python -m capture "
        "validate'); exit 1 if any is invalid.",
    )
    v.add_argument("root", metavar="ROOT", type=Path)
    v.add_argument("--json", action="store_true", help="JSON: one verdict per session")
    v.set_defaults(run=_validate)

    r = s.add_parser(
        "report",
        help="a self-contained HTML report of a session or a folder of sessions",
        description="Write one self-contained HTML file (images inline, no network access) "
        "about SESSION, or about every session below ROOT.",
    )
    r.add_argument("target", metavar="SESSION|ROOT", type=Path)
    r.add_argument(
        "-o",
        "--output",
        metavar="FILE.html",
        type=Path,
        help="where to write it (default: ./<name>-report.html)",
    )
    r.set_defaults(run=_report)

    from .sessions_export import add_export_parser

    add_export_parser(s)


def _catalog(root: Path) -> Any:
    from ..sessions import Catalog

    return Catalog(root)


def _start(row: dict[str, Any]) -> str:
    t = row.get("start_time")
    return t.strftime("%Y-%m-%d %H:%M:%S") if t is not None else "-"


def _config(row: dict[str, Any]) -> str:
    if not row.get("config_name"):
        return "-"
    digest = (row.get("config_digest") or "")[:12]
    signers = ",".join(row.get("signers") or []) or "unsigned"
    return f"{row['config_name']}@{digest} ({signers})"


def _cell(row: dict[str, Any], key: str) -> str:
    if key == "start":
        return _start(row)
    if key == "pad_drop":
        return f"{row['padded_frames'] or 0}/{row['dropped_frames'] or 0}"
    if key == "size":
        return f"{row['width']}x{row['height']}" if row.get("width") else "-"
    if key == "config":
        return _config(row)
    value = row.get(key)
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def table_text(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in
              enumerate(header)]  # fmt: skip
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in body]
    return "\n".join(lines)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["start_time"] = row["start_time"].isoformat() if row.get("start_time") else None
    out.pop("fingerprint", None)
    return out


def _list(args: argparse.Namespace) -> int:
    rows = _catalog(args.root).rows(progress=not args.json)
    if args.json:
        print_json([_jsonable(r) for r in rows])
        return 0
    body = [[_cell(r, key) for _, key in _LIST_COLUMNS] for r in rows]
    print(table_text([h for h, _ in _LIST_COLUMNS], body))
    for r in rows:
        if r["problem"]:
            sys.stderr.write(f"problem: {r['path']}: {r['problem']}\n")
    print(f"{len(rows)} sessions, {sum(1 for r in rows if r['problem'])} with problems")
    return 0


def _index(args: argparse.Namespace) -> int:
    cat = _catalog(args.root)
    result = cat.index(progress=not args.json)
    summary = {
        "index": str(cat.index_path),
        "sessions": len(result.rows),
        "read": result.read,
        "unchanged": result.reused,
        "removed": result.removed,
        "with_problems": sum(1 for r in result.rows if r["problem"]),
    }
    if args.json:
        print_json(summary)
    else:
        print(
            f"{summary['index']}: {summary['sessions']} sessions ({summary['read']} read, "
            f"{summary['unchanged']} unchanged, {summary['removed']} removed, "
            f"{summary['with_problems']} with problems)"
        )
    return 0


def _query(args: argparse.Namespace) -> int:
    table = _catalog(args.root).query(args.sql)
    if args.parquet is not None:
        from ..sessions._write import write_parquet_atomic

        write_parquet_atomic(table, args.parquet)
        print(f"{args.parquet}: {table.num_rows} rows")
        return 0
    rows = table.to_pylist()
    if args.json:
        print_json(rows)
    elif args.csv:
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(table.column_names)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row.values()])
    else:
        body = [["NULL" if v is None else _fmt(v) for v in r.values()] for r in rows]
        print(table_text(table.column_names, body))
        print(f"({len(rows)} rows)")
    return 0


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _stats(args: argparse.Namespace) -> int:
    from ..sessions._stats import render_stats

    stats = _catalog(args.root).stats()
    if args.json:
        print_json(stats)
    else:
        print(render_stats(stats))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from ..sessions._catalog import discover
    from ..sessions._progress import progress

    cat = _catalog(args.root)
    found = list(discover(cat.root))
    verdicts: list[dict[str, Any]] = []
    from ..sessions import validate_session

    for path, problem in progress(found, desc="validating", unit="session", enabled=not args.json):
        if problem is not None:
            verdicts.append({"path": str(path), "valid": False, "problems": [problem]})
            continue
        check = validate_session(path)
        verdicts.append(
            {"path": str(path), "session_id": check.session_id, "valid": check.valid,
             "status": check.status, "problems": check.problems, "notes": check.notes}
        )  # fmt: skip
    bad = [v for v in verdicts if not v["valid"]]
    if args.json:
        print_json({"sessions": len(verdicts), "invalid": len(bad), "results": verdicts})
    else:
        for v in verdicts:
            mark = "valid  " if v["valid"] else "INVALID"
            print(f"{mark} {v['path']}")
            for problem in v["problems"]:
                print(f"        {problem}")
        print(f"{len(verdicts) - len(bad)}/{len(verdicts)} sessions valid")
    return 1 if bad else 0


def _report(args: argparse.Namespace) -> int:
    from ..sessions import write_report

    path = write_report(args.target, args.output)
    print(path)
    return 0
