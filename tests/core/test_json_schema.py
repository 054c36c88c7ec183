"""The shipped JSON Schemas: equal to the models, valid 2020-12, and checked by real validators.

``check-jsonschema`` (the CLI editors' users and CI run) validates the committed configs and
reports hostile ones at the right path; ``jsonschema`` in-process checks that the schema and
the loader agree on where ``${oc.env:...}`` is accepted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from aiconfig import AiconfigError
from aiconfig._json_schema import SCHEMA_FILES, SchemaKind, schema_text, shipped_schema_text
from aiconfig._loader import load_unverified_bytes
from aiconfig.cli import main
from tests.conftest import BROKEN_CONFIG, REPO

SCHEMAS = REPO / "aiconfig" / "schemas"
EXPERIMENTS = sorted((REPO / "experiments").glob("*.yaml"))
FORKS = [p for p in EXPERIMENTS if p.name != "baseline.yaml"]
KINDS: tuple[SchemaKind, ...] = ("config", "fork", "any")


def check_jsonschema(schema: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "-o", "JSON", "--schemafile", str(schema)]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("kind", KINDS)
def test_shipped_schema_equals_models(kind: SchemaKind) -> None:
    assert shipped_schema_text(kind) == schema_text(kind), (
        f"aiconfig/schemas/{SCHEMA_FILES[kind]} is out of date: regenerate it with "
        f"aiconfig schema {'--' + kind if kind != 'config' else ''} -o "
        f"aiconfig/schemas/{SCHEMA_FILES[kind]}"
    )


def test_cli_prints_and_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == shipped_schema_text("config")
    assert main(["schema", "--fork"]) == 0
    assert capsys.readouterr().out == shipped_schema_text("fork")
    out = tmp_path / "new" / "aiconfig.schema.json"
    assert main(["schema", "--any", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == shipped_schema_text("any")


def test_cli_refuses_both_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["schema", "--fork", "--any"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_cli_unwritable_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x", encoding="utf-8")
    assert main(["schema", "-o", str(tmp_path / "file" / "schema.json")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write the schema" in err


def test_schemas_are_valid_draft_2020_12() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--check-metaschema"]
        + [str(SCHEMAS / name) for name in SCHEMA_FILES.values()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in SCHEMA_FILES.values():
        schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(schema)


def test_models_that_forbid_extras_forbid_them_in_the_schema() -> None:
    schema = json.loads(shipped_schema_text("config"))
    assert schema["additionalProperties"] is False
    for name, sub in schema["$defs"].items():
        if "properties" in sub:
            assert sub["additionalProperties"] is False, name
    assert schema["$defs"]["ModelConfig"]["description"]  # docstrings become descriptions
    assert schema["$defs"]["CaptureConfig"]["properties"]["fps"]["default"] == 30


def test_committed_configs_validate() -> None:
    baseline = REPO / "experiments" / "baseline.yaml"
    for schema, files in (
        (SCHEMAS / "config.schema.json", [baseline]),
        (SCHEMAS / "fork.schema.json", FORKS),
        (SCHEMAS / "aiconfig.schema.json", EXPERIMENTS),
    ):
        proc = check_jsonschema(schema, *files)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert json.loads(proc.stdout)["status"] == "ok"
    assert len(FORKS) >= 5


def _errors(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert not report["parse_errors"]
    return {e["path"]: e.get("best_match", e)["message"] for e in report["errors"]}


def test_typo_wrong_type_and_out_of_range_at_their_paths(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN_CONFIG, encoding="utf-8")
    errors = _errors(check_jsonschema(SCHEMAS / "aiconfig.schema.json", bad))
    assert set(errors) == {
        "$",
        "$.training.epochs",
        "$.training.optimizer.betas[1]",
        "$.capture.fps",
    }
    assert "'trainig' was unexpected" in errors["$"]
    assert errors["$.training.epochs"] == "'many' is not of type 'integer'"
    assert errors["$.training.optimizer.betas[1]"] == "1.5 is greater than the maximum of 1.0"
    assert errors["$.capture.fps"] == "0 is less than or equal to the minimum of 0"
    # The loader reports the same three places (and the typo) itself.
    with pytest.raises(AiconfigError) as exc:
        load_unverified_bytes(bad.read_bytes(), str(bad), env={})
    paths = {p.path for p in exc.value.problems}
    assert {"trainig", "training.epochs", "capture.fps"} <= paths


BAD_FORK = """\
fork:
  base: baseline.yaml
  sha256: 2618fb76cafd73ccb867adc8350b168fda2567a64da15f92eeaffc5240cb7ac9
meta:
  name: bad-fork
  version: 1
overrides:
  training.optimzer.lr: 0.1
  training.epochs: many
  model.dropout: 1.5
  monitoring.latency_thresholds_ms."Qwen/Qwen2.5-0.5B-Instruct": 100
  training.lr: ${oc.env:LR,3e-4}
"""


def test_fork_overrides_are_checked_per_path(tmp_path: Path) -> None:
    bad = tmp_path / "fork.yaml"
    bad.write_text(BAD_FORK, encoding="utf-8")
    errors = _errors(check_jsonschema(SCHEMAS / "aiconfig.schema.json", bad))
    assert set(errors) == {
        "$.overrides",
        "$.overrides['training.epochs']",
        "$.overrides['model.dropout']",
    }
    assert "'training.optimzer.lr'" in errors["$.overrides"]
    assert errors["$.overrides['model.dropout']"] == "1.5 is greater than the maximum of 1.0"


def test_dates_and_datetimes_for_expires(tmp_path: Path) -> None:
    schema = SCHEMAS / "config.schema.json"
    for value, ok in (
        ("2027-06-30", True),
        ("2027-06-30T12:00:00Z", True),
        ("2027-06-30 12:00:00+02:00", True),
        ("next week", False),
    ):
        path = tmp_path / "c.yaml"
        path.write_text(f"meta:\n  name: x\n  version: 1\n  expires: {value}\n", encoding="utf-8")
        proc = check_jsonschema(schema, path)
        assert (proc.returncode == 0) is ok, (value, proc.stdout)


# ---- the schema and the loader agree on where ${oc.env:...} is accepted --------------------


def _leaves(
    node: dict[str, Any], defs: dict[str, Any], prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], Any]]:
    out = []
    for key, sub in node.get("properties", {}).items():
        target = defs[sub["$ref"].rsplit("/", 1)[1]] if "$ref" in sub else sub
        if "properties" in target:
            out += _leaves(target, defs, (*prefix, key))
        elif (
            "default" in sub
            and sub["default"] is not None
            and not isinstance(sub["default"], list | dict)
        ):
            out.append(((*prefix, key), sub["default"]))
    return out


CONFIG_SCHEMA = json.loads(shipped_schema_text("config"))
LEAVES = _leaves(CONFIG_SCHEMA, CONFIG_SCHEMA["$defs"])


def _nest(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"meta": {"name": "interp", "version": 1}}
    node = data
    for seg in path[:-1]:
        node = node.setdefault(seg, {})
    node[path[-1]] = value
    return data


@pytest.mark.parametrize("path,default", LEAVES, ids=[".".join(p) for p, _ in LEAVES])
def test_interpolation_accepted_exactly_where_the_loader_accepts_it(
    path: tuple[str, ...], default: Any
) -> None:
    text = default if isinstance(default, str) else json.dumps(default)
    data = _nest(path, "${oc.env:AICONFIG_TEST_VALUE}")
    validator = jsonschema.Draft202012Validator(CONFIG_SCHEMA)
    schema_ok = validator.is_valid(data)
    try:
        load_unverified_bytes(
            json.dumps(data).encode(), "interp.yaml", env={"AICONFIG_TEST_VALUE": text}
        )
        loader_ok = True
    except AiconfigError:
        loader_ok = False
    assert schema_ok == loader_ok, f"schema {schema_ok}, loader {loader_ok} for {text!r}"


def test_interpolation_cases_both_ways() -> None:
    validator = jsonschema.Draft202012Validator(CONFIG_SCHEMA)
    accepted = {leaf for leaf, _ in LEAVES if validator.is_valid(_nest(leaf, "${oc.env:X,1}"))}
    assert ("training", "dataset", "num_workers") in accepted  # numbers take env values
    assert ("capture", "webcam", "enabled") in accepted  # so do booleans
    assert ("capture", "audio", "sample_rate") not in accepted  # integer enums do not
    assert ("meta", "schema_version") not in accepted
    strict = _nest(("meta", "version"), "${oc.env:X,1}")
    assert not validator.is_valid(strict)  # strict field: a string never becomes the version
