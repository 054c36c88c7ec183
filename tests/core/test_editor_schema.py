"""The shipped schema in a real editor backend: yaml-language-server (the one VS Code runs).

Both documented ways of pointing an editor at the schema are exercised: the repository's
``.vscode/settings.json`` mapping and the ``# yaml-language-server: $schema=...`` modeline.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import BROKEN_CONFIG, REPO
from tests.core.lsp import LanguageServer


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A repository laid out like this one: the schemas, the VS Code settings, experiments/."""
    shutil.copytree(REPO / "aiconfig" / "schemas", tmp_path / "aiconfig" / "schemas")
    shutil.copytree(REPO / ".vscode", tmp_path / ".vscode")
    (tmp_path / "experiments").mkdir()
    return tmp_path


def _vscode_settings(root: Path) -> dict[str, object]:
    """The ``yaml.*`` settings of .vscode/settings.json, as VS Code hands them to the server."""
    settings = json.loads((root / ".vscode" / "settings.json").read_text(encoding="utf-8"))
    yaml = {k.removeprefix("yaml."): v for k, v in settings.items() if k.startswith("yaml.")}
    # VS Code resolves a "./" schema path against the workspace folder before sending it.
    yaml["schemas"] = {
        (root / path).resolve().as_uri(): globs for path, globs in yaml["schemas"].items()
    }
    return yaml


def _by_line(diagnostics: list[dict[str, object]]) -> dict[int, str]:
    return {d["range"]["start"]["line"] + 1: str(d["message"]) for d in diagnostics}  # type: ignore[index]


def test_settings_mapping_gives_inline_errors_and_completion(workspace: Path) -> None:
    broken = workspace / "experiments" / "broken.yaml"
    with LanguageServer(workspace, _vscode_settings(workspace)) as server:
        server.open(broken, BROKEN_CONFIG)
        errors = _by_line(server.diagnostics(broken))
        assert errors == {
            5: "Property trainig is not allowed.",
            8: 'Incorrect type. Expected "integer".',
            10: "Value is above the maximum of 1.",
            14: "Value is below the exclusive minimum of 0.",
        }
        # Completion inside training: offers its keys.
        draft = workspace / "experiments" / "draft.yaml"
        server.open(draft, "meta:\n  name: d\n  version: 1\ntraining:\n  \n")
        labels = server.complete(draft, 4, 2)
        assert {"lr", "optimizer", "batch_size", "warmup_steps"} <= set(labels)


def test_modeline_and_fork_files(workspace: Path) -> None:
    fork = workspace / "experiments" / "my-fork.yaml"
    text = (
        "# yaml-language-server: $schema=../aiconfig/schemas/fork.schema.json\n"
        "fork:\n  base: baseline.yaml\n  sha256: " + "a" * 64 + "\n"
        "meta:\n  name: my-fork\n  version: 1\n"
        "overrides:\n"
        "  training.lr: ${oc.env:LR,1e-3}\n"
        "  training.optimzer.lr: 0.1\n"
        "  model.dropout: 1.5\n"
    )
    with LanguageServer(workspace, {"validate": True}) as server:
        server.open(fork, text)
        errors = _by_line(server.diagnostics(fork))
        assert errors == {
            10: "Property training.optimzer.lr is not allowed.",
            11: "Value is above the maximum of 1.",
        }
        good = workspace / "experiments" / "good.yaml"
        server.open(good, text.replace("  training.optimzer.lr: 0.1\n  model.dropout: 1.5\n", ""))
        assert server.quiet(good) == []
