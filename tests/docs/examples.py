"""Find the examples in README.md and docs/*.md, and what each one expects.

The convention (see CONTRIBUTING.md, "Documentation examples"):

* Every fenced ``python``, ``bash``/``sh`` and ``console`` block is an example and runs in CI,
  as written, unless the line right above its fence says otherwise in an HTML comment (which
  GitHub does not render)::

      <!-- example: skip="records for ten minutes on a real display" -->
      <!-- example: setup=reviewer-key env="CONC=many" -->
      <!-- example: raises=ValidationError -->

  ``skip="why"``   illustrative only (the reason is required and shown in the test report)
  ``setup=a,b``    run these steps from ``tests/docs/setups.py`` first (keys, files, git...)
  ``env="K=V .."`` extra environment for this block
  ``raises=Name``  a Python block whose last statement raises this exception (the point shown)
  ``timeout=S``    seconds (default 120)

  ``<!-- test: NAME -->`` instead says a dedicated test runs the block (it finds the block by
  NAME and brings fixtures of its own, such as recorded sessions); it is not run twice.
  ``continues``    a Python block that goes on from the previous (run) Python block
                   (both run together, as a reader pastes them one after the other)

* In ``bash`` blocks each command (``\\`` continues a line) runs on its own with
  ``set -euo pipefail``; a command that is documented to fail says so in its comment:
  ``aiconfig check-sidecar ...   # exit 1 with a diagnosis when not ready``.
* In ``console`` blocks the lines after ``$ `` are commands and the lines below each are its
  exact output (stdout and stderr together); ``[exit N]`` may end the expected output.
* All blocks of one file run in order in one sandbox: a copy of ``experiments/``,
  ``examples/``, ``keys/``, ``tools/`` with a private ``HOME``, ``AP_DATA_ROOT`` and
  ``RUN_DIR``, and ``aiconfig`` / ``python`` on ``PATH`` running this checkout.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUNNABLE = {"python": "python", "bash": "bash", "sh": "bash", "console": "console"}

_FENCE = re.compile(
    r"^(?P<indent> *)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```", re.M | re.S
)
_DIRECTIVE = re.compile(r"<!--\s*example:(?P<args>.*?)-->\s*$")
# ``<!-- test: NAME -->``: the block is run by a dedicated test that finds it by NAME (one with
# fixtures of its own, e.g. recorded sessions); it is not run again here.
_DEDICATED = re.compile(r"<!--\s*test:\s*(?P<name>[\w.-]+)\s*-->\s*$")
_EXIT_COMMENT = re.compile(r"#\s*exit (\d+)\b")
KNOWN = {"skip", "setup", "env", "raises", "timeout", "continues"}


@dataclass(frozen=True)
class Example:
    doc: Path
    line: int  # line of the opening fence
    kind: str  # python | bash | console
    code: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{_rel(self.doc)}:{self.line}"

    @property
    def setups(self) -> list[str]:
        return [s for s in self.options.get("setup", "").split(",") if s]

    @property
    def env(self) -> dict[str, str]:
        pairs = shlex.split(self.options.get("env", ""))
        return dict(p.split("=", 1) for p in pairs)


def _rel(doc: Path) -> str:
    return str(doc.relative_to(REPO)) if doc.is_relative_to(REPO) else str(doc)


def _options(text: str, where: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for token in shlex.split(text):
        key, _, value = token.partition("=")
        if key not in KNOWN:
            raise ValueError(f"{where}: unknown example option '{key}' (known: {sorted(KNOWN)})")
        options[key] = value
    if "skip" in options and not options["skip"].strip():
        raise ValueError(f'{where}: skip needs a reason: skip="why"')
    return options


def _dedent(m: re.Match[str]) -> str:
    indent = len(m.group("indent"))
    return "".join(ln[indent:] + "\n" for ln in m.group("body").splitlines())


def examples(doc: Path) -> list[Example]:
    text = doc.read_text(encoding="utf-8")
    found: list[Example] = []
    for m in _FENCE.finditer(text):
        lang = m.group("info").strip().split(" ")[0] if m.group("info").strip() else ""
        if lang not in RUNNABLE:
            continue
        line = text.count("\n", 0, m.start()) + 1
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        d = _DIRECTIVE.search(before)
        where = f"{_rel(doc)}:{line}"
        options = _options(d.group("args"), where) if d else {}
        dedicated = _DEDICATED.search(before)
        if dedicated:
            options["dedicated"] = dedicated.group("name")
        body = _dedent(m).removesuffix("\n")
        if "continues" in options:
            previous = [e for e in found if e.kind == "python" and "skip" not in e.options]
            if not previous:
                raise ValueError(f"{where}: 'continues' but no Python block before it")
            body = previous[-1].code + body
        found.append(Example(doc, line, RUNNABLE[lang], body + "\n", options))
    return found


def all_examples() -> list[Example]:
    return [ex for doc in DOCS for ex in examples(doc)]


def dedicated(doc: Path, name: str) -> Example:
    """The block of ``doc`` marked ``<!-- test: NAME -->`` (the one a dedicated test runs)."""
    found = [e for e in examples(doc) if e.options.get("dedicated") == name]
    assert len(found) == 1, f"{len(found)} blocks of {_rel(doc)} are marked '<!-- test: {name} -->'"
    return found[0]


def fenced(doc: Path, lang: str, needle: str) -> str:
    """The one fenced ``lang`` block of ``doc`` that holds ``needle`` (a block that is not an
    example, such as the YAML or output a command is documented to write)."""
    text = doc.read_text(encoding="utf-8")
    found = [
        _dedent(m)
        for m in _FENCE.finditer(text)
        if m.group("info").strip().split(" ")[0] == lang and needle in m.group("body")
    ]
    assert len(found) == 1, f"{len(found)} {lang} blocks of {_rel(doc)} hold {needle!r}"
    return found[0]


@dataclass(frozen=True)
class Command:
    text: str  # as written (continuation lines included)
    line: int  # offset of its first line in the block
    exit: int  # the status its comment documents (0 unless '# exit N')


def _complete(text: str) -> bool:
    try:
        shlex.split(text, comments=True)
    except ValueError:  # "No closing quotation"
        return False
    return True


def shell_commands(code: str) -> list[Command]:
    """Split a bash block into commands, as bash reads them: a trailing ``\\`` or an open
    quote continues the command on the next line; comment lines are not commands."""
    out: list[Command] = []
    buf: list[str] = []
    start = 0
    for i, raw in enumerate(code.splitlines()):
        if not buf:
            start = i
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
        buf.append(raw)
        text = "\n".join(buf)
        if raw.rstrip().endswith("\\") or not _complete(text):
            continue
        m = _EXIT_COMMENT.search(text)
        out.append(Command(text.strip(), start, int(m.group(1)) if m else 0))
        buf = []
    if buf:
        raise ValueError("a bash example ends inside a continuation or a quoted argument")
    return out


@dataclass(frozen=True)
class Session:
    command: str
    output: list[str]
    exit: int


def console_sessions(code: str) -> list[Session]:
    """``$ cmd`` lines and the exact output under each (``[exit N]`` states the status)."""
    sessions: list[Session] = []
    for raw in code.splitlines():
        if raw.startswith("$ "):
            sessions.append(Session(raw[2:], [], 0))
        elif sessions:
            m = re.fullmatch(r"\[exit (\d+)\]", raw.strip())
            last = sessions[-1]
            if m:
                sessions[-1] = Session(last.command, last.output, int(m.group(1)))
            else:
                last.output.append(raw)
    return sessions
