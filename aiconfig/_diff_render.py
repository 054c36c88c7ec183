"""Render config diffs: ``text`` for terminals, ``markdown`` for PR comments, ``json`` for tools."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ._diff import Change, ConfigDiff

__all__ = ["MARKER", "render", "render_json", "render_markdown", "render_text"]

# Hidden marker so a CI job can find and update its own earlier comment.
MARKER = "<!-- aiconfig-diff -->"
_INLINE_ROWS = 15  # more rows than this go into a collapsed <details> block
_MAX_CELL = 80
_KEYS_CHANGED = "trust-store-changed"  # a keys/ file changed in the reviewed revision


def _val(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 3] + "..."


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "-"


def _signers(names: Sequence[str]) -> str:
    return ", ".join(names) or "UNSIGNED"


# ---------------------------------------------------------------- text


def _text_change(c: Change) -> str:
    if c.kind == "added":
        return f"  + {c.path}: {_val(c.new)}"
    if c.kind == "removed":
        return f"  - {c.path}: {_val(c.old)}"
    tag = " (type changed)" if c.kind == "type_changed" else ""
    return f"  ~ {c.path}: {_val(c.old)} -> {_val(c.new)}{tag}"


def _text_one(d: ConfigDiff) -> list[str]:
    old = d.old.file if d.old else "(none)"
    new = d.new.file if d.new else "(none)"
    head = f"{d.label or new} [{d.verdict}]" if d.label else f"{old} -> {new} [{d.verdict}]"
    if d.status == _KEYS_CHANGED:
        head = f"WARNING: trust store file {d.label} changed"
    lines = [head]
    if d.note:
        lines.append(f"  note: {d.note}")
    for side, tag in ((d.old, "old"), (d.new, "new")):
        if side is not None and side.trust_problem:
            lines.append(f"  {tag} signature: {side.trust_problem}")
    lines.extend(_text_emergency(d))
    if d.old and d.new and d.old.config and d.new.config:
        o, n = d.old.config.meta, d.new.config.meta
        lines.append(
            f"  {o.name} v{o.version} -> {n.name} v{n.version}; "
            f"sha256 {_short(d.old.config.provenance.sha256)} -> "
            f"{_short(d.new.config.provenance.sha256)}"
        )
        if d.signer_changes:
            lines.append(f"  signers: {_signers(d.old.signers)} -> {_signers(d.new.signers)}")
    lines.extend(_text_change(c) for c in (*d.meta_changes, *d.changes))
    if d.verdict == "identical":
        lines.append("  no semantic change (comments or formatting only)")
    return lines


def _emergency_text(record: dict[str, Any]) -> str:
    changes = ", ".join(f"{k} = {_val(v)}" for k, v in record["overrides"].items())
    return (
        f"{changes} (reason: {record['reason']}; expires {record['expires']}; "
        f"signed by {', '.join(record['signers'])}; {record['file']})"
    )


def _text_emergency(d: ConfigDiff) -> list[str]:
    """Active emergency overrides of each side: shown apart, never mixed into the changes."""
    lines: list[str] = []
    for side, tag in ((d.old, "old"), (d.new, "new")):
        if side is None:
            continue
        lines.extend(
            f"  EMERGENCY OVERRIDE active on {tag}: {_emergency_text(r)}" for r in side.emergency
        )
        lines.extend(f"  {tag} emergency override: {p}" for p in side.emergency_problems)
    return lines


def render_text(diffs: Sequence[ConfigDiff]) -> str:
    if not diffs:
        return "no config files changed\n"
    out: list[str] = []
    for d in diffs:
        out.extend(_text_one(d))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- markdown


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_code(text: str) -> str:
    text = _md_escape(text)
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_row(c: Change) -> str:
    old = "" if c.kind == "added" else _md_code(_val(c.old))
    new = "" if c.kind == "removed" else _md_code(_val(c.new))
    kind = c.kind.replace("_", " ")
    return f"| {_md_code(c.path)} | {kind} | {old} | {new} |"


_HEADER = "| Path | Change | Old | New |\n|---|---|---|---|"


def _md_table(changes: Sequence[Change]) -> list[str]:
    if not changes:
        return []
    rows = [_md_row(c) for c in changes]
    if len(rows) <= _INLINE_ROWS:
        return [_HEADER, *rows, ""]
    return [
        _HEADER,
        *rows[:_INLINE_ROWS],
        "",
        f"<details><summary>{len(rows) - _INLINE_ROWS} more changes</summary>",
        "",
        _HEADER,
        *rows[_INLINE_ROWS:],
        "",
        "</details>",
        "",
    ]


def _md_one(d: ConfigDiff) -> list[str]:
    title = d.label or (d.new.file if d.new else d.old.file if d.old else "?")
    icon = {
        "added": "🆕",
        "removed": "🗑️",
        "error": "❌",
        "base-changed": "⚠️",
        _KEYS_CHANGED: "🚨",
        "skipped": "⏭️",
        "identical": "🟰",
    }.get(d.verdict, "✏️")
    lines = [f"### {icon} {_md_code(title)} — {d.verdict}", ""]
    if d.status == _KEYS_CHANGED:
        lines = [f"### {icon} TRUST STORE CHANGED: {_md_code(title)}", ""]
    if d.note:
        lines += [f"> {_md_escape(d.note)}", ""]
    for side, tag in ((d.old, "old"), (d.new, "new")):
        if side is not None and side.trust_problem:
            lines += [f"> ⚠️ {tag} side signature: {_md_escape(side.trust_problem)}", ""]
        for record in side.emergency if side is not None else ():
            text = _md_escape(_emergency_text(record))
            lines += [f"> 🚨 **Emergency override active** on the {tag} side: {text}", ""]
        for problem in side.emergency_problems if side is not None else ():
            lines += [f"> ⚠️ {tag} side emergency override: {_md_escape(problem)}", ""]
    if d.old and d.new and d.old.config and d.new.config:
        o, n = d.old.config.meta, d.new.config.meta
        facts = [
            ("name", o.name, n.name),
            ("version", str(o.version), str(n.version)),
            ("expires", str(o.expires or "never"), str(n.expires or "never")),
            ("signers", _signers(d.old.signers), _signers(d.new.signers)),
            (
                "sha256",
                _short(d.old.config.provenance.sha256),
                _short(d.new.config.provenance.sha256),
            ),
        ]
        lines += ["| | Old | New |", "|---|---|---|"]
        for what, before, after in facts:
            mark = "" if before == after else " **changed**"
            lines.append(f"| {what}{mark} | {_md_code(before)} | {_md_code(after)} |")
        lines.append("")
    elif d.new and d.new.config:
        n = d.new.config.meta
        lines += [
            f"{_md_code(n.name)} v{n.version}, signed by {_md_escape(_signers(d.new.signers))}",
            "",
        ]
    lines += _md_table([*d.meta_changes, *d.changes])
    if d.verdict == "identical":
        lines += ["No semantic change (comments or formatting only).", ""]
    return lines


def render_markdown(diffs: Sequence[ConfigDiff]) -> str:
    changed = sum(1 for d in diffs if d.differs)
    lines = [MARKER, "## aiconfig: experiment config changes", ""]
    if not diffs:
        lines += ["No config files changed.", ""]
    else:
        lines += [f"{changed} of {len(diffs)} config file(s) differ.", ""]
    for d in diffs:
        lines += _md_one(d)
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------- json


def render_json(diffs: Sequence[ConfigDiff]) -> str:
    payload = {"differs": any(d.differs for d in diffs), "files": [d.to_dict() for d in diffs]}
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def render(diffs: Sequence[ConfigDiff], fmt: str) -> str:
    if fmt == "markdown":
        return render_markdown(diffs)
    if fmt == "json":
        return render_json(diffs)
    return render_text(diffs)
