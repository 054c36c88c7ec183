"""Secrets planted in the environment never come back out: errors, show, diffs, logs, manifests."""

from __future__ import annotations

import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from aiconfig import AlertConfig, load
from aiconfig._keypath import is_secret_key
from aiconfig.cli import main
from aiconfig.monitoring import AlertManager
from tests.conftest import Writer
from tests.core.test_cli import run_cli

TOKEN = "ghp_" + "Z" * 36  # the shape of a GitHub token
HOOK = "https://hooks.slack.com/services/T000/B000/" + "q" * 24


@pytest.mark.parametrize("var", ["GITHUB_TOKEN", "HARMLESS_LOOKING"])
def test_validate_never_echoes_an_env_value(write_config: Writer, var: str) -> None:
    cfg = write_config(f"meta:\n  name: x\n  version: 1\nmodel:\n  dropout: ${{oc.env:{var}}}\n")
    for extra in ((), ("--json",)):
        proc = run_cli("validate", "--allow-unsigned", *extra, str(cfg), env={var: TOKEN})
        assert proc.returncode == 1
        assert TOKEN not in proc.stdout + proc.stderr
        assert f"env:{var}" in proc.stdout + proc.stderr  # the source is still named
    text = run_cli("validate", "--allow-unsigned", str(cfg), env={var: TOKEN}).stderr
    assert "model.dropout: invalid value" in text and "<not shown: from the environment>" in text


def test_show_resolved_masks_webhooks_and_secret_variables(write_config: Writer) -> None:
    cfg = write_config(
        "meta:\n  name: x\n  version: 1\n"
        "model:\n  name: ${oc.env:SLACK_WEBHOOK}\n"
        "training:\n  dataset:\n    num_workers: ${oc.env:NUM_WORKERS}\n"
        f"monitoring:\n  alert:\n    webhook_url: {HOOK}\n"
    )
    for fmt in ("yaml", "json"):
        proc = run_cli(
            "show", "--resolved", "--allow-unsigned", "--format", fmt, str(cfg),
            env={"SLACK_WEBHOOK": HOOK, "NUM_WORKERS": "3"},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert HOOK not in proc.stdout and "hooks.slack.com" not in proc.stdout
    data = json.loads(proc.stdout)
    assert data["training"]["dataset"]["num_workers"] == 3  # a plain variable is still shown
    assert data["model"]["name"] == "**********"
    assert data["monitoring"]["alert"]["webhook_url"] == "**********"


def test_provenance_never_records_secret_env_values(write_config: Writer) -> None:
    cfg = write_config(
        "meta:\n  name: x\n  version: 1\n"
        "model:\n  name: ${oc.env:AICONFIG_KEY_PASSPHRASE}\n"
        "  checkpoint: ${oc.env:OPENAI_API_KEY}\n"
        "monitoring:\n  alert:\n    webhook_url: ${oc.env:HOOK_URL}\n"
        "training:\n  checkpoint_dir: ${oc.env:SLACK_WEBHOOK}\n"
    )
    env = {
        "AICONFIG_KEY_PASSPHRASE": TOKEN,
        "OPENAI_API_KEY": TOKEN,
        "HOOK_URL": HOOK,
        "SLACK_WEBHOOK": HOOK,
    }
    record = json.dumps(load(cfg, allow_unsigned=True, env=env).provenance.to_dict())
    assert TOKEN not in record and HOOK not in record
    assert record.count("<redacted>") == 4


def test_diff_never_shows_env_values(
    write_config: Writer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_VALUE", TOKEN)
    old = write_config("meta:\n  name: x\n  version: 1\nmodel:\n  name: plain\n")
    new = write_config("meta:\n  name: x\n  version: 2\nmodel:\n  name: ${oc.env:CI_VALUE}\n")
    for fmt in ("text", "markdown", "json"):
        code = main(["diff", str(old), str(new), "--format", fmt])
        out, err = capsys.readouterr()
        assert code == 1 and TOKEN not in out + err
        assert fmt != "json" or "<from env:CI_VALUE>" in out


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("AICONFIG_KEY_PASSPHRASE", True),
        ("SLACK_WEBHOOK", True),
        ("webhook_url", True),
        ("DB_PASS", True),
        ("OPENAI_API_KEY", True),
        ("SSH_KEY", True),
        ("HTTP_AUTH", True),
        ("privateKey", True),
        ("GITHUB_TOKEN", True),
        ("AICONFIG_KEYS", False),  # a directory
        ("keyframe_interval_s", False),
        ("BYPASS_CACHE", False),
        ("author", False),
        ("window_title", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_key(name) is secret


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_alert_logs_never_show_the_webhook_path() -> None:
    dead = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{dead.server_address[1]}/services/T000/B000/SECRETPATH"
    dead.server_close()  # nothing listens: delivery fails and is logged
    seen = _Lines()
    logging.getLogger("aiconfig.alerts").addHandler(seen)
    am = AlertManager({"*": 1.0}, AlertConfig(webhook_url=url))
    am.observe("m", 5.0)
    am.close()
    offline = AlertManager(
        {"*": 1.0},
        AlertConfig(webhook_url="https://hooks.example.com/services/SECRETPATH"),
        environ={"AP_NO_NETWORK": "1"},
    )
    offline.observe("m", 5.0)
    offline.close()
    assert am.webhook_results == ["failed"] and offline.webhook_results == ["refused_offline"]
    logging.getLogger("aiconfig.alerts").removeHandler(seen)
    text = "\n".join(seen.lines)
    assert "webhook" in text and "SECRETPATH" not in text
