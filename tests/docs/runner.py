"""Run one documentation example in a sandbox, the way the generic runner does.

``tests/docs/test_examples.py`` runs every block with these; a dedicated test (a block marked
``<!-- test: NAME -->``) runs its block with them too, then checks what the generic runner
cannot know (the files a command writes, the exact text it prints).
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

from tests.docs.examples import Example, console_sessions, shell_commands
from tests.docs.setups import SETUPS, Sandbox, make_sandbox


def sandbox_for(root: Path, *setups: str) -> Sandbox:
    """A fresh sandbox under ``root`` with these setup steps of ``tests/docs/setups.py`` run."""
    box = make_sandbox(root)
    for name in setups:
        SETUPS[name](box)
    return box


def _run(
    argv: list[str], box: Sandbox, example: Example, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=box.root,
        env={**box.env, **example.env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=float(example.options.get("timeout", 120)),
        check=False,
    )


_PY_RUNNER = """
import sys, traceback
src = sys.stdin.read()
try:
    exec(compile(src, {name!r}, "exec"), {{"__name__": "__main__"}})
except BaseException as exc:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == {name!r}]
    print(f"RAISED {{type(exc).__name__}} at line {{frames[-1].lineno if frames else '?'}}")
    raise
"""


def _last_statement_line(code: str) -> int:
    return max(node.lineno for node in ast.parse(code).body)


def run_python(example: Example, box: Sandbox, after: str = "") -> subprocess.CompletedProcess[str]:
    """The block in a fresh interpreter; ``after`` (a dedicated test's report over the block's
    names) runs right after it, in the same namespace."""
    code = example.code + after
    runner = _PY_RUNNER.format(name=example.id)
    proc = _run(["python", "-c", runner], box, example, stdin=code)
    expected = example.options.get("raises")
    if expected is None:
        assert proc.returncode == 0, f"{example.id} failed:\n{proc.stdout}{proc.stderr}"
        return proc
    want = f"RAISED {expected} at line {_last_statement_line(code)}"
    assert want in proc.stdout, f"{example.id}: expected {want}, got:\n{proc.stdout}{proc.stderr}"
    return proc


def run_bash(example: Example, box: Sandbox) -> list[subprocess.CompletedProcess[str]]:
    """Each command of the block on its own, with the exit status its comment documents."""
    commands = shell_commands(example.code)
    assert commands, f"{example.id}: no commands"
    done = []
    for cmd in commands:
        proc = _run(["bash", "-c", f"set -euo pipefail\n{cmd.text}"], box, example)
        where = f"{example.id} (+{cmd.line + 1}): {cmd.text}"
        assert proc.returncode == cmd.exit, (
            f"{where}\nexited {proc.returncode}, documented {cmd.exit}:\n{proc.stdout}{proc.stderr}"
        )
        assert "Traceback" not in proc.stderr, f"{where}\n{proc.stderr}"
        done.append(proc)
    return done


def run_console(example: Example, box: Sandbox) -> None:
    """Each ``$ `` command prints exactly the lines below it and exits as ``[exit N]`` says."""
    sessions = console_sessions(example.code)
    assert sessions, f"{example.id}: no '$ ' commands"
    for s in sessions:
        proc = _run(["bash", "-c", f"exec 2>&1\n{s.command}"], box, example)
        got = proc.stdout.splitlines()
        assert got == s.output, (
            f"{example.id}: $ {s.command}\nexpected:\n"
            + "\n".join(s.output)
            + "\ngot:\n"
            + "\n".join(got)
        )
        assert proc.returncode == s.exit, f"{example.id}: $ {s.command} exited {proc.returncode}"


def run_example(example: Example, box: Sandbox) -> None:
    if example.kind == "python":
        run_python(example, box)
    elif example.kind == "bash":
        run_bash(example, box)
    else:
        run_console(example, box)
