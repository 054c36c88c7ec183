"""Start-up cost and public names of the core (the layer table is tests/test_layering.py)."""

from __future__ import annotations

import subprocess
import sys

import aiconfig
from tests.conftest import REPO


def test_validate_path_imports_no_heavy_modules() -> None:
    code = (
        "import sys\nfrom aiconfig.cli import main\n"
        "rc = main(['validate', '--allow-unsigned', 'experiments/baseline.yaml'])\n"
        "heavy = [m for m in ('deepdiff', 'torch', 'opentelemetry.sdk', 'av', 'mss', 'capture',"
        " 'cryptography', 'hydra') if m in sys.modules]\n"
        "print(rc, heavy)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert proc.stdout.strip().splitlines()[-1] == "0 []"


def test_public_names_match_all() -> None:
    public = {n for n in dir(aiconfig) if not n.startswith("_")} - {"annotations"}
    modules = {
        "errors",
        "schema",
        "yamlsafe",
        "interpolate",
        "explain",
        "provenance",
        "loader",
        "trust",
        "cli",
        "commands",
        "inference",
        "monitoring",
        "harness",
        "sessions",
        "fork",
        "diff",
        "lineage",
        "gitdiff",
        "overrides",
        "sweep",
        "diff_render",
    }
    assert public - modules == set(aiconfig.__all__) - {"__version__"}
    for name in aiconfig.__all__:
        assert hasattr(aiconfig, name)
