"""The HTML report: one self-contained file (images inline, no script or style from outside).

For a session: thumbnails at regular times, capture delay per frame with padded and dropped
frames marked, the input timeline, a mouse heatmap over a frame, the audio level, stream
statuses and errors, the validator's verdict and the provenance. For a folder of sessions: a
table of every session and histograms of fps, padded rate and duration.
"""

from __future__ import annotations

import base64
import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import BudgetError, SessionError
from ._format import METADATA_FILE
from ._provenance import session_provenance
from ._write import write_text_atomic

if TYPE_CHECKING:
    from ._session import Session
    from ._validate import SessionCheck

__all__ = ["render_root", "render_session", "write_report"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;
max-width:1200px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f4f4f4}
.ok{color:#2a7d2a;font-weight:600}.bad{color:#b00020;font-weight:600}.muted{color:#777}
.strip{display:flex;gap:6px}.strip figure{margin:0;text-align:center;flex:1 1 0;min-width:0;
font-size:11px;color:#555}.thumb{width:100%}.plot{max-width:100%}code{font-size:12px}
"""
# Content-Security-Policy: nothing may be fetched; only inline data: images and the inline
# style and script of this file run.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
# Marks, for a browser-driven check, whether every figure decoded and where it is drawn.
_SCRIPT = """
window.addEventListener('load', function () {
  document.querySelectorAll('img[data-figure]').forEach(function (img) {
    var r = img.getBoundingClientRect();
    img.setAttribute('data-rendered', img.complete && img.naturalWidth > 0 ? 'yes' : 'no');
    img.setAttribute('data-rect', [r.left, r.top + window.scrollY, r.width, r.height]
      .map(Math.round).join(','));
  });
  document.body.setAttribute('data-ready', 'yes');
});
"""


def _img(png: bytes, name: str, alt: str, css: str = "plot") -> str:
    data = base64.b64encode(png).decode()
    return (
        f'<img class="{css}" data-figure="{html.escape(name)}" alt="{html.escape(alt)}" '
        f'src="data:image/png;base64,{data}">'
    )


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style>"
        f"<script>{_SCRIPT}</script></head><body>{body}"
        f'<p class="muted">generated {datetime.now(UTC).isoformat(timespec="seconds")} '
        "by aiconfig sessions report</p></body></html>\n"
    )


def _kv(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape('-' if v is None else str(v))}</td></tr>"
        for k, v in rows
    )
    return f"<table>{cells}</table>"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape('-' if c is None else str(c))}</td>" for c in r)
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _summary(session: Session, check: SessionCheck, n: int) -> list[str]:
    """Title, verdict and the key numbers."""
    meta, start = session.metadata, session.start_t_ns
    verdict = "valid" if check.valid else f"INVALID: {len(check.problems)} problem(s)"
    parts = [
        f"<h1>Session {html.escape(session.id)}</h1>",
        f'<p class="{"ok" if check.valid else "bad"}">{verdict} &middot; status '
        f"{html.escape(session.status)}</p>",
        _kv(
            [
                ("path", str(session.path)),
                ("start (UTC)", datetime.fromtimestamp(start / 1e9, UTC).isoformat()
                 if start else None),
                ("duration", f"{session.duration_s:.2f} s"),
                ("fps target / actual / capture",
                 f"{meta.get('fps')} / {meta.get('actual_fps')} / {meta.get('capture_fps')}"),
                ("frames (padded / dropped)",
                 f"{n} ({meta.get('padded_frames')} / {meta.get('dropped_frames')})"),
                ("resolution", "x".join(map(str, session.resolution))),
                ("window", session.window.title),
                ("keyframe interval", f"{session.keyframe_interval} frames"
                 if session.keyframe_interval else None),
                ("format_version", session.format_version),
            ]
        ),
    ]  # fmt: skip
    if check.problems or check.notes:
        items = "".join(f'<li class="bad">{html.escape(p)}</li>' for p in check.problems)
        items += "".join(f"<li>{html.escape(p)}</li>" for p in check.notes)
        parts.append(f"<h2>Problems and notes</h2><ul>{items}</ul>")
    return parts


def _pictures(session: Session, n: int, events: Any) -> list[str]:
    """Thumbnails, capture delay, input timeline, mouse heatmap, audio level (``events``: the
    session's events table, ``None`` when it could not be read)."""
    from . import _plots

    fps = session.fps or 1.0
    parts = []
    if session.video_path.is_file():
        thumbs = _plots.thumbnails(session.video_path, n, fps)
        figs = "".join(
            f"<figure>{_img(png, f'thumb-{i}', f'frame {i}', 'thumb')}"
            f"<figcaption>frame {i} &middot; {i / fps:.1f} s</figcaption></figure>"
            for i, png in thumbs
        )
        if figs:
            parts.append(f'<h2>Frames</h2><div class="strip">{figs}</div>')
    frames = session.frames(events=events) if events is not None else None
    inputs = session.inputs(events=events) if events is not None else None
    if frames is not None and frames.num_rows:
        delay = _plots.delay_plot(frames, fps)
        parts.append("<h2>Capture delay</h2>" + _img(delay, "delay", "capture delay per frame"))
    if inputs is not None:
        timeline = _plots.input_timeline(inputs, n)
        parts.append("<h2>Input timeline</h2>" + _img(timeline, "inputs", "input timeline"))
        if min(session.resolution) > 0:  # window pixels: unknown when metadata lacks them
            mid = _plots.decode_frames(session.video_path, [n // 2], fps, 640).get(n // 2)
            heat = _plots.mouse_heatmap(inputs, mid, session.resolution)
            parts.append("<h2>Mouse heatmap</h2>" + _img(heat, "heatmap", "mouse position heatmap"))
        else:
            parts.append("<h2>Mouse heatmap</h2><p>not drawn: the screen resolution in "
                         "metadata.json is missing or not two integers</p>")  # fmt: skip
    if session.audio_path is not None:
        png, summary = _plots.audio_levels(session.audio_path)
        parts.append("<h2>Audio</h2>" + (_img(png, "audio", "audio level") if png else ""))
        parts.append(_kv(list(summary.items())))
    return parts


def _streams_and_provenance(session: Session) -> list[str]:
    parts = []
    streams = session.metadata.get("streams")
    if isinstance(streams, dict) and streams:
        rows = []
        for name, raw in sorted(streams.items()):
            info = raw if isinstance(raw, dict) else {"status": raw}
            errors = info.get("errors")
            listed = "; ".join(map(str, errors)) if isinstance(errors, list) else None
            err = info.get("error") or listed or None
            extra = {k: v for k, v in info.items() if k not in ("status", "error", "errors")}
            rows.append([name, info.get("status"), err, json.dumps(extra) if extra else None])
        parts.append("<h2>Streams</h2>" + _table(["stream", "status", "error", "details"], rows))
    origin = session_provenance(session)
    signers = ", ".join(
        f"{s.principal} ({s.fingerprint})" if s.fingerprint else s.principal
        for s in origin.signers or ()
    )
    rows_kv = [
        ("config", origin.config_path),
        ("sha256", origin.config_digest),
        ("signed", origin.signed),
        ("signers", signers or None),
        ("lineage", " <- ".join(origin.lineage or ()) or None),
        ("run id", origin.run_id),
    ]
    parts.append("<h2>Provenance</h2>" + _kv(rows_kv))
    return parts


def render_session(path: Path) -> str:
    """The report of one session as HTML text."""
    from ._session import open_session
    from ._validate import validate_session

    session = open_session(path)
    # events.parquet is read once, here: the validator and the plots use the same table.
    # Unreadable, it is left to the validator, which says why.
    try:
        events = session.events() if session.events_path.is_file() else None
    except (SessionError, BudgetError):  # the validator streams it and says why
        events = None
    check = validate_session(path, events=events)
    n = int(check.stats.get("video_frames") or 0)
    parts = [*_summary(session, check, n), *_pictures(session, n, events)]
    parts += _streams_and_provenance(session)
    return _page(f"Session {session.id}", "".join(parts))


def render_root(root: Path) -> str:
    """The report of every session below ``root`` as HTML text."""
    from . import _plots
    from ._catalog import Catalog
    from ._stats import catalog_stats

    rows = Catalog(root).rows()
    stats = catalog_stats(rows)
    ok = [r for r in rows if r["problem"] is None and r["frame_count"]]
    parts = [
        f"<h1>Sessions under {html.escape(str(root))}</h1>",
        _kv(
            [
                ("sessions", f"{stats['sessions']} ({stats['with_problems']} with problems)"),
                ("recorded", f"{stats['hours_recorded']:.3f} h, {stats['frames']} frames"),
                ("padded / dropped", f"{stats['padded_rate']:.3%} / {stats['dropped_rate']:.3%}"),
                ("input events", stats["input_events"]),
            ]
        ),
        "<h2>Distributions</h2><div class=\"strip\">",
        _img(_plots.histogram([float(r["actual_fps"] or 0) for r in ok], "Actual fps", "fps"),
             "hist-fps", "fps histogram"),
        _img(_plots.histogram([(r["padded_frames"] or 0) / r["frame_count"] for r in ok],
                              "Padded rate", "padded frames / frames"), "hist-padded",
             "padded rate histogram"),
        _img(_plots.histogram([float(r["duration_s"] or 0) for r in ok], "Duration", "seconds"),
             "hist-duration", "duration histogram"),
        "</div><h2>Sessions</h2>",
        _table(
            ["session", "start (UTC)", "duration s", "fps", "actual", "padded", "dropped",
             "inputs", "status", "config", "problem"],
            [[r["session_id"], r["start_time"].isoformat() if r["start_time"] else None,
              r["duration_s"], r["fps"], r["actual_fps"], r["padded_frames"], r["dropped_frames"],
              r["input_events"], r["status"], r["config_name"], r["problem"]] for r in rows],
        ),
    ]  # fmt: skip
    return _page(f"Sessions under {root}", "".join(parts))


def write_report(target: str | Path, output: str | Path | None = None) -> Path:
    """Write the report of a session (a directory with ``metadata.json``) or of every session
    below a folder; returns the file written (default ``./<name>-report.html``)."""
    target = Path(target)
    if not target.is_dir():
        raise SessionError("no such session or folder", file=str(target))
    text = render_session(target) if (target / METADATA_FILE).is_file() else render_root(target)
    out = Path(output) if output is not None else Path(f"{target.resolve().name}-report.html")
    write_text_atomic(text, out)
    return out
