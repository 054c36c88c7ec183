"""Bypassing the plugin lock without changing a hashed file: shadowing and planted bytecode.

Each attack is first shown to work against a plain ``EntryPoint.load()`` (so the test can fail),
then refused or neutralised under the lock. Every run is a real child process.
"""

from __future__ import annotations

import importlib.util
import json
import py_compile
import subprocess
from pathlib import Path

import pytest

from aiconfig.harness.plugins import GROUP

from .util import PY, REPO, child_env, install_dist

GOOD = """
import os
MARK = os.environ["MARK"]

class NullStream:
    kind = "stream"

def lazy():
    from hello_plugin import sub
    return sub.VALUE
"""
SUB = "VALUE = 'genuine'\n"
EVIL = "import os\nopen(os.environ['MARK'], 'a').write('{what}\\n')\n"

DRIVER = """
import json, sys
from importlib import metadata
from aiconfig.harness.plugins import load_plugins
mode = sys.argv[1]
if mode == "plain":
    eps = metadata.entry_points(group="aiconfig.plugins")
    obj = [e for e in eps if e.name == "null_stream"][0].load()
    print(json.dumps({"file": sys.modules["hello_plugin"].__file__}))
else:
    result = load_plugins(names=["null_stream"])
    out = {"loaded": sorted(result.loaded), "refused": [r.reason for r in result.refused]}
    if result.loaded:
        out["file"] = sys.modules["hello_plugin"].__file__
        out["lazy"] = sys.modules["hello_plugin"].lazy()
    print(json.dumps(out))
"""


def _setup(tmp_path: Path) -> tuple[Path, dict[str, str], Path]:
    site = tmp_path / "site"
    install_dist(
        site,
        "hello-plugin",
        "1.0.0",
        {"hello_plugin/__init__.py": GOOD, "hello_plugin/sub.py": SUB},
        {"null_stream": "hello_plugin:NullStream"},
        group=GROUP,
    )
    mark = tmp_path / "PWNED"
    env = child_env(tmp_path, MARK=str(mark))
    env["PYTHONPATH"] = f"{REPO}:{site}"
    env.pop("PYTHONPYCACHEPREFIX")  # the attack plants __pycache__ beside the source
    lock = subprocess.run(
        [PY, "-m", "aiconfig", "plugins", "lock", "hello-plugin"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    (tmp_path / "plugins.lock").write_text(lock)
    (tmp_path / "allow.txt").write_text("null_stream\n")
    env["AP_PLUGIN_LOCK"] = str(tmp_path / "plugins.lock")
    env["AP_PLUGINS_ALLOWLIST"] = str(tmp_path / "allow.txt")
    return site, env, mark


def _run(mode: str, env: dict[str, str], cwd: Path) -> dict[str, object]:
    # "python -c" puts the current directory first on sys.path, like "python -m aiconfig"
    proc = subprocess.run(
        [PY, "-c", DRIVER, mode],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_same_named_package_in_the_current_directory_never_runs(tmp_path: Path) -> None:
    site, env, mark = _setup(tmp_path)
    work = tmp_path / "work"
    (work / "hello_plugin").mkdir(parents=True)
    (work / "hello_plugin" / "__init__.py").write_text(
        EVIL.format(what="shadow") + "class NullStream:\n    kind = 'stream'\n"
    )
    plain = _run("plain", env, work)
    assert mark.read_text() == "shadow\n"  # the attack is real: EntryPoint.load() ran it
    assert str(plain["file"]).startswith(str(work))
    mark.unlink()
    out = _run("locked", env, work)
    assert out["loaded"] == ["null_stream"]
    assert str(out["file"]) == str(site / "hello_plugin" / "__init__.py")
    assert out["lazy"] == "genuine"
    assert not mark.exists()


def _planted_pyc(source: Path, evil: str) -> Path:
    """A .pyc of ``evil`` whose header carries ``source``'s mtime and size (so it is used)."""
    from importlib._bootstrap_external import _code_to_timestamp_pyc  # type: ignore[attr-defined]

    st = source.stat()
    code = compile(evil, str(source), "exec")
    cache = Path(importlib.util.cache_from_source(str(source)))
    cache.parent.mkdir(exist_ok=True)
    cache.write_bytes(bytes(_code_to_timestamp_pyc(code, int(st.st_mtime), st.st_size)))
    return cache


@pytest.mark.parametrize("member", ["__init__.py", "sub.py"])
def test_planted_bytecode_never_runs(tmp_path: Path, member: str) -> None:
    site, env, mark = _setup(tmp_path)
    source = site / "hello_plugin" / member
    py_compile.compile(str(source))  # a genuine cache first, as an install leaves it
    base = GOOD if member == "__init__.py" else SUB
    _planted_pyc(source, EVIL.format(what="pyc") + base)
    if member == "__init__.py":
        _run("plain", env, tmp_path)
    else:
        subprocess.run([PY, "-c", "import hello_plugin.sub"], env=env, cwd=tmp_path, check=True)
    assert mark.read_text() == "pyc\n"  # the attack is real: the interpreter ran the .pyc
    mark.unlink()
    out = _run("locked", env, tmp_path)  # the lock still matches: no hashed file changed
    assert out["loaded"] == ["null_stream"] and out["lazy"] == "genuine"
    assert not mark.exists()


def test_locked_import_writes_no_bytecode_and_needs_only_the_standard_library(
    tmp_path: Path,
) -> None:
    site, env, mark = _setup(tmp_path)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([PY, "-c", "import hello_plugin.sub"], env=env, cwd=tmp_path, check=True)
    caches = sorted((site / "hello_plugin").rglob("*.pyc"))
    assert caches  # a plain import writes bytecode beside the source here
    for cache in caches:
        cache.unlink()
    # typing_extensions is not a dependency of aiconfig: the locked import must not need it
    blocked = "import sys\nsys.modules['typing_extensions'] = None\n" + DRIVER
    proc = subprocess.run(
        [PY, "-c", blocked, "locked"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["loaded"] == ["null_stream"] and out["lazy"] == "genuine"
    assert sorted((site / "hello_plugin").rglob("*.pyc")) == []
    assert not mark.exists()


def test_module_added_beside_the_pinned_files_is_refused(tmp_path: Path) -> None:
    site, env, mark = _setup(tmp_path)
    # a new file is not in RECORD, so the lock's digest does not see it
    (site / "hello_plugin" / "extra.py").write_text(EVIL.format(what="extra"))
    init = site / "hello_plugin" / "__init__.py"
    driver = DRIVER.replace(
        'out["lazy"] = sys.modules["hello_plugin"].lazy()',
        'import importlib\n        try:\n            importlib.import_module("hello_plugin.extra")'
        '\n        except ImportError as exc:\n            out["lazy"] = str(exc)',
    )
    proc = subprocess.run(
        [PY, "-c", driver, "locked"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "is not a file of distribution 'hello-plugin'" in out["lazy"]
    assert not mark.exists() and init.exists()
