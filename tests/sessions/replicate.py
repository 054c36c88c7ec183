"""Copies of a recorded session under fresh ids, as the recorder would have written them
(events re-keyed, manifest re-committed): for tests and the scale benchmark."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from aiconfig._files import sha256_file
from aiconfig.sessions import build_manifest


def replicate(src: Path, dst: Path, *, link_media: bool = False, shift_s: float = 0.0) -> Path:
    """Write a copy of session ``src`` at ``dst`` (its name is the new session id); media files
    are hard-linked when ``link_media`` (identical bytes, no disk cost)."""
    dst.mkdir(parents=True)
    new_id = dst.name
    for item in src.iterdir():
        if item.name in ("metadata.json", "events.parquet", "manifest.json"):
            continue
        if link_media:
            os.link(item, dst / item.name)
        else:
            shutil.copy2(item, dst / item.name)
    meta = json.loads((src / "metadata.json").read_text())
    shift = int(shift_s * 1e9)
    meta["session_id"] = new_id
    for key in ("start_t_ns", "end_t_ns"):
        if isinstance(meta.get(key), int):
            meta[key] += shift
    (dst / "metadata.json").write_text(json.dumps(meta, indent=2))
    table = pq.read_table(src / "events.parquet")
    ids = pa.array([new_id] * table.num_rows, type=pa.string())
    ids = pc.if_else(pc.is_null(table["session_id"]), pa.nulls(table.num_rows, pa.string()), ids)
    table = table.set_column(table.schema.get_field_index("session_id"), "session_id", ids)
    pq.write_table(table, dst / "events.parquet", compression="snappy", row_group_size=1 << 16)
    old = json.loads((src / "manifest.json").read_text())
    extra = {k: old[k] for k in ("run_id", "provenance") if k in old}
    doc = build_manifest(dst, old["status"], extra) if not link_media else _relinked(dst, old)
    (dst / "manifest.json").write_text(json.dumps(doc))
    return dst


def _relinked(dst: Path, old: dict[str, Any]) -> dict[str, Any]:
    """The source manifest with the rewritten files re-hashed (linked media are identical)."""
    doc = {**old, "session_id": dst.name}
    arts = []
    for art in old["artifacts"]:
        if art["path"] in ("metadata.json", "events.parquet"):
            digest = sha256_file(dst / art["path"])
            arts.append({**art, "sha256": digest.sha256, "bytes": digest.size})
        else:
            arts.append(art)
    doc["artifacts"] = arts
    return doc
