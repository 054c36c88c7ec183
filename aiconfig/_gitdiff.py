"""Pull-request review: diff every config file changed between two git revisions.

``REV`` (and ``REV2``, or else the working tree) are materialised with ``git archive`` into a
temporary directory, so each side is loaded with its own ``keys/`` and its own bases exactly
as they were at that revision. Reported:

* every changed ``*.yaml``/``*.yml`` that is a config (top-level ``meta`` or ``fork``), and any
  config whose ``.sig`` changed (signer changes);
* every fork whose base changed, even when the fork file itself did not (it is now stale);
* an added fork is compared with its base (what the experiment changes); an added baseline is
  summarised; a removed file is listed.
"""

from __future__ import annotations

import io
import os
import posixpath
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from ._diff import ConfigDiff, Side, diff_sides, review_load
from ._errors import ConfigFileError, Problem
from ._fork import FORK_KEY

__all__ = ["git_diffs"]

_CONFIG_SUFFIXES = (".yaml", ".yml")


def _run_git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, check=False, timeout=120
        )
    except FileNotFoundError:
        raise ConfigFileError("git is not installed", hint="install git") from None


def _git(repo: Path, *args: str, binary: bool = False) -> bytes:
    proc = _run_git(repo, *args)
    if proc.returncode != 0:
        reason = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ConfigFileError(
            f"git {args[0]} failed: {reason[-1] if reason else 'exit ' + str(proc.returncode)}",
            file=str(repo),
            hint="check the repository and the revisions",
        )
    return proc.stdout


def _toplevel(repo: Path) -> Path:
    proc = _run_git(repo, "rev-parse", "--show-toplevel")
    if proc.returncode != 0:
        raise ConfigFileError(
            "not inside a git repository",
            file=str(repo.resolve()),
            hint="run it from a clone, or name the repository with --repo DIR",
        )
    return Path(proc.stdout.decode().strip())


def _check_revisions(top: Path, revs: Sequence[str]) -> None:
    """Every revision that does not name a commit, named in one problem each."""
    problems = [
        Problem(
            f"unknown revision '{rev}': no branch, tag or commit of that name",
            file=str(top),
            hint="list them with git branch -a / git tag; fetch a remote one first "
            "(git fetch origin)",
        )
        for rev in revs
        if _run_git(top, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").returncode
    ]
    if problems:
        raise ConfigFileError(problems)


def _names(raw: bytes) -> list[str]:
    return [n for n in raw.decode("utf-8", "surrogateescape").split("\0") if n]


def _extract(repo: Path, rev: str, dest: Path) -> None:
    data = _git(repo, "archive", "--format=tar", rev)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")


def _read_doc(path: Path) -> dict[str, object] | None:
    """The parsed top level of a config file, or None when it is not a config."""
    from ._yamlsafe import parse_yaml

    try:
        data = parse_yaml(path.read_bytes(), str(path)).data
    except Exception:  # noqa: BLE001 - not a readable config: not ours to report
        return None
    if isinstance(data, dict) and ("meta" in data or FORK_KEY in data):
        return data
    return None


def _fork_base(rel: str, doc: Mapping[str, object]) -> str | None:
    fork = doc.get(FORK_KEY)
    if not isinstance(fork, dict) or not isinstance(fork.get("base"), str):
        return None
    return posixpath.normpath(posixpath.join(posixpath.dirname(rel), fork["base"]))


def git_diffs(
    rev: str,
    rev2: str | None = None,
    *,
    repo: str | os.PathLike[str] = ".",
    float_tol: float | None = None,
    env: Mapping[str, str] | None = None,
) -> list[ConfigDiff]:
    """One entry per config file changed between ``rev`` and ``rev2`` (default: working tree)."""
    top = _toplevel(Path(repo))
    _check_revisions(top, [r for r in (rev, rev2) if r is not None])
    diff_args = ["diff", "--name-only", "--no-renames", "-z", rev]
    changed = set(_names(_git(top, *diff_args, *([rev2] if rev2 else []))))
    if rev2 is None:
        changed |= set(_names(_git(top, "ls-files", "--others", "--exclude-standard", "-z")))
    with tempfile.TemporaryDirectory(prefix="aiconfig-diff-") as tmp:
        old_root = Path(tmp) / "old"
        _extract(top, rev, old_root)
        if rev2 is not None:
            new_root = Path(tmp) / "new"
            _extract(top, rev2, new_root)
            new_files = _names(_git(top, "ls-tree", "-r", "-z", "--name-only", rev2))
        else:
            new_root = top
            tracked = _names(_git(top, "ls-files", "-z"))
            untracked = _names(_git(top, "ls-files", "--others", "--exclude-standard", "-z"))
            new_files = [f for f in tracked + untracked if (top / f).is_file()]
        return _report(changed, new_files, old_root, new_root, rev, rev2, float_tol, env)


def _report(
    changed: set[str],
    new_files: list[str],
    old_root: Path,
    new_root: Path,
    rev: str,
    rev2: str | None,
    float_tol: float | None,
    env: Mapping[str, str] | None,
) -> list[ConfigDiff]:
    candidates: set[str] = set()
    for changed_name in changed:
        name = changed_name.removesuffix(".sig")
        if name.endswith(_CONFIG_SUFFIXES):
            candidates.add(name)
    old_docs = {n: _read_doc(old_root / n) for n in candidates if (old_root / n).is_file()}
    new_docs: dict[str, dict[str, object] | None] = {
        n: _read_doc(new_root / n) for n in new_files if n.endswith(_CONFIG_SUFFIXES)
    }
    configs = {n for n in candidates if old_docs.get(n) is not None or new_docs.get(n)}
    changed_bytes = {n for n in configs if n in changed}  # content changed, not just the .sig
    # forks whose base changed (transitively), even when the fork file itself did not
    base_changed: dict[str, str] = {}
    grew = True
    while grew:
        grew = False
        for name, doc in new_docs.items():
            if doc is None or name in configs or name in base_changed:
                continue
            base = _fork_base(name, doc)
            if base is not None and (base in changed_bytes or base in base_changed):
                base_changed[name] = base
                grew = True
    old_label, new_label = f"{rev}:", f"{rev2}:" if rev2 else ""

    def side(root: Path, name: str, label: str) -> Side:
        loaded = review_load(root / name, env=env)
        prefix = str(root) + os.sep

        def clean(text: str | None) -> str | None:
            return text.replace(prefix, label) if text else text

        return replace(
            loaded,
            file=label + name,
            error=clean(loaded.error),
            trust_problem=clean(loaded.trust_problem),
        )

    out: list[ConfigDiff] = []
    for name in sorted(configs | set(base_changed)):
        in_old = (old_root / name).is_file() and old_docs.get(name, _read_doc(old_root / name))
        in_new = (new_root / name).is_file() and new_docs.get(name) is not None
        if in_old and in_new:
            status = "base-changed" if name in base_changed else "modified"
            note = f"its base {base_changed[name]} changed" if name in base_changed else ""
            entry = diff_sides(
                side(old_root, name, old_label),
                side(new_root, name, new_label),
                float_tol=float_tol,
                label=name,
                status=status,
                note=note,
            )
            if name in base_changed and entry.status == "error":
                entry = replace(entry, status="base-changed")
            out.append(entry)
        elif in_new:
            new_side = side(new_root, name, new_label)
            doc = new_docs.get(name) or {}
            base = _fork_base(name, doc)
            if base is not None and new_side.error is None:
                entry = diff_sides(
                    side(new_root, base, new_label),
                    new_side,
                    float_tol=float_tol,
                    label=name,
                    status="added",
                    note=f"new fork of {base}; compared with its base",
                )
                out.append(replace(entry, status="added") if entry.status != "error" else entry)
            else:
                out.append(
                    diff_sides(None, new_side, label=name, status="added", note="new config")
                )
        elif in_old:
            out.append(
                ConfigDiff(side(old_root, name, old_label), None, label=name, status="removed")
            )
    return out
