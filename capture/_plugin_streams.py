"""Capture streams from entry-point plugins (group ``aiconfig.plugins``, ``kind = "stream"``).

A stream plugin is a class (the entry point's object) with ``kind = "stream"``::

    class Telemetry:
        kind = "stream"
        needs_network = False            # True: refused under --no-network

        def __init__(self, session_dir: Path, *, session_id: str, fps: int) -> None: ...
        def start(self, t0_ns: int) -> None: ...          # t0_ns: frame 0, CLOCK_MONOTONIC
        def stop(self, end_ns: int) -> dict[str, Any]: ... # info stored in metadata.json

It writes its own files into ``session_dir`` (``<name>.jsonl``, ``<name>.parquet``...), timing
them against ``t0_ns`` like the built-in streams (frame ``i`` is at ``t0_ns + i * 1e9 / fps``).
Each plugin degrades alone: an exception in ``__init__``, ``start`` or ``stop`` marks its stream
``failed`` in ``metadata.json`` (``streams.<name>``) and the session goes on. Which plugins may
load at all (allowlist, version and hash pins, offline mode) is decided by
:mod:`aiconfig.harness.plugins` before any plugin code is imported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aiconfig import PluginRefusedError

__all__ = ["STREAM_KIND", "PluginStreams", "load_stream_plugins"]

STREAM_KIND = "stream"
BUILTIN_STREAMS = frozenset({"screen", "input", "audio", "webcam", "game"})


def load_stream_plugins(names: Iterable[str]) -> dict[str, Any]:
    """The named stream plugins, loaded under the plugin policy; a refusal raises (all reasons)."""
    from aiconfig.harness.plugins import load_named

    names = list(names)
    for name in names:
        if name in BUILTIN_STREAMS:
            raise PluginRefusedError(
                f"plugin name {name!r} is a built-in stream", hint=f"use --{name} instead"
            )
    return load_named(names, kind=STREAM_KIND, what="capture stream")


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


class PluginStreams:
    """The session's plugin streams; every call catches the plugin's errors (degrade alone)."""

    def __init__(
        self, factories: Mapping[str, Any], session: Path, *, session_id: str, fps: int
    ) -> None:
        self._live: dict[str, Any] = {}
        self.status: dict[str, dict[str, Any]] = {}
        for name, factory in factories.items():
            try:
                self._live[name] = factory(session, session_id=session_id, fps=fps)
                self.status[name] = {"status": "opened", "error": None, "plugin": True}
            except Exception as exc:  # noqa: BLE001 - a plugin failing must not stop the session
                self.status[name] = {"status": "failed", "error": _error(exc), "plugin": True}

    def start(self, t0_ns: int) -> None:
        for name, stream in list(self._live.items()):
            try:
                stream.start(t0_ns)
                self.status[name]["status"] = "recording"
            except Exception as exc:  # noqa: BLE001
                self._fail(name, exc)

    def stop(self, end_ns: int) -> dict[str, dict[str, Any]]:
        for name, stream in list(self._live.items()):
            try:
                info = stream.stop(end_ns)
            except Exception as exc:  # noqa: BLE001
                self._fail(name, exc)
                continue
            self.status[name]["status"] = "complete"
            if info is not None:
                self.status[name]["info"] = dict(info)
        self._live.clear()
        return self.status

    def _fail(self, name: str, exc: BaseException) -> None:
        self.status[name].update(status="failed", error=_error(exc))
        stream = self._live.pop(name)
        with contextlib.suppress(Exception):  # already failed; its first error is kept
            stream.stop(0)
