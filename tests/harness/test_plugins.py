"""Entry-point plugins: a real tiny distribution on sys.path, loaded only when pinned."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from aiconfig import PluginRefusedError
from aiconfig.harness import offline
from aiconfig.harness.plugins import (
    GROUP,
    PluginPolicy,
    Refusal,
    load_plugins,
    lock_entries,
)

from .util import install_dist

PLUGIN_SRC = '''
class NullStream:
    """A capture stream plugin that produces nothing."""
    kind = "stream"

class Uploader:
    needs_network = True
'''


def install_plugin(site: Path, version: str = "1.0.0") -> Path:
    """Install ``hello-plugin`` as pip would: package files plus a dist-info with a RECORD."""
    install_dist(
        site,
        "hello-plugin",
        version,
        {"hello_plugin/__init__.py": PLUGIN_SRC},
        {"null_stream": "hello_plugin:NullStream", "uploader": "hello_plugin:Uploader"},
        group=GROUP,
    )
    return site / "hello_plugin"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    import sys

    root = tmp_path / "site"
    install_plugin(root)
    monkeypatch.syspath_prepend(str(root))
    yield root
    sys.modules.pop("hello_plugin", None)


def _policy(
    tmp_path: Path, lock: Mapping[str, Any] | None, allow: list[str] | None
) -> PluginPolicy:
    env = {}
    if lock is not None:
        (tmp_path / "plugins.lock").write_text(json.dumps(lock))
        env["AP_PLUGIN_LOCK"] = str(tmp_path / "plugins.lock")
    if allow is not None:
        (tmp_path / "allow.txt").write_text("# allowed plugins\n" + "\n".join(allow) + "\n")
        env["AP_PLUGINS_ALLOWLIST"] = str(tmp_path / "allow.txt")
    return PluginPolicy.from_env(env)


def _reasons(refused: list[Refusal]) -> dict[str, str]:
    return {r.name: r.reason for r in refused}


def test_developer_mode_loads_everything(site: Path) -> None:
    result = load_plugins(policy=PluginPolicy())
    assert set(result.loaded) >= {"null_stream", "uploader"}
    assert result.loaded["null_stream"].kind == "stream"


def test_pinned_and_allowlisted_plugin_loads(site: Path, tmp_path: Path) -> None:
    lock = lock_entries(["hello-plugin"])
    policy = _policy(tmp_path, lock, ["null_stream"])
    result = load_plugins(policy=policy, names=["null_stream", "uploader"])
    assert list(result.loaded) == ["null_stream"]
    assert "not in the allowlist" in _reasons(result.refused)["uploader"]


def test_lock_alone_allowlists_its_distributions(site: Path, tmp_path: Path) -> None:
    result = load_plugins(
        policy=_policy(tmp_path, lock_entries(["hello-plugin"]), None), names=["null_stream"]
    )
    assert list(result.loaded) == ["null_stream"]


def test_changed_files_are_refused_before_import(site: Path, tmp_path: Path) -> None:
    import sys

    lock = lock_entries(["hello-plugin"])
    (site / "hello_plugin" / "__init__.py").write_text(PLUGIN_SRC + "\nimport os  # injected\n")
    result = load_plugins(policy=_policy(tmp_path, lock, ["null_stream"]), names=["null_stream"])
    assert not result.loaded
    assert "its files changed" in _reasons(result.refused)["null_stream"]
    assert "hello_plugin" not in sys.modules  # never imported


def test_version_and_pin_problems(site: Path, tmp_path: Path) -> None:
    lock = lock_entries(["hello-plugin"])
    lock["plugins"]["hello-plugin"]["version"] = "0.9.0"
    r = load_plugins(policy=_policy(tmp_path, lock, ["null_stream"]), names=["null_stream"])
    assert "lock pins 0.9.0" in _reasons(r.refused)["null_stream"]

    r = load_plugins(policy=_policy(tmp_path, None, ["null_stream"]), names=["null_stream"])
    assert "AP_PLUGIN_LOCK is not set" in _reasons(r.refused)["null_stream"]

    other = {"schema_version": "aiconfig.plugin-lock/1", "plugins": {}}
    r = load_plugins(policy=_policy(tmp_path, other, ["null_stream"]), names=["null_stream"])
    assert "not in AP_PLUGIN_LOCK" in _reasons(r.refused)["null_stream"]

    with pytest.raises(PluginRefusedError, match="null_stream"):
        load_plugins(
            policy=_policy(tmp_path, other, ["null_stream"]), names=["null_stream"], strict=True
        )


def test_network_plugin_refused_offline(site: Path, tmp_path: Path) -> None:
    policy = _policy(tmp_path, lock_entries(["hello-plugin"]), ["uploader", "null_stream"])
    with offline():
        r = load_plugins(policy=policy)
    assert "null_stream" in r.loaded
    assert "offline mode" in _reasons(r.refused)["uploader"]


def test_malformed_lock_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PluginRefusedError, match="64-hex sha256"):
        _policy(
            tmp_path,
            {
                "schema_version": "aiconfig.plugin-lock/1",
                "plugins": {"x": {"version": "1", "sha256": "short"}},
            },
            None,
        )
    with pytest.raises(PluginRefusedError, match="not a plugin lock"):
        _policy(tmp_path, {"plugins": {}}, None)


def test_missing_requested_plugin(site: Path) -> None:
    r = load_plugins(policy=PluginPolicy(), names=["nope"])
    assert "no such plugin" in _reasons(r.refused)["nope"]


def test_cli_lock_then_list(site: Path, tmp_path: Path) -> None:
    from .util import REPO, child_env, pin_plugins, run_cli

    env = child_env(tmp_path, PYTHONPATH=f"{REPO}:{site}")
    pin_plugins(tmp_path, env, "hello-plugin", ["null_stream"])
    listing = run_cli(["plugins", "list", "--json"], env=env, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    rows = {r["name"]: r for r in json.loads(listing.stdout)}
    assert rows["null_stream"]["allowed"] is True
    assert rows["null_stream"]["version"] == "1.0.0"
    assert rows["uploader"]["allowed"] is False
    missing = run_cli(["plugins", "lock", "no-such-dist"], env=env, cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr == "error: distribution 'no-such-dist' is not installed\n"
