"""An explicit env mapping that no real process could have is refused, and the process
environment is left exactly as it was (found by the env_interpolation fuzz target)."""

from __future__ import annotations

import os

import pytest

from aiconfig import InterpolationError
from aiconfig._loader import load_unverified_bytes

DOC = b"meta: {name: n, version: 1}\nmodel: {name: \"run-${oc.env:V}-${oc.env:W,'a b'}\"}\n"


@pytest.mark.parametrize(
    "env", [{"V": "a\x00b"}, {"V": "a", "X\x00": "b"}, {"": "a", "V": "a"}, {"A=B": "1", "V": "a"}]
)
def test_impossible_environment_is_refused_and_environ_kept(env: dict[str, str]) -> None:
    before = dict(os.environ)
    with pytest.raises(InterpolationError, match="cannot be set"):
        load_unverified_bytes(DOC, "f.yaml", env=env)
    assert dict(os.environ) == before


def test_explicit_environment_still_resolves() -> None:
    before = dict(os.environ)
    cfg = load_unverified_bytes(DOC, "f.yaml", env={"V": "x"})
    assert cfg.model.name == "run-x-a b"
    assert dict(os.environ) == before
