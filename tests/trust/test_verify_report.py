"""``aiconfig verify`` shows, in text as in ``--json``, every signature block that does not count
(a stale block made over older bytes, an unlisted key): a reviewer must see a re-sign is due."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aiconfig.cli import main
from tests.conftest import MINIMAL, Keyring


def test_stale_block_is_shown_without_json(
    keyring: Keyring, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    keyring.add("a@x")
    keyring.add("b@x")
    cfg = keyring.write("experiments/c.yaml", MINIMAL, "a@x", "b@x")
    cfg.write_text(MINIMAL.replace("version: 1", "version: 2"))  # reviewed change...
    keyring.sign(cfg, "a@x")  # ...re-signed by a only: b's block is over the old bytes
    argv = ["verify", str(cfg), "--keys", str(keyring.keys_dir), "--data-root", str(tmp_path)]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (ignored,) = report["files"][0]["ignored_signatures"]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"OK   {cfg}: demo v2, 1/1 reviewers: a@x")
    assert out[1] == f"     ignored signature {ignored['fingerprint']}: {ignored['reason']}"
    assert len(out) == 2
