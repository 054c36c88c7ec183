"""One translation of pydantic errors: every error, did-you-mean, line, source, redaction —
for configs, fork files, the trust policy, --set values, capture flags and sidecar flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiconfig import ConfigValidationError, ForkError, load
from aiconfig._overrides import type_value
from aiconfig._trust.store import TrustStore
from aiconfig.cli import main
from tests.conftest import MINIMAL, Keyring, Writer


def test_policy_errors_are_all_reported_with_lines(keyring: Keyring) -> None:
    keyring.policy("threshold: 0\nrule:\n  - pattern: x\nrevoked: []\n")
    with pytest.raises(ConfigValidationError) as info:
        TrustStore.load(keyring.keys_dir)
    by_path = {p.path: p for p in info.value.problems}
    assert set(by_path) == {"threshold", "rule"}
    assert (
        by_path["threshold"].line == 1
        and by_path["threshold"].expected == "greater than or equal to 1"
    )
    assert by_path["rule"].line == 2 and by_path["rule"].hint == "did you mean 'rules'?"
    assert all(p.message.startswith("bad policy: ") for p in info.value.problems)


def test_fork_file_errors_are_all_reported(write_config: Writer) -> None:
    path = write_config(
        "fork:\n  base: baseline.yaml\n  sha256: nothex\nmeta: {name: bad, version: 0}\n"
        "overides: {}\n"
    )
    with pytest.raises(ForkError) as info:
        load(path, allow_unsigned=True)
    by_path = {p.path: p for p in info.value.problems}
    assert set(by_path) == {"fork.sha256", "meta.version", "overides"}
    assert by_path["overides"].hint == "did you mean 'overrides'?"
    assert by_path["fork.sha256"].line == 3 and by_path["meta.version"].line == 4
    assert all("malformed fork file" in p.message for p in info.value.problems)


def test_config_errors_keep_sources_and_redact_secrets(write_config: Writer) -> None:
    path = write_config(
        MINIMAL + "inference:\n  vllm:\n    api_key: [hunter2]\n  max_queue: ${oc.env:Q}\n"
    )
    with pytest.raises(ConfigValidationError) as info:
        load(path, allow_unsigned=True, env={"Q": "lots"})
    by_path = {p.path: p for p in info.value.problems}
    assert by_path["inference.vllm.api_key"].got == "<redacted>"
    assert "hunter2" not in str(info.value)
    assert by_path["inference.max_queue"].source == "env:Q"


def test_set_values_use_the_translator() -> None:
    with pytest.raises(ForkError, match=r"bad value '-1': expected greater than 0") as info:
        type_value("training.lr", "-1")
    assert info.value.problems[0].path == "training.lr"
    with pytest.raises(ForkError) as info:
        type_value("training.gradient_clip", "-1")  # float | None: one reason, not one per member
    assert str(info.value).count("expected") == 1


def test_capture_flags_report_every_problem(tmp_path: Path) -> None:
    from capture._cli import make_config

    with pytest.raises(ConfigValidationError) as info:
        make_config(None, {"fps": 0, "crf": 99})
    rendered = [p.render() for p in info.value.problems]
    assert rendered[0].startswith("capture.fps: invalid value (expected greater than 0, got 0)")
    assert rendered[1].startswith("capture.crf: invalid value")
    assert all(r.endswith("; fix the flag or the config value") for r in rendered)


def test_sidecar_flag_problems_name_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-sidecar", "--base-url", "not a url"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --base-url: String should match pattern") and err.count("\n") == 1
    assert "(got 'not a url')" in err
