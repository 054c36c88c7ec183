"""The public face of ``capture`` (httpx style): exactly ``__all__``, each name resolves, every
one is defined in a private module, and ``import capture`` loads none of the heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest

import capture
from tests.conftest import REPO

HEAVY = ("numpy", "av", "pyarrow", "mss", "cv2", "pynput", "sounddevice", "pydantic")


def _public(module: types.ModuleType) -> set[str]:
    names = set(dir(module)) | set(vars(module))
    return {
        n
        for n in names
        if not n.startswith("_") and not isinstance(getattr(module, n, None), types.ModuleType)
    }


def test_public_names_are_all() -> None:
    assert len(capture.__all__) == len(set(capture.__all__))
    for name in capture.__all__:
        assert getattr(capture, name) is not None, name
    assert _public(capture) == set(capture.__all__)
    assert sorted(dir(capture)) == sorted(capture.__all__)


def test_names_come_from_private_modules() -> None:
    for name in capture.__all__:
        home = getattr(capture, name).__module__
        assert home.startswith("capture._"), f"{name} is defined in {home}"


def test_modules_are_private() -> None:
    """Only the platform seam (windows.py, until it moves under capture/platforms/) is public."""
    public = sorted(
        p.name for p in (REPO / "capture").iterdir() if p.suffix == ".py" and p.name[0] != "_"
    )
    assert set(public) <= {"windows.py"}


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'run_capturee'"):
        _ = capture.run_capturee


def test_import_is_lazy() -> None:
    code = (
        "import json, sys\nimport capture\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert json.loads(out.stdout) == []
