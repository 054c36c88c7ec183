"""Emergency overrides through their whole life, with real ssh-keygen keys in temp dirs.

Written by ``aiconfig emergency`` and signed by the on-call principal; applied by every load
(loud warning, provenance, diff, forks, tracker tags); expired; refused for an unlisted path,
a foreign or missing signature, a changed base and an over-long lifetime.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from aiconfig import EmergencyOverrideError, EmergencyOverrideWarning
from aiconfig import _files as emergency_files
from aiconfig._emergency import find_overrides, render_override
from aiconfig._trust.signing import allowed_signers_line, generate_keypair
from aiconfig.cli import main
from tests.fork.conftest import Project

EMERGENCY_META = (
    "  emergency:                     # on-call may change these for at most 24 h\n"
    "    - inference.latency_budget_ms\n"
    "    - capture.webcam\n"
    "    - model.action_space\n"
)
POLICY = (
    "version: 1\nthreshold: 1\nrules:\n"
    "  - pattern: experiments/baseline*.yaml\n    threshold: 2\n"
    "  - pattern: experiments/*\n    threshold: 1\n"
)
POLICY_EMERGENCY = "emergency:\n  principals: [lead@test]\n  threshold: 1\n"
VERIFY = ("ssh-keygen", "-Y", "verify", "-n", "aiconfig")
REASON = "vLLM p99 regression; raise the budget until the rollback lands"


@pytest.fixture
def oncall(project: Project) -> Project:
    """The project's baseline lists emergency paths; the policy names lead@test as on-call."""
    text = project.baseline.read_text(encoding="utf-8")
    text = text.replace("  locked:", EMERGENCY_META + "  locked:", 1)
    project.baseline.write_text(text, encoding="utf-8")
    project.baseline.with_name("baseline.yaml.sig").unlink()
    project.sign(project.baseline, project.lead, project.research)
    (project.root / "keys" / "policy.yaml").write_text(POLICY + POLICY_EMERGENCY, encoding="utf-8")
    return project


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def issue(
    project: Project, capsys: pytest.CaptureFixture[str], *sets: str, key: Path | None = None,
    ttl: str = "2h",
) -> tuple[int, str, str]:  # fmt: skip
    argv = ["emergency", str(project.baseline), "--ttl", ttl, "--reason", REASON]
    for s in sets:
        argv += ["--set", s]
    argv += ["--sign-key", str(key or project.lead)]
    return run(capsys, *project.cli(*argv))


def load_warned(project: Project, path: Path, **kw: object) -> tuple[object, list[str]]:
    with pytest.warns(EmergencyOverrideWarning) as caught:
        cfg = project.load(path, **kw)
    return cfg, [str(w.message) for w in caught]


def test_life_cycle(oncall: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project = oncall
    base = project.load(project.baseline)
    assert base.inference.latency_budget_ms == 50 and base.provenance.emergency == ()
    code, out, err = issue(
        project,
        capsys,
        "inference.latency_budget_ms=120",
        "capture.webcam.enabled=false",
        "~model.action_space[7]",
    )
    assert code == 0, err
    (written,) = find_overrides(project.baseline)
    assert f"wrote {written} (signed)" in out
    # The signature is plain SSHSIG: OpenSSH verifies it too.
    signers = project.root / "keys" / "allowed_signers"
    with written.open("rb") as stdin:
        proc = subprocess.run(
            [*VERIFY, "-f", str(signers), "-I", "lead@test", "-s", f"{written}.sig"],
            stdin=stdin,
            capture_output=True,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    doc = yaml.safe_load(written.read_text(encoding="utf-8"))
    head = doc["emergency"]
    assert head["base"] == "../baseline.yaml" and head["reason"] == REASON
    assert head["sha256"] == hashlib.sha256(project.baseline.read_bytes()).hexdigest()
    created = datetime.fromisoformat(head["created"])
    assert datetime.fromisoformat(head["expires"]) - created == timedelta(hours=2)
    assert doc["overrides"] == {
        "inference.latency_budget_ms": 120.0,
        "capture.webcam.enabled": False,
        "~model.action_space[7]": "f",
    }

    # Applied by every load, loudly, and recorded in the provenance.
    cfg, messages = load_warned(project, project.baseline)
    assert cfg.inference.latency_budget_ms == 120  # type: ignore[attr-defined]
    assert cfg.model.action_space[-1] == "d"  # type: ignore[attr-defined]
    assert any(m.startswith("EMERGENCY OVERRIDE ACTIVE") and REASON in m for m in messages)
    (record,) = cfg.provenance.emergency  # type: ignore[attr-defined]
    assert record["signers"] == ["lead@test"] and record["file"] == str(written)
    assert cfg.provenance.to_dict()["emergency"] == [record]  # type: ignore[attr-defined]
    assert cfg.provenance.sources["inference.latency_budget_ms"] == f"emergency:{written}"  # type: ignore[attr-defined]
    assert project.load(project.baseline, emergency=False).inference.latency_budget_ms == 50

    # The CLI says it on stderr, loudly, on every command that loads the config.
    code, _, err = run(capsys, *project.cli("validate", str(project.baseline)))
    assert code == 0 and "WARNING: EMERGENCY OVERRIDE ACTIVE" in err and "!!!!" in err

    # A fork of the config inherits it (the base is loaded through the same pipeline).
    code, _, err = run(
        capsys,
        *project.cli(
            "fork", str(project.baseline), "--name", "exp", "--set", "training.lr=1e-3",
            "--sign-key", str(project.lead),
        ),
    )  # fmt: skip
    assert code == 0, err
    fork, _ = load_warned(project, project.exp / "exp.yaml")
    assert fork.inference.latency_budget_ms == 120  # type: ignore[attr-defined]
    assert fork.provenance.emergency == (record,)  # type: ignore[attr-defined]

    # aiconfig diff shows the active override apart from the reviewed changes.
    keys = ["--keys", str(project.root / "keys")]
    code, out, _ = run(capsys, "diff", str(project.baseline), str(project.exp / "exp.yaml"), *keys)
    assert code == 1
    assert "EMERGENCY OVERRIDE active on old: inference.latency_budget_ms = 120" in out
    assert "training.lr: 0.0003 -> 0.001" in out
    assert "latency_budget_ms: 50" not in out  # the override is not a reviewed change
    code, out, _ = run(
        capsys, "diff", str(project.baseline), str(project.baseline), "--format", "markdown", *keys
    )
    assert "Emergency override active" in out
    code, out, _ = run(
        capsys, "diff", str(project.baseline), str(project.baseline), "--format", "json", *keys
    )
    assert json.loads(out)["files"][0]["new"]["emergency"][0]["reason"] == REASON

    code, out, _ = run(capsys, *project.cli("emergency", str(project.baseline), "--status"))
    assert code == 0 and out.startswith("ACTIVE ") and REASON in out

    # Expired: refused, not applied; the reviewed values hold again.
    later = created + timedelta(hours=2, seconds=1)
    expired, messages = load_warned(project, project.baseline, now=later)
    assert expired.inference.latency_budget_ms == 50  # type: ignore[attr-defined]
    assert expired.provenance.emergency == ()  # type: ignore[attr-defined]
    assert any("expired at" in m and "refused, not applied" in m for m in messages)


def test_unlisted_path_is_refused(oncall: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = issue(oncall, capsys, "training.lr=0.1")
    assert code == 1 and err.count("\n") == 1
    assert "'training.lr' is not listed in meta.emergency" in err
    assert find_overrides(oncall.baseline) == []
    # A hand-written override of an unlisted path, properly signed, still refuses the load.
    path = _hand_written(oncall, {"training.lr": 0.1, "inference.latency_budget_ms": 80})
    oncall.sign(path, oncall.lead)
    with pytest.raises(EmergencyOverrideError) as exc:
        oncall.load(oncall.baseline)
    (problem,) = exc.value.problems
    assert problem.path == "overrides.training.lr" and problem.line == 11
    assert "not listed in meta.emergency" in problem.message


def test_foreign_signers_are_refused(oncall: Project, capsys: pytest.CaptureFixture[str]) -> None:
    # research@test is a trusted reviewer, but not on call.
    code, _, err = issue(oncall, capsys, "inference.latency_budget_ms=120", key=oncall.research)
    assert code == 1 and err.count("\n") == 1
    assert "signed by research@test, but it needs 1 of the emergency principals (lead@test)" in err
    assert list((oncall.exp / "emergency").iterdir()) == []  # nothing left behind
    # A key nobody trusts.
    stranger = generate_keypair(oncall.root.parent / "private" / "stranger", comment="s@x")
    assert allowed_signers_line("s@x", stranger)  # a real key, just not in allowed_signers
    path = _hand_written(oncall, {"inference.latency_budget_ms": 120})
    oncall.sign(path, oncall.root.parent / "private" / "stranger")
    with pytest.raises(EmergencyOverrideError, match=r"emergency override refused: .*not in"):
        oncall.load(oncall.baseline)


def test_an_unusable_sign_key_writes_nothing(
    oncall: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """The override is signed in memory before its file is written: a missing key (or one
    that is not a key) leaves no override, not even for a moment."""
    written: list[Path] = []
    real = emergency_files.atomic_write

    def watch(path: Path, data: bytes, *args: object, **kw: object) -> None:
        written.append(path)
        real(path, data, *args, **kw)  # type: ignore[arg-type]

    not_a_key = oncall.root / "not_a_key"
    not_a_key.write_text("hello\n", encoding="utf-8")
    for key in (oncall.root / "missing_key", not_a_key):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(emergency_files, "atomic_write", watch)
            code, _, err = issue(oncall, capsys, "inference.latency_budget_ms=120", key=key)
        assert code == 1 and err.count("\n") == 1, err
        assert str(key) in err
    assert written == []
    assert find_overrides(oncall.baseline) == []


def test_missing_signature_is_refused(oncall: Project) -> None:
    _hand_written(oncall, {"inference.latency_budget_ms": 120})
    with pytest.raises(EmergencyOverrideError, match="emergency override refused: not signed"):
        oncall.load(oncall.baseline)


def test_changed_base_is_refused(oncall: Project, capsys: pytest.CaptureFixture[str]) -> None:
    assert issue(oncall, capsys, "inference.latency_budget_ms=120")[0] == 0
    text = oncall.baseline.read_text(encoding="utf-8").replace("version: 1 ", "version: 2 ", 1)
    oncall.baseline.write_text(text, encoding="utf-8")
    oncall.baseline.with_name("baseline.yaml.sig").unlink()
    oncall.sign(oncall.baseline, oncall.lead, oncall.research)
    with pytest.raises(EmergencyOverrideError) as exc:
        oncall.load(oncall.baseline)
    assert "the config changed" in str(exc.value) and "emergency.sha256" in str(exc.value)
    code, out, _ = run(capsys, *oncall.cli("emergency", str(oncall.baseline), "--status"))
    assert code == 1 and out.startswith("REFUSED ")


def test_lifetime_is_capped(oncall: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = issue(oncall, capsys, "inference.latency_budget_ms=120", ttl="25h")
    assert code == 1 and "outside (0, 24 h]" in err
    code, _, err = issue(oncall, capsys, "inference.latency_budget_ms=120", ttl="soon")
    assert code == 1 and "is not a duration" in err
    path = _hand_written(oncall, {"inference.latency_budget_ms": 120}, hours=48)
    oncall.sign(path, oncall.lead)
    with pytest.raises(EmergencyOverrideError, match="at most 24 h is allowed"):
        oncall.load(oncall.baseline)


def test_no_emergency_policy_means_no_override(
    oncall: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    (oncall.root / "keys" / "policy.yaml").write_text(POLICY, encoding="utf-8")
    code, _, err = issue(oncall, capsys, "inference.latency_budget_ms=120")
    assert code == 1 and "no emergency policy" in err


def test_tracker_tags_show_the_override(
    oncall: Project, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    from aiconfig import log_to_mlflow

    assert issue(oncall, capsys, "inference.latency_budget_ms=120")[0] == 0
    cfg, _ = load_warned(oncall, oncall.baseline)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracked = log_to_mlflow(cfg, tracking_uri=store)  # type: ignore[arg-type]
    run_data = MlflowClient(tracking_uri=store).get_run(tracked.run_id).data
    assert run_data.params["inference.latency_budget_ms"] == "120.0"
    (tag,) = json.loads(run_data.tags["aiconfig.emergency"])
    assert tag["reason"] == REASON


def _hand_written(project: Project, overrides: dict[str, object], hours: float = 2) -> Path:
    created = datetime.now(UTC).replace(microsecond=0)
    data = render_override(
        base_rel="../baseline.yaml",
        base_sha256=hashlib.sha256(project.baseline.read_bytes()).hexdigest(),
        reason=REASON,
        created=created,
        expires=created + timedelta(hours=hours),
        overrides=overrides,
    )
    stamp = re.sub(r"[-:]", "", created.isoformat()[:19])
    path = project.exp / "emergency" / f"baseline@{stamp}Z.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


SERVE = """\
meta:
  name: serve
  version: 1
  emergency: [inference.latency_budget_ms]
model:
  input_resolution: [64, 36]
inference:
  backend: torch
  latency_budget_ms: 5000
  device: cpu
monitoring:
  exporters: [jsonl]
  jsonl_path: telemetry.jsonl
"""


def test_a_run_records_and_alerts(
    oncall: Project, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``aiconfig infer`` on an overridden config: the manifest lists the override and the
    run's telemetry carries the alert (monitoring raises it; the core knows no monitoring)."""
    serve = oncall.exp / "serve.yaml"
    serve.write_text(SERVE, encoding="utf-8")
    oncall.sign(serve, oncall.lead)
    code, _, err = run(
        capsys,
        *oncall.cli(
            "emergency", str(serve), "--set", "inference.latency_budget_ms=4000",
            "--reason", REASON, "--sign-key", str(oncall.lead),
        ),
    )  # fmt: skip
    assert code == 0, err
    out_dir = tmp_path / "run"
    code, _, err = run(
        capsys,
        *oncall.cli("infer", "--config", str(serve), "--synthetic", "2", "--out", str(out_dir)),
    )
    assert code == 0, err
    assert "EMERGENCY OVERRIDE ACTIVE" in err
    manifest = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))
    (record,) = manifest["config"]["emergency"]
    assert record["overrides"] == {"inference.latency_budget_ms": 4000.0}
    assert record["reason"] == REASON and record["signers"] == ["lead@test"]
    events = [
        json.loads(line)
        for line in (out_dir / "telemetry.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    alerts = [e for e in events if "emergency override active" in json.dumps(e)]
    assert alerts, [e.get("kind") or list(e) for e in events][:5]
    assert "emergency_override" in json.dumps(alerts[0])


@pytest.mark.parametrize(
    "rules",
    [
        # No rule matches emergency/...yaml, and unmatched files are refused.
        "unmatched: refuse\nrules:\n  - pattern: experiments/baseline*.yaml\n    threshold: 2\n",
        # A catch-all demanding two reviewers matches emergency/...yaml too.
        "rules:\n  - pattern: experiments/*.yaml\n    threshold: 2\n",
    ],
    ids=["no-rule-refused", "catch-all-of-two"],
)
def test_path_rules_do_not_govern_override_files(
    oncall: Project, capsys: pytest.CaptureFixture[str], rules: str
) -> None:
    """An override is held to the emergency rule alone (here 1 of the on-call principals),
    whatever the review policy's path rules say about the folder it lies in."""
    policy = "version: 1\nthreshold: 1\n" + rules + POLICY_EMERGENCY
    (oncall.root / "keys" / "policy.yaml").write_text(policy, encoding="utf-8")
    code, _, err = issue(oncall, capsys, "inference.latency_budget_ms=120")
    assert code == 0, err
    cfg, warned = load_warned(oncall, oncall.baseline)
    assert cfg.inference.latency_budget_ms == 120  # type: ignore[attr-defined]
    assert any("EMERGENCY OVERRIDE" in w for w in warned)


def test_an_override_needs_distinct_on_call_reviewers(
    oncall: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two on-call principals listed on one key are one reviewer: 2 of them are not met."""
    signers = oncall.root / "keys" / "allowed_signers"
    lines = signers.read_text(encoding="utf-8").splitlines()
    key = next(ln for ln in lines if ln.startswith("lead@test ")).split(maxsplit=1)[1]
    signers.write_text(signers.read_text(encoding="utf-8") + f"oncall2@test {key}\n")
    policy = POLICY + "emergency:\n  principals: [lead@test, oncall2@test]\n  threshold: 2\n"
    (oncall.root / "keys" / "policy.yaml").write_text(policy, encoding="utf-8")
    code, _, err = issue(oncall, capsys, "inference.latency_budget_ms=120")
    assert code == 1 and "needs 2 of the emergency principals" in err, err


def test_a_planted_fifo_is_refused_not_waited_on(oncall: Project) -> None:
    """A FIFO named like an override must not hang every load of the config."""
    folder = oncall.baseline.parent / "emergency"
    folder.mkdir()
    os.mkfifo(folder / "baseline@20260101T000000Z.yaml")
    with pytest.raises(
        EmergencyOverrideError, match=r"emergency override refused: .*not a regular"
    ):
        oncall.load(oncall.baseline)
