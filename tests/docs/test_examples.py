"""Every example in README.md and docs/*.md runs as written (convention: tests/docs/examples.py).

A documented API that does not exist, a flag that was renamed or an output that changed fails
here. Blocks marked ``skip`` are illustrative and not run; each must say why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.examples import (
    DOCS,
    REPO,
    Example,
    all_examples,
    console_sessions,
    examples,
    shell_commands,
)
from tests.docs.runner import run_example
from tests.docs.setups import SETUPS, Sandbox, make_sandbox

EXAMPLES = all_examples()
RUN = [e for e in EXAMPLES if "skip" not in e.options and "dedicated" not in e.options]
DEDICATED = [e for e in EXAMPLES if "dedicated" in e.options]
ILLUSTRATIVE = [e for e in EXAMPLES if "skip" in e.options]
_SANDBOXES: dict[Path, Sandbox] = {}


@pytest.fixture
def sandbox(example: Example, tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    """One sandbox per documentation file, shared by its blocks in order."""
    box = _SANDBOXES.get(example.doc)
    if box is None:
        box = make_sandbox(tmp_path_factory.mktemp(example.doc.stem))
        _SANDBOXES[example.doc] = box
    for name in example.setups:
        SETUPS[name](box)
    return box


@pytest.mark.parametrize("example", RUN, ids=[e.id for e in RUN])
def test_documented_example_runs(example: Example, sandbox: Sandbox) -> None:
    run_example(example, sandbox)


@pytest.mark.parametrize("example", ILLUSTRATIVE, ids=[e.id for e in ILLUSTRATIVE])
def test_illustrative_examples_say_why(example: Example) -> None:
    """Not run here (a real display, minutes of recording, this suite itself): say why."""
    assert len(example.options["skip"].split()) >= 3, f"{example.id}: give a real reason"


def test_dedicated_examples_have_their_test() -> None:
    """``<!-- test: NAME -->``: some test under tests/ must name the block it runs.

    One test over all of them (not one per block), so that no block is not a skip."""
    sources = [
        p.read_text(encoding="utf-8")
        for p in (REPO / "tests").rglob("*.py")
        if p.parent.name != "docs"
    ]
    for example in DEDICATED:
        name = example.options["dedicated"]
        assert any(name in text for text in sources), (
            f"{example.id}: no test under tests/ runs '<!-- test: {name} -->'"
        )


def test_every_doc_is_scanned_and_options_are_known() -> None:
    assert REPO / "README.md" in DOCS and len(DOCS) >= 5
    assert len(EXAMPLES) >= 20
    for ex in EXAMPLES:
        for name in ex.setups:
            assert name in SETUPS, f"{ex.id}: unknown setup '{name}'"


def test_conventions_parse(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(
        "```python\nprint(1)\n```\n"
        '<!-- example: skip="needs a GPU" -->\n```bash\nnvidia-smi\n```\n'
        "```yaml\na: 1\n```\n"
        '<!-- example: setup=broken-yaml env="A=1 B=2" raises=KeyError continues -->\n'
        "```python\n{}['x']\n```\n",
        encoding="utf-8",
    )
    from tests.docs.examples import _options

    got = examples(doc)
    assert [e.kind for e in got] == ["python", "bash", "python"]
    assert got[1].options == {"skip": "needs a GPU"}
    assert got[2].setups == ["broken-yaml"] and got[2].env == {"A": "1", "B": "2"}
    assert got[2].code == "print(1)\n{}['x']\n"  # continues the previous Python block
    cmds = shell_commands('# c\nfoo --a \\\n  --b   # exit 1 when x\n\nq "\n  x\n  y"\nbar\n')
    assert [(c.text, c.exit, c.line) for c in cmds] == [
        ("foo --a \\\n  --b   # exit 1 when x", 1, 1),
        ('q "\n  x\n  y"', 0, 4),
        ("bar", 0, 7),
    ]
    (s,) = console_sessions("$ aiconfig x\nerror: y\n[exit 1]\n")
    assert (s.command, s.output, s.exit) == ("aiconfig x", ["error: y"], 1)
    with pytest.raises(ValueError, match="needs a reason"):
        _options('skip=""', "x")
    with pytest.raises(ValueError, match="unknown example option"):
        _options("run=yes", "x")
