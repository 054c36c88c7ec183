"""Structured run logs: one JSON object per line, or short human lines.

With ``--log-json`` / ``AP_LOG_JSON=1`` every record is one JSON object on **stdout**
(``ts``, ``level``, ``run_id``, ``job``, ``event``, ``fields``) and nothing else is written to
stdout, so an orchestrator can parse the stream line by line. Without it, records of level
warning and above go to stderr as ``LEVEL event key=value`` lines and stdout stays free for the
command's own result.

Records of the standard :mod:`logging` module (from aiconfig or third-party libraries) are routed
through the same sink while a run is active, as event ``log`` with the logger name and message.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = ["RunLog"]

LEVELS = ("debug", "info", "warning", "error")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return str(value)


class RunLog:
    """Thread-safe structured logger bound to one run."""

    def __init__(
        self,
        run_id: str,
        job: str,
        *,
        json_lines: bool = False,
        stream: TextIO | None = None,
        min_level: str = "info",
    ) -> None:
        self.run_id = run_id
        self.job = job
        self.json_lines = json_lines
        self._stream = stream
        self._min = LEVELS.index(min_level)
        self._lock = threading.Lock()
        self._handler: _Bridge | None = None

    @property
    def stream(self) -> TextIO:
        if self._stream is not None:
            return self._stream
        return sys.stdout if self.json_lines else sys.stderr

    def record(self, level: str, event: str, fields: dict[str, Any]) -> dict[str, Any]:
        return {
            "ts": _now_iso(),
            "level": level,
            "run_id": self.run_id,
            "job": self.job,
            "event": event,
            "fields": _jsonable(fields),
        }

    def log(self, level: str, event: str, **fields: Any) -> None:
        if LEVELS.index(level) < self._min:
            return
        rec = self.record(level, event, fields)
        if self.json_lines:
            line = json.dumps(rec, separators=(",", ":"), sort_keys=False)
        else:
            parts = " ".join(f"{k}={json.dumps(v)}" for k, v in rec["fields"].items())
            line = f"{level.upper():7} {event} {parts}".rstrip()
        with self._lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (BrokenPipeError, ValueError):  # closed stream: logging must never crash a run
                pass

    def debug(self, event: str, **fields: Any) -> None:
        self.log("debug", event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        self.log("info", event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self.log("warning", event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self.log("error", event, **fields)

    def capture_stdlib(self) -> None:
        """Route :mod:`logging` records (warnings and above) through this log."""
        if self._handler is None:
            self._handler = _Bridge(self)
            logging.getLogger().addHandler(self._handler)

    def release_stdlib(self) -> None:
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
            self._handler = None


class _Bridge(logging.Handler):
    def __init__(self, log: RunLog) -> None:
        super().__init__(level=logging.WARNING)
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        level = "error" if record.levelno >= logging.ERROR else "warning"
        if record.levelno < logging.WARNING:
            level = "info" if record.levelno >= logging.INFO else "debug"
        self._log.log(level, "log", logger=record.name, message=record.getMessage())
