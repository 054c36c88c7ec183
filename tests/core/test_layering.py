"""Architecture rules from DESIGN.md, enforced on the source (AST), not by comment."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import aiconfig
from tests.conftest import REPO

CORE = [
    p
    for p in (REPO / "aiconfig").rglob("*.py")
    if not any(part in {"inference", "monitoring", "commands", "harness"} for part in p.parts)
    and p.name not in {"cli.py", "__main__.py"}
]
FORBIDDEN = (
    "capture",
    "aiconfig.inference",
    "aiconfig.monitoring",
    "aiconfig.harness",
    "opentelemetry",
    "torch",
)


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    pkg = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                names.append(".".join([*base, node.module or ""]).rstrip("."))
            else:
                names.append(node.module or "")
    return names


def test_core_imports_nothing_from_jobs() -> None:
    assert len(CORE) >= 8
    offenders = [
        f"{p.relative_to(REPO)} imports {name}"
        for p in CORE
        for name in _imports(p)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    ]
    assert offenders == []


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
