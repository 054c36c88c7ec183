"""Pull-request review: diff every config file changed between two git revisions.

``REV`` (and ``REV2``, or else the working tree) are materialised into a temporary directory
from git's object store (``ls-tree`` + ``cat-file``: no filters, no checkout, only the files a
review reads: ``*.yaml``, ``*.yml``, ``*.sig`` and the trust store). Reported:

* every changed ``*.yaml``/``*.yml`` that is a config (top-level ``meta`` or ``fork``), and any
  config whose ``.sig`` changed (signer changes);
* every fork whose base changed, even when the fork file itself did not (it is now stale);
* an added fork is compared with its base (what the experiment changes); an added baseline is
  summarised; a removed file is listed;
* every change under a ``keys/`` directory, first and prominently.

The pull request is not trusted: **both revisions are verified against the trust store of the
base revision** ``REV`` (or ``--keys``), so a branch that rewrites ``keys/allowed_signers`` to
trust its own key does not make its own signatures count. Review never reads the environment:
``${oc.env:VAR,default}`` shows its default and a variable without one is shown as the
template text, so a CI job's secrets never reach the comment. Every git call disables the
repository's own ``core.fsmonitor`` and hooks: the repository under review may be hostile.
"""

from __future__ import annotations

import os
import posixpath
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ._diff import ConfigDiff, Side, diff_sides, review_load
from ._errors import ConfigFileError, Problem
from ._fork import FORK_KEY
from ._platform_io import open_nofollow

__all__ = ["git_diffs"]

_CONFIG_SUFFIXES = (".yaml", ".yml")
_REVIEW_SUFFIXES = (*_CONFIG_SUFFIXES, ".sig")
_KEYS_DIR = "keys"
_MAX_BLOB = 4 << 20  # larger files are not configs (configs are capped at 1 MiB)
# Settings of the repository under review that would run its commands: turned off on every call.
SAFE_GIT = (
    "-c",
    "core.fsmonitor=",
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.pager=cat",
    "-c",
    "diff.external=",
    "-c",
    "protocol.allow=never",
)


def _run_git(
    repo: Path, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", *SAFE_GIT, "-C", str(repo), *args],
            input=stdin,
            capture_output=True,
            check=False,
            timeout=120,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"},
        )
    except FileNotFoundError:
        raise ConfigFileError("git is not installed", hint="install git") from None


def _git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    proc = _run_git(repo, *args, stdin=stdin)
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


def _wanted(rel: str) -> bool:
    parts = rel.split("/")
    return rel.endswith(_REVIEW_SUFFIXES) or _KEYS_DIR in parts[:-1]


def _safe_rel(rel: str) -> bool:
    parts = rel.split("/")
    return not rel.startswith("/") and all(p not in ("", ".", "..", ".git") for p in parts)


@dataclass
class _Tree:
    """The review files of one revision, as written into ``root``."""

    root: Path
    files: dict[str, bytes] = field(default_factory=dict)  # rel -> bytes (regular files)
    links: dict[str, str] = field(default_factory=dict)  # rel -> target (inside the tree)
    skipped: list[str] = field(default_factory=list)  # what could not be materialised, and why


def _link_target(rel: str, target: str) -> str | None:
    """The in-tree path a committed symlink points to, or None when it leaves the tree."""
    if target.startswith("/") or "\0" in target:
        return None
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    return joined if _safe_rel(joined) else None


def _read_rev(repo: Path, rev: str, root: Path) -> _Tree:
    tree = _Tree(root)
    # -l lists each blob's size: a large one is skipped before git is asked for its bytes.
    listing = _git(repo, "ls-tree", "-r", "-z", "-l", "--full-tree", rev)
    wanted: list[tuple[str, str, str]] = []
    for entry in _names(listing):
        meta, _, rel = entry.partition("\t")
        mode, kind, oid, size = meta.split()
        if kind != "blob" or not _wanted(rel):
            continue
        if not _safe_rel(rel):
            tree.skipped.append(f"{rel}: unsafe path")
            continue
        if int(size) > _MAX_BLOB:
            tree.skipped.append(f"{rel}: larger than {_MAX_BLOB >> 20} MiB")
            continue
        wanted.append((mode, oid, rel))
    blobs = _cat_blobs(repo, [oid for _, oid, _ in wanted])
    for mode, oid, rel in wanted:
        data = blobs.get(oid)
        if data is None:  # pragma: no cover - listed by ls-tree, so git has it
            tree.skipped.append(f"{rel}: missing from the object store")
        elif mode == "120000":
            target = data.decode("utf-8", "surrogateescape")
            if _link_target(rel, target) is None:
                tree.skipped.append(f"{rel}: symlink to {target!r} leaves the repository")
            else:
                tree.links[rel] = target
        else:
            tree.files[rel] = data
    return tree


def _cat_blobs(repo: Path, oids: list[str]) -> dict[str, bytes]:
    """Blob contents by object id through one ``git cat-file --batch`` (never a filter); the
    caller has dropped the blobs over the size cap already."""
    unique = list(dict.fromkeys(oids))
    if not unique:
        return {}
    raw = _git(repo, "cat-file", "--batch", stdin="".join(o + "\n" for o in unique).encode())
    out: dict[str, bytes] = {}
    pos = 0
    for oid in unique:
        eol = raw.index(b"\n", pos)
        header = raw[pos:eol].decode().split()
        pos = eol + 1
        if len(header) != 3:
            continue
        size = int(header[2])
        if size <= _MAX_BLOB:
            out[oid] = raw[pos : pos + size]
        pos += size + 1
    return out


def _read_worktree(repo: Path, root: Path) -> _Tree:
    tree = _Tree(root)
    tracked = _names(_git(repo, "ls-files", "-z"))
    untracked = _names(_git(repo, "ls-files", "--others", "--exclude-standard", "-z"))
    for rel in dict.fromkeys(tracked + untracked):
        if not _wanted(rel) or not _safe_rel(rel):
            continue
        path = repo / rel
        try:
            st = path.lstat()
            if path.is_symlink():
                target = os.readlink(path)
                if _link_target(rel, target) is None:
                    tree.skipped.append(f"{rel}: symlink to {target!r} leaves the repository")
                else:
                    tree.links[rel] = target
                continue
            if not path.is_file():
                continue
            if st.st_size > _MAX_BLOB:
                tree.skipped.append(f"{rel}: larger than {_MAX_BLOB >> 20} MiB")
                continue
            tree.files[rel] = path.read_bytes()
        except OSError:
            continue
    return tree


def _write(tree: _Tree, keys_from: Mapping[str, bytes]) -> None:
    """Write ``tree``'s review files into its root, its trust store replaced by ``keys_from``."""

    def is_keys(rel: str) -> bool:
        return _KEYS_DIR in rel.split("/")[:-1]

    items = {r: d for r, d in tree.files.items() if not is_keys(r)}
    items.update(keys_from)
    for rel, data in items.items():
        dest = tree.root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd = open_nofollow(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    # links last, so no write above can pass through one
    for rel, target in tree.links.items():
        if is_keys(rel):
            continue
        dest = tree.root / rel
        if not os.path.lexists(dest):
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, dest)


def _keys_files(tree: _Tree) -> dict[str, bytes]:
    return {r: d for r, d in tree.files.items() if _KEYS_DIR in r.split("/")[:-1]}


def _keys_store(keys: str | os.PathLike[str]) -> dict[str, bytes]:
    """``--keys DIR`` as the trust store of both sides (placed at ``keys/``)."""
    out: dict[str, bytes] = {}
    for name in ("allowed_signers", "policy.yaml"):
        path = Path(keys) / name
        if path.is_file():
            out[f"{_KEYS_DIR}/{name}"] = path.read_bytes()
    if f"{_KEYS_DIR}/allowed_signers" not in out:
        raise ConfigFileError(
            "no trust store: allowed_signers not found",
            file=str(Path(keys) / "allowed_signers"),
            hint="pass --keys DIR holding allowed_signers (and policy.yaml)",
        )
    return out


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
    keys: str | os.PathLike[str] | None = None,
) -> list[ConfigDiff]:
    """One entry per config file changed between ``rev`` and ``rev2`` (default: working tree).

    Both sides are verified against ``rev``'s trust store, or ``keys`` when given. ``env`` is
    the environment interpolation sees (default: empty; review never reads ``os.environ``).
    """
    top = _toplevel(Path(repo))
    _check_revisions(top, [r for r in (rev, rev2) if r is not None])
    with tempfile.TemporaryDirectory(prefix="aiconfig-diff-") as tmp:
        old = _read_rev(top, rev, Path(tmp) / "old")
        new = (
            _read_rev(top, rev2, Path(tmp) / "new")
            if rev2
            else _read_worktree(top, Path(tmp) / "new")
        )
        trusted = _keys_store(keys) if keys is not None else _keys_files(old)
        keys_changed = _keys_changes(_keys_files(old), _keys_files(new))
        for tree in (old, new):
            tree.root.mkdir(parents=True)
            _write(tree, trusted)
        changed = {
            rel
            for rel in set(old.files) | set(new.files) | set(old.links) | set(new.links)
            if old.files.get(rel) != new.files.get(rel) or old.links.get(rel) != new.links.get(rel)
        }
        review_env = _template_env(old, new) if env is None else env
        out = _report(changed, old.root, new.root, rev, rev2, float_tol, review_env)
        label = rev2 or "the working tree"
        notes = [
            ConfigDiff(
                None,
                None,
                label=rel,
                status="trust-store-changed",
                note=f"{what} in {label}: NOT used to verify this review (every config is "
                f"verified against the trust store of {rev}{' and --keys' if keys else ''}); "
                "review this key change by itself",
            )
            for rel, what in keys_changed
        ]
        skipped = [
            ConfigDiff(None, None, label=item.split(":", 1)[0], status="skipped", note=item)
            for item in (*old.skipped, *new.skipped)
        ]
        return [*notes, *skipped, *out]


def _template_env(*trees: _Tree) -> dict[str, str]:
    """Review's environment: nothing from ``os.environ``.

    ``${oc.env:VAR,default}`` resolves to its default; a variable without a default is given
    its own template text ``${oc.env:VAR}`` (data, never interpolated again), so the review
    shows what the file says instead of failing or printing the CI job's value.
    """
    from ._interpolate import _ENV

    out: dict[str, str] = {}
    for tree in trees:
        for rel, data in tree.files.items():
            if rel.endswith(_CONFIG_SUFFIXES) and b"${" in data:
                for var, comma in _ENV.findall(data.decode("utf-8", "replace")):
                    if not comma:
                        out[var] = "${oc.env:" + var + "}"
    return out


def _keys_changes(old: Mapping[str, bytes], new: Mapping[str, bytes]) -> list[tuple[str, str]]:
    out = []
    for rel in sorted(set(old) | set(new)):
        if rel not in old:
            out.append((rel, "added"))
        elif rel not in new:
            out.append((rel, "removed"))
        elif old[rel] != new[rel]:
            out.append((rel, "changed"))
    return out


def _review_files(root: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if Path(dirpath, d).is_symlink()]):
            if name.endswith(_CONFIG_SUFFIXES):
                out.append(Path(dirpath, name).relative_to(root).as_posix())
    return out


def _keys_for(root: Path, rel: str) -> Path:
    """The trust store a config at ``rel`` uses inside ``root`` (never one above ``root``)."""
    parent = posixpath.dirname(rel)
    while True:
        candidate = root / parent / _KEYS_DIR
        if (candidate / "allowed_signers").is_file() and not candidate.is_symlink():
            return candidate
        if not parent:
            return root / _KEYS_DIR
        parent = posixpath.dirname(parent)


def _report(
    changed: set[str],
    old_root: Path,
    new_root: Path,
    rev: str,
    rev2: str | None,
    float_tol: float | None,
    env: Mapping[str, str],
) -> list[ConfigDiff]:
    new_files = _review_files(new_root)
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
        loaded = review_load(root / name, keys=_keys_for(root, name), env=env)
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
