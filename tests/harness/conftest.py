from __future__ import annotations

from pathlib import Path

import pytest

from .sessions import make_session


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """A data root holding two small real sessions (one with audio + webcam)."""
    root = tmp_path / "data"
    make_session(root, "session_20261121_100000", seconds=2.0, inputs=40)
    make_session(
        root, "session_20261121_110000", seconds=1.0, pad_every=10, audio=True, webcam=True, seed=3
    )
    return root
