"""Setup steps a documentation example can ask for (``<!-- example: setup=NAME -->``).

Each step prepares the sandbox the way the prose around the example says a person would
(a reviewer's key added to ``keys/allowed_signers`` through review, a file to check...). Add
one by writing a function and registering it in :data:`SETUPS`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.docs.examples import REPO, fenced


@dataclass
class Sandbox:
    root: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return Path(self.env["HOME"])


def _trust(box: Sandbox, pub: Path, principal: str) -> None:
    from aiconfig._trust.signing import allowed_signers_line

    line = allowed_signers_line(principal, pub.read_text(encoding="utf-8").strip())
    with (box.root / "keys" / "allowed_signers").open("a", encoding="utf-8") as out:
        out.write(line + "\n")


def trust_alice(box: Sandbox) -> None:
    """The reviewed PR that adds alice's key (made by ``aiconfig keygen`` in the README)."""
    _trust(box, box.home / ".ssh" / "aiconfig_review.pub", "alice@example.com")


def reviewer_key(box: Sandbox) -> None:
    """The reader's own SSH key at ``~/.ssh/id_ed25519``, listed in ``keys/allowed_signers``."""
    from aiconfig._trust.signing import generate_keypair

    key = box.home / ".ssh" / "id_ed25519"
    if not key.exists():
        generate_keypair(key, comment="you@example.com")
        _trust(box, key.with_name("id_ed25519.pub"), "you@example.com")


def from_baseline(box: Sandbox) -> None:
    """Start from the signed baseline alone (the example writes the forks the repo ships)."""
    for path in (box.root / "experiments").iterdir():
        if not path.name.startswith("baseline.yaml"):
            path.unlink()


def _git(box: Sandbox, *args: str) -> None:
    subprocess.run(["git", *args], cwd=box.root, check=True, capture_output=True, env=box.env)


def git_repo(box: Sandbox) -> None:
    """The sandbox as a git repository whose ``origin/main`` is what is there now."""
    if not (box.root / ".git").exists():
        _git(box, "init", "-q", "-b", "main")
    _git(box, "add", "-A")
    _git(box, "commit", "-qm", "configs", "--allow-empty")
    _git(box, "update-ref", "refs/remotes/origin/main", "HEAD")


def git_history(box: Sandbox) -> None:
    """As :func:`git_repo`, tagged v1.2, then a baseline change tagged v1.3 (origin/main)."""

    def git(*args: str) -> None:
        _git(box, *args)

    git_repo(box)
    git("tag", "v1.2")
    base = box.root / "experiments" / "baseline.yaml"
    text = base.read_text(encoding="utf-8")
    base.write_text(text.replace("version: 1\n", "version: 2\n", 1), encoding="utf-8")
    git("commit", "-qam", "baseline v2 (not yet re-signed)")
    git("tag", "v1.3")
    git("update-ref", "refs/remotes/origin/main", "HEAD")


def schemas(box: Sandbox) -> None:
    """The shipped JSON Schemas and VS Code settings where a clone has them, and
    ``check-jsonschema`` (a dev dependency) on the sandbox's PATH."""
    shutil.copytree(REPO / "aiconfig" / "schemas", box.root / "aiconfig" / "schemas")
    shutil.copytree(REPO / ".vscode", box.root / ".vscode")
    shim = box.root / ".bin" / "check-jsonschema"
    shim.write_text(
        f'#!/bin/sh\nexec "{os.path.realpath(sys.executable)}" -m check_jsonschema "$@"\n',
        encoding="utf-8",
    )
    shim.chmod(0o755)


def schema_broken_yaml(box: Sandbox) -> None:
    """docs/editors-and-trackers.md's ``broken.yaml`` as the page shows it: a typo, a wrong
    type, two out of range."""
    doc = REPO / "docs" / "editors-and-trackers.md"
    (box.root / "broken.yaml").write_text(fenced(doc, "yaml", "trainig:"), encoding="utf-8")


def oncall(box: Sandbox) -> None:
    """docs/emergency.md's set-up: the baseline lists the emergency paths its ``meta:`` block
    shows (a reviewed change, so fresh reviewer keys ``~/.ssh/team-{lead,research}`` re-sign
    it) and the on-call key is ``~/.ssh/oncall`` (lead@aiconfig.dev)."""
    from aiconfig._trust.signing import allowed_signers_line, generate_keypair, sign_file

    keys = box.home / ".ssh"
    lines = []
    for who in ("lead", "research"):
        pub = generate_keypair(keys / f"team-{who}", comment=f"{who}@aiconfig.dev")
        lines.append(allowed_signers_line(f"{who}@aiconfig.dev", pub))
    (box.root / "keys" / "allowed_signers").write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.copy(keys / "team-lead", keys / "oncall")
    documented = yaml.safe_load(
        fenced(REPO / "docs" / "emergency.md", "yaml", "on-call may change these")
    )
    listed = "".join(f"    - {path}\n" for path in documented["meta"]["emergency"])
    base = box.root / "experiments" / "baseline.yaml"
    base.write_text(
        base.read_text(encoding="utf-8").replace(
            "  locked:", "  emergency:\n" + listed + "  locked:", 1
        ),
        encoding="utf-8",
    )
    base.with_name("baseline.yaml.sig").unlink()
    sign_file(base, keys / "team-lead")
    sign_file(base, keys / "team-research")


SETUPS: dict[str, Callable[[Sandbox], None]] = {
    "schemas": schemas,
    "schema-broken-yaml": schema_broken_yaml,
    "oncall": oncall,
    "trust-alice": trust_alice,
    "reviewer-key": reviewer_key,
    "from-baseline": from_baseline,
    "git-repo": git_repo,
    "git-history": git_history,
}


def make_sandbox(root: Path) -> Sandbox:
    """A copy of the project's data and a private environment in which examples run."""
    for name in ("experiments", "examples", "keys", "tools"):
        shutil.copytree(REPO / name, root / name)
    home = root / "home"
    (home / ".ssh").mkdir(parents=True)
    bin_dir = root / ".bin"
    bin_dir.mkdir()
    python = os.path.realpath(sys.executable)
    for name, target in (("aiconfig", f'"{python}" -m aiconfig'), ("python", f'"{python}"')):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec {target} "$@"\n', encoding="utf-8")
        script.chmod(0o755)
    shutil.copy(bin_dir / "python", bin_dir / "python3")
    run_dir = root / "run"
    run_dir.mkdir()
    env = {
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "PYTHONPATH": str(REPO),
        "AP_DATA_ROOT": str(root / "state"),
        "AP_RUN_ID": "doc-example",
        "RUN_DIR": str(run_dir),
        "HYPERVISOR_RUN_DIR": str(run_dir),
        "GIT_AUTHOR_NAME": "docs",
        "GIT_AUTHOR_EMAIL": "docs@example.com",
        "GIT_COMMITTER_NAME": "docs",
        "GIT_COMMITTER_EMAIL": "docs@example.com",
        "LANG": "C.UTF-8",
    }
    return Sandbox(root, env)
