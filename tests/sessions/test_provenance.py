"""Where a session came from is read once (``session_provenance``) for the catalog, the report
and the LeRobot export: a session recorded from a fork names the fork (its ``meta.name``, the
last lineage step, whose path and digest are the record's own), in all three alike."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from aiconfig import AIConfig
from aiconfig.sessions import ActionSpec, export_lerobot
from aiconfig.sessions._catalog import read_row
from aiconfig.sessions._report import render_session

SEED = Path(__file__).resolve().parents[1] / "fuzz" / "corpus" / "_session"
BASE, FORK = "a" * 64, "b" * 64
SIGNER = {"principal": "lead@aiconfig.dev", "fingerprint": "SHA256:x", "key_type": "ssh-ed25519"}
# As the recorder writes a loaded fork's provenance (aiconfig.Provenance.to_dict()).
PROVENANCE = {
    "path": "/configs/lr-sweep.yaml",
    "sha256": FORK,
    "signed": True,
    "signers": [SIGNER],
    "lineage": [
        {"path": "/configs/baseline.yaml", "name": "lol-bc-baseline", "version": 1,
         "sha256": BASE, "signers": ["lead@aiconfig.dev"], "base": None, "overrides": {}},
        {"path": "/configs/lr-sweep.yaml", "name": "lol-bc-lr-sweep", "version": 2,
         "sha256": FORK, "signers": ["lead@aiconfig.dev"], "base": "/configs/baseline.yaml",
         "overrides": {"training.learning_rate": 0.0001}},
    ],
}  # fmt: skip


@pytest.fixture
def forked(tmp_path: Path) -> Path:
    meta = json.loads((SEED / "metadata.json").read_text())
    root = tmp_path / "sessions"
    path = root / str(meta["session_id"])
    shutil.copytree(SEED, path)
    meta["provenance"] = PROVENANCE
    (path / "metadata.json").write_text(json.dumps(meta))
    return path


def test_a_fork_is_named_alike_by_the_catalog_the_report_and_the_export(
    forked: Path, tmp_path: Path
) -> None:
    row = read_row(forked, forked.parent)
    assert row["config_name"] == "lol-bc-lr-sweep"
    assert row["config_path"] == "/configs/lr-sweep.yaml" and row["config_digest"] == FORK
    assert row["signers"] == ["lead@aiconfig.dev"]
    assert row["lineage"] == ["/configs/baseline.yaml", "/configs/lr-sweep.yaml"]

    text = render_session(forked)
    assert "<th>sha256</th><td>" + FORK in text
    assert "<th>signers</th><td>lead@aiconfig.dev (SHA256:x)</td>" in text
    assert "<th>lineage</th><td>/configs/baseline.yaml &lt;- /configs/lr-sweep.yaml</td>" in text

    config = AIConfig.model_validate({"meta": {"name": "t", "version": 1}})
    spec = ActionSpec.from_model(config.model)
    export_lerobot([forked.parent], tmp_path / "out", spec=spec)
    (ep,) = pq.read_table(tmp_path / "out/meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert ep["aiconfig/config_name"] == row["config_name"]
    assert ep["aiconfig/config_digest"] == row["config_digest"]
    assert ep["aiconfig/config_path"] == row["config_path"]
    assert ep["aiconfig/signers"] == row["signers"]
    assert ep["aiconfig/run_id"] == row["run_id"] and ep["aiconfig/session_id"] == row["session_id"]
    assert ep["aiconfig/format_version"] == row["format_version"]
