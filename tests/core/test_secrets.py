"""Secrets are decided by the schema (a ``SecretStr`` field or an explicit marker), never by a
substring of the key's name: ``inference.vllm.max_tokens`` is an int like any other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel, Field, SecretStr

from aiconfig import load
from aiconfig._schema import is_secret_path
from aiconfig.cli import main
from tests.conftest import MINIMAL, Writer


class _Marked(BaseModel):
    password_hint: str = ""  # a "secret-looking" name that is not a secret
    pin: int = Field(default=0, json_schema_extra={"secret": True})
    token: SecretStr | None = None


class _Outer(BaseModel):
    inner: _Marked = Field(default_factory=_Marked)


@pytest.mark.parametrize(
    ("path", "secret"),
    [
        (("inference", "vllm", "api_key"), True),
        (("monitoring", "otlp_token"), True),
        (("monitoring", "alert", "webhook_url"), True),  # marked: json_schema_extra secret
        (("inference", "vllm", "max_tokens"), False),
        (("inference", "vllm"), False),
        (("monitoring", "otlp_endpoint"), False),
        (("monitoring", "resource_attributes", "api_token"), False),  # a free-form map value
        (("training", "no_such_key"), False),
    ],
)
def test_secret_paths_follow_the_schema(path: tuple[str, ...], secret: bool) -> None:
    assert is_secret_path(path) is secret


def test_explicit_marker_and_secret_types() -> None:
    assert is_secret_path(("inner", "pin"), _Outer)
    assert is_secret_path(("inner", "token"), _Outer)
    assert not is_secret_path(("inner", "password_hint"), _Outer)


def test_show_prints_max_tokens_and_masks_the_api_key(
    write_config: Writer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = write_config(
        MINIMAL + "inference:\n  vllm:\n    max_tokens: 4096\n    api_key: sk-live-123\n"
    )
    for extra in ([], ["--resolved"]):
        rc = main(["show", str(cfg), "--allow-unsigned", "--format", "json",
                   "--data-root", str(tmp_path / "dr"), *extra])  # fmt: skip
        assert rc == 0
        data = json.loads(capsys.readouterr().out)
        assert data["inference"]["vllm"]["max_tokens"] == 4096
        assert data["inference"]["vllm"]["api_key"] == "**********"


def test_env_value_redacted_only_where_it_feeds_a_secret(write_config: Writer) -> None:
    cfg = write_config(
        MINIMAL + "model:\n  name: ${oc.env:GITHUB_TOKEN}\n"
        "inference:\n  vllm:\n    max_tokens: ${oc.env:ANSWER_LEN}\n"
        "    api_key: ${oc.env:PLAIN_NAME}\n"
    )
    env = {"ANSWER_LEN": "4096", "PLAIN_NAME": "sk-live-1", "GITHUB_TOKEN": "ghp_1"}
    loaded = load(cfg, allow_unsigned=True, record=False, env=env)
    assert loaded.inference.vllm.max_tokens == 4096
    env_vars = loaded.provenance.to_dict()["env_vars"]
    # by the schema (api_key is a SecretStr) and by the variable's own name (no schema there)
    assert env_vars == {
        "ANSWER_LEN": "4096",
        "PLAIN_NAME": "<redacted>",
        "GITHUB_TOKEN": "<redacted>",
    }
