"""The one file-writing rule (aiconfig/_files.py) and that every writer goes through it."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiconfig import _files
from aiconfig._files import FileDigest, atomic_path, atomic_write, atomic_write_json, sha256_file
from tests.conftest import REPO


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if _files.is_temp_name(p.name))


def test_replaces_content_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "doc.json"
    atomic_write_json(target, {"b": 1, "a": [1, 2]})
    atomic_write_json(target, {"z": "é"})
    assert target.read_text(encoding="utf-8") == '{\n  "z": "\\u00e9"\n}\n'
    assert _leftovers(target.parent) == []


def test_permissions_follow_the_umask_or_the_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "public", b"x")
        atomic_write(tmp_path / "private", "x", mode=0o600)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "public").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o600


def test_a_failing_writer_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "events.parquet"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half of the new")
        raise RuntimeError("the writer died")
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_a_real_write_error_leaves_the_old_file(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the kernel refuse the write (EFBIG), as a full disk would (ENOSPC)."""
    target = tmp_path / "manifest.json"
    target.write_text("old", encoding="utf-8")
    code = (
        "import resource, signal, sys\n"
        "from pathlib import Path\n"
        "from aiconfig._files import atomic_write\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "try:\n"
        "    atomic_write(Path(sys.argv[1]), b'x' * 100_000)\n"
        "except OSError as exc:\n"
        "    print(exc.errno)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(target)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    )
    assert proc.stdout.strip() == "27"  # EFBIG
    assert target.read_text(encoding="utf-8") == "old"
    assert _leftovers(tmp_path) == []


def test_temp_names_are_created_exclusively(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file (here a symlink to a victim) already at the temp name is never written through."""
    victim = tmp_path / "victim"
    victim.write_text("precious", encoding="utf-8")
    planted = tmp_path / ".ready.json.aaaa.tmp"
    planted.symlink_to(victim)
    names: Iterator[str] = iter(["aaaa", "bbbb"])
    monkeypatch.setattr("secrets.token_hex", lambda n: next(names))
    atomic_write(tmp_path / "ready.json", b"{}")
    assert victim.read_text(encoding="utf-8") == "precious"
    assert planted.is_symlink() and (tmp_path / "ready.json").read_bytes() == b"{}"


def test_concurrent_writers_never_share_a_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    bodies = [json.dumps({"writer": i, "pad": "x" * 50_000}).encode() for i in range(8)]
    threads = [threading.Thread(target=atomic_write, args=(target, b)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert target.read_bytes() in bodies  # one whole body, never a mix
    assert _leftovers(tmp_path) == []


def test_file_and_directory_are_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr("os.fsync", spy)
    atomic_write(tmp_path / "a.json", b"{}")
    with atomic_path(tmp_path / "b.mp4") as tmp:
        tmp.write_bytes(b"video")
    assert len(synced) == 4
    assert _files.is_temp_name(Path(synced[0]).name) and synced[1] == str(tmp_path)
    assert _files.is_temp_name(Path(synced[2]).name) and synced[3] == str(tmp_path)


def test_sha256_file_has_one_return_type(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "f").write_bytes(data)
    digest = sha256_file(tmp_path / "f", chunk=1 << 16)
    assert isinstance(digest, FileDigest)
    assert digest == FileDigest(hashlib.sha256(data).hexdigest(), len(data))
    sha, size = digest
    assert (sha, size) == (digest.sha256, digest.size)


FORBIDDEN_CALLS = {"replace", "rename", "fsync", "mkstemp", "NamedTemporaryFile"}


def test_no_other_module_writes_files_its_own_way() -> None:
    """os.replace/os.rename/os.fsync/tempfile.mkstemp and ``tmp.replace(...)`` live only in
    aiconfig/_files.py: every atomic writer goes through it."""
    offenders = []
    for root in ("aiconfig", "capture"):
        for path in sorted((REPO / root).rglob("*.py")):
            if path.name == "_files.py" and path.parent.name == "aiconfig":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                owner = node.func.value
                name = owner.id if isinstance(owner, ast.Name) else ""
                attr = node.func.attr
                if (name in {"os", "tempfile"} and attr in FORBIDDEN_CALLS) or (
                    attr == "replace" and "tmp" in name.lower()
                ):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} {name}.{attr}")
    assert offenders == []
