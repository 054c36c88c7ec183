"""The one layering contract, read from the source (AST) of every module in aiconfig/ and capture/.

::

    aiconfig CLI (aiconfig.cli, aiconfig.commands, python -m aiconfig)    python -m capture
                  \\______________ may import anything below ______________/
    inference          monitoring          capture        (independent of each other)
                  \\______________ harness ______________/
                                 sessions  (aiconfig.sessions: the session format and catalog)
                                 core  (aiconfig, aiconfig._*: schema, loading, trust, ...)

A module may import its own layer and the layers its row allows; nothing imports a CLI but
that CLI itself. Every import counts (module level, inside functions, under TYPE_CHECKING), so
a lazy import does not hide a dependency. And no import cycle anywhere: imports that run (all
but TYPE_CHECKING-only ones) form no cycle between modules.

``python tests/test_layering.py ROOT`` prints the violations of another checkout (e.g. an old
commit in a temporary worktree) and exits 1 if there are any.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("aiconfig", "capture")

# layer -> the layers it may import (its own always included).
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset({"core"}),
    "sessions": frozenset({"core", "sessions"}),
    "harness": frozenset({"core", "sessions", "harness"}),
    "inference": frozenset({"core", "sessions", "harness", "inference"}),
    "monitoring": frozenset({"core", "sessions", "harness", "monitoring"}),
    "capture": frozenset({"core", "sessions", "harness", "capture"}),
    "capture-cli": frozenset({"core", "sessions", "harness", "capture", "capture-cli"}),
    "aiconfig-cli": frozenset(
        {"core", "sessions", "harness", "inference", "monitoring", "capture", "aiconfig-cli"}
    ),
}
# Third-party packages a layer must not import (the SDK rule is tests/monitoring's).
FORBIDDEN_EXTERNAL: dict[str, tuple[str, ...]] = {
    "core": ("opentelemetry", "torch", "httpx", "av", "mss", "pynput", "sounddevice", "cv2"),
    # Sessions read videos (PyAV) and tables (pyarrow, DuckDB) lazily; never the recorder's.
    "sessions": ("opentelemetry", "httpx", "mss", "pynput", "sounddevice", "cv2"),
    "harness": ("opentelemetry.sdk", "torch", "httpx", "mss", "pynput", "sounddevice"),
}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "capture":
        return "capture-cli" if parts[1:] == ["__main__"] else "capture"
    sub = parts[1] if len(parts) > 1 else ""
    if sub in ("cli", "commands", "__main__"):
        return "aiconfig-cli"
    if sub in ("harness", "inference", "monitoring", "sessions"):
        return sub
    return "core"


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (or external package name)
    line: int
    runtime: bool  # False under ``if TYPE_CHECKING:``


def _modules(root: Path) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                for sub in ast.walk(child):
                    if hasattr(sub, "lineno"):
                        lines.add(sub.lineno)
    return lines


def imports(root: Path) -> tuple[dict[str, Path], list[Import]]:
    """Every import of every module under ``root``, resolved to the module it loads."""
    modules = _modules(root)
    found: list[Import] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        typing_only = _type_checking_lines(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    stem = ".".join([*base, node.module] if node.module else base)
                else:
                    stem = node.module or ""
                # ``from pkg import sub`` loads pkg.sub when that is a module of the tree.
                subs = [f"{stem}.{a.name}" for a in node.names if f"{stem}.{a.name}" in modules]
                targets = subs if len(subs) == len(node.names) else [stem, *subs]
            for raw in targets:
                target = raw
                if target.split(".")[0] in PACKAGES:
                    while target not in modules and "." in target:
                        target = target.rpartition(".")[0]  # ``import a.b.C``: module a.b
                found.append(Import(name, target, node.lineno, node.lineno not in typing_only))
    return modules, found


def layer_violations(root: Path) -> list[str]:
    modules, found = imports(root)
    problems = []
    for imp in found:
        src = layer_of(imp.source)
        where = f"{modules[imp.source].relative_to(root)}:{imp.line}"
        if imp.target.split(".")[0] in PACKAGES:
            dst = layer_of(imp.target)
            if dst not in ALLOWED[src]:
                problems.append(f"{where}: {src} imports {dst} ({imp.target})")
        else:
            for banned in FORBIDDEN_EXTERNAL.get(src, ()):
                if imp.target == banned or imp.target.startswith(banned + "."):
                    problems.append(f"{where}: {src} imports {imp.target}")
    return sorted(set(problems))


def cycles(root: Path) -> list[list[str]]:
    """The import cycles (strongly connected components of more than one module, or a module
    importing itself) among imports that run."""
    _, found = imports(root)
    graph: dict[str, set[str]] = {}
    for imp in found:
        if imp.runtime and imp.target.split(".")[0] in PACKAGES and imp.target != imp.source:
            graph.setdefault(imp.source, set()).add(imp.target)
    # Tarjan's algorithm, iterative (the graph has a few hundred nodes).
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return sorted(out)


def _cycle_path(root: Path, component: list[str]) -> str:
    """One concrete loop through ``component``, for the failure message."""
    _, found = imports(root)
    members = set(component)
    edges: dict[str, list[str]] = {}
    for imp in found:
        if imp.runtime and imp.source in members and imp.target in members:
            edges.setdefault(imp.source, []).append(imp.target)
    path = [component[0]]
    while True:
        nxt = sorted(edges.get(path[-1], []))[0]
        if nxt in path:
            return " -> ".join([*path[path.index(nxt) :], nxt])
        path.append(nxt)


# -- the contract -----------------------------------------------------------------------------


def test_the_table_covers_every_module() -> None:
    modules, _ = imports(REPO)
    layers = {layer_of(m) for m in modules}
    assert layers == set(ALLOWED), layers
    assert layer_of("aiconfig") == "core" and layer_of("aiconfig._network") == "core"
    assert layer_of("capture.__main__") == "capture-cli" and layer_of("aiconfig.cli") == (
        "aiconfig-cli"
    )


def test_the_reader_sees_real_imports() -> None:
    """The AST reader finds what the modules are known to import (guards the test itself)."""
    _, found = imports(REPO)
    pairs = {(i.source, i.target) for i in found}
    assert ("aiconfig.monitoring._setup", "aiconfig._network") in pairs
    assert ("capture.__main__", "aiconfig._guard") in pairs
    assert ("aiconfig.commands.capture", "capture._cli") in pairs  # lazy, inside run()
    assert any(s.startswith("aiconfig.harness") and t == "aiconfig._errors" for s, t in pairs)


def test_every_import_follows_the_layer_table() -> None:
    assert layer_violations(REPO) == []


def test_no_import_cycles() -> None:
    found = cycles(REPO)
    assert [_cycle_path(REPO, c) for c in found] == []


def test_the_contract_catches_a_leak(tmp_path: Path) -> None:
    """Each kind of leak is reported: upward, sideways, into a CLI, a cycle."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("", encoding="utf-8")
    for sub in ("harness", "inference", "monitoring", "commands"):
        (tmp_path / "aiconfig" / sub).mkdir()
        (tmp_path / "aiconfig" / sub / "__init__.py").write_text("", encoding="utf-8")
    files = {
        "aiconfig/_schema.py": "from . import _provenance\nfrom .harness import x\n",
        "aiconfig/_provenance.py": "import torch\n\ndef f():\n    from ._schema import AIConfig\n",
        "aiconfig/monitoring/_alerts.py": "from aiconfig.inference.offline import x\n",
        "aiconfig/inference/offline.py": "",
        "aiconfig/cli.py": "",
        "capture/__main__.py": "from aiconfig.cli import guarded\n",
        "capture/_job.py": "import aiconfig.commands\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).write_text(text, encoding="utf-8")
    assert layer_violations(tmp_path) == [
        "aiconfig/_provenance.py:1: core imports torch",
        "aiconfig/_schema.py:2: core imports harness (aiconfig.harness)",
        "aiconfig/monitoring/_alerts.py:1: monitoring imports inference "
        "(aiconfig.inference.offline)",
        "capture/__main__.py:1: capture-cli imports aiconfig-cli (aiconfig.cli)",
        "capture/_job.py:1: capture imports aiconfig-cli (aiconfig.commands)",
    ]
    assert cycles(tmp_path) == [["aiconfig._provenance", "aiconfig._schema"]]


if __name__ == "__main__":
    root = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else REPO
    report = layer_violations(root) + [
        "import cycle: " + _cycle_path(root, c) for c in cycles(root)
    ]
    print("\n".join(report) or "no violations")
    raise SystemExit(1 if report else 0)
