"""The public face (httpx style): the public names are exactly ``__all__``, each resolves, and
importing the package costs nothing until a name is used."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import types

import pytest

import aiconfig
import capture
from tests.conftest import REPO


def _public(module: types.ModuleType) -> set[str]:
    """What ``from module import *`` users and IDEs see, less subpackages."""
    names = set(dir(module)) | set(vars(module))
    return {
        n
        for n in names
        if (not n.startswith("_") or n == "__version__")
        and not isinstance(getattr(module, n, None), types.ModuleType)
    }


@pytest.mark.parametrize("module", [aiconfig], ids=lambda m: m.__name__)
def test_public_names_are_all(module: types.ModuleType) -> None:
    assert len(module.__all__) == len(set(module.__all__)), "duplicates in __all__"
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    assert _public(module) == set(module.__all__)


@pytest.mark.parametrize("module", [aiconfig, capture], ids=lambda m: m.__name__)
def test_unknown_name_is_an_attribute_error(module: types.ModuleType) -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = module.nope


def test_names_come_from_private_modules() -> None:
    """Everything exported is defined in an underscore module, so nothing private leaks."""
    for name in aiconfig.__all__:
        if name == "__version__":
            continue
        obj = getattr(aiconfig, name)
        home = getattr(obj, "__module__", "")
        assert home.startswith("aiconfig._"), f"{name} is defined in {home}"


def test_core_modules_are_private() -> None:
    public = [
        p.name
        for p in (REPO / "aiconfig").iterdir()
        if not p.name.startswith("_")
        and p.name
        not in {"cli.py", "commands", "harness", "inference", "monitoring", "sessions", "py.typed"}
        and p.name != "schemas"  # data, not code: the shipped JSON Schemas editors point at
    ]
    assert public == []


def test_readme_import_works_in_a_fresh_process() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from aiconfig import load, AIConfig; print(load.__module__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    assert out.stdout.strip() == "aiconfig._loader"


def test_import_is_lazy() -> None:
    """``import aiconfig`` loads no pydantic/yaml; touching an error class still loads none."""
    code = (
        "import json, sys\n"
        "import aiconfig\n"
        "first = sorted(m for m in ('pydantic', 'yaml', 'omegaconf', 'cryptography') "
        "if m in sys.modules)\n"
        "aiconfig.ConfigFileError\n"
        "second = sorted(m for m in ('pydantic', 'yaml') if m in sys.modules)\n"
        "aiconfig.AIConfig\n"
        "print(json.dumps([first, second, 'pydantic' in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert json.loads(out.stdout) == [[], [], True]


def test_every_name_resolves_in_a_fresh_process() -> None:
    code = "import aiconfig\nfor n in aiconfig.__all__: getattr(aiconfig, n)\nprint('ok')"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "ok"
    assert importlib.import_module("aiconfig").__all__ == aiconfig.__all__
