"""Import a pinned plugin from its distribution's own files, from source only.

``EntryPoint.load()`` imports ``module:attr`` through ``sys.path``: a same-named package in the
current directory (``python -m`` puts it first) shadows the pinned one, and a tampered
``__pycache__/*.pyc`` carrying the original source's mtime and size is run instead of the
source the lock hashed. Neither changes a hashed file, so the lock alone cannot see them.

:func:`load_from_distribution` closes both: a finder placed first on ``sys.meta_path`` resolves
the plugin's top-level package (and every submodule, now and later) only to files listed in the
distribution's RECORD, and its loader compiles the source every time, never reading or writing
bytecode (``-B`` semantics for that package). The current directory is also left out of
``sys.path`` while the plugin's module is imported (``-I`` semantics for what it imports then).
No maintained library does this (importlib offers the parts); hence this small module.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import threading
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

__all__ = ["DistributionImportError", "load_from_distribution"]

_LOCK = threading.Lock()


class DistributionImportError(ImportError):
    """The plugin's code would not come from its pinned distribution's files."""


class _SourceOnlyLoader(importlib.machinery.SourceFileLoader):
    """Compiles the source file every time: ``__pycache__`` is never read or written (only the
    base ``get_code`` reads bytecode and writes it through ``set_data``; this one does neither)."""

    def get_code(self, fullname: str) -> CodeType:
        source = self.get_data(self.path)
        return compile(source, self.path, "exec", dont_inherit=True)


class _DistFinder(importlib.abc.MetaPathFinder):
    """Resolves the modules of one distribution's top-level packages to its RECORD files."""

    def __init__(self, dist_name: str, tops: frozenset[str], files: dict[str, Path]) -> None:
        self.dist_name = dist_name
        self.tops = tops
        self.files = files  # RECORD path (posix, relative) -> located absolute path

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".", 1)[0] not in self.tops:
            return None
        rel = fullname.replace(".", "/")
        package = self.files.get(f"{rel}/__init__.py")
        if package is not None:
            return importlib.util.spec_from_file_location(
                fullname,
                package,
                loader=_SourceOnlyLoader(fullname, str(package)),
                submodule_search_locations=[str(package.parent)],
            )
        module = self.files.get(f"{rel}.py")
        if module is not None:
            return importlib.util.spec_from_file_location(
                fullname, module, loader=_SourceOnlyLoader(fullname, str(module))
            )
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            ext = self.files.get(rel + suffix)
            if ext is not None:
                loader = importlib.machinery.ExtensionFileLoader(fullname, str(ext))
                return importlib.util.spec_from_file_location(fullname, ext, loader=loader)
        raise DistributionImportError(
            f"module {fullname!r} is not a file of distribution {self.dist_name!r} (its RECORD)"
        )


def _located(dist: metadata.Distribution) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for f in dist.files or ():
        if f.suffix == ".pyc" or "__pycache__" in f.parts:
            continue
        out[f.as_posix()] = Path(str(f.locate())).resolve()
    return out


def _finder_for(dist: metadata.Distribution, top: str) -> _DistFinder:
    name = str(dist.metadata["Name"])
    files = _located(dist)
    with _LOCK:
        for existing in list(sys.meta_path):
            if isinstance(existing, _DistFinder) and top in existing.tops:
                if existing.dist_name != name:
                    raise DistributionImportError(
                        f"package {top!r} is already claimed by distribution {existing.dist_name!r}"
                    )
                if existing.files == files:
                    return existing
                sys.meta_path.remove(existing)  # the same distribution, verified anew elsewhere
        tops = frozenset(rel.split("/", 1)[0].removesuffix(".py") for rel in files)
        if top not in tops:
            raise DistributionImportError(
                f"module {top!r} is not a file of distribution {name!r} (its RECORD)"
            )
        finder = _DistFinder(name, frozenset({top}), files)
        sys.meta_path.insert(0, finder)
        return finder


def _check_loaded(finder: _DistFinder, top: str) -> None:
    """A module of the package imported earlier from elsewhere is refused, not reused."""
    allowed = set(finder.files.values())
    for name, module in list(sys.modules.items()):
        if name != top and not name.startswith(top + "."):
            continue
        origin = getattr(module, "__file__", None)
        if origin is None or Path(origin).resolve() not in allowed:
            raise DistributionImportError(
                f"module {name!r} was already imported from {origin or 'a namespace'}, not from "
                f"distribution {finder.dist_name!r}"
            )


def load_from_distribution(ep: metadata.EntryPoint) -> Any:
    """``ep.load()``, importing only files of ``ep.dist`` and never their bytecode."""
    dist = ep.dist
    if dist is None:
        raise DistributionImportError(f"entry point {ep.name!r} has no distribution")
    module_name = ep.module
    top = module_name.split(".", 1)[0]
    finder = _finder_for(dist, top)
    _check_loaded(finder, top)
    cwd = {"", ".", os.getcwd()}
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if p not in cwd]
    try:
        obj: Any = importlib.import_module(module_name)
    finally:
        sys.path[:] = saved
    for attr in (ep.attr or "").split("."):
        if attr:
            obj = getattr(obj, attr)
    return obj
