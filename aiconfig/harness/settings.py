"""The run settings an orchestrator controls: one parser for flags and ``AP_*`` variables.

Every job (capture, pipeline, infer) calls :func:`add_run_arguments` on its argparse parser and
:func:`resolve_settings` on the parsed namespace. A flag given on the command line wins over its
environment variable; every invalid value is reported at once, naming the flag or variable, in a
:class:`~aiconfig.RunSettingError`, before the job does any work.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import Problem, RunSettingError

__all__ = ["RunSettings", "add_run_arguments", "resolve_settings"]

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
JOB_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
MIN_MEM_MB = 64
MAX_CPU = 1024.0


@dataclass(frozen=True)
class RunSettings:
    """Resolved, validated settings of one run. Paths are absolute."""

    job: str
    run_id: str
    out_dir: Path
    run_dir: Path
    data_root: Path | None = None
    no_network: bool = False
    cpu_limit: float | None = None
    mem_limit_mb: int | None = None
    log_json: bool = False
    ready_file: Path | None = None
    lock_dir: Path | None = None
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def tmp_dir(self) -> Path:
        """``RUN_DIR/tmp/<job>/<run_id>``: namespaced so runs sharing a RUN_DIR never collide."""
        return self.run_dir / "tmp" / self.job / self.run_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "run_id": self.run_id,
            "out_dir": str(self.out_dir),
            "run_dir": str(self.run_dir),
            "data_root": None if self.data_root is None else str(self.data_root),
            "no_network": self.no_network,
            "cpu_limit": self.cpu_limit,
            "mem_limit_mb": self.mem_limit_mb,
            "log_json": self.log_json,
            "ready_file": None if self.ready_file is None else str(self.ready_file),
            "lock_dir": None if self.lock_dir is None else str(self.lock_dir),
            "sources": dict(self.sources),
        }


def add_run_arguments(parser: argparse.ArgumentParser, *, out_default: str = "") -> None:
    """Add the orchestrator-contract flags. Values stay strings; :func:`resolve_settings` checks.

    ``out_default`` is what ``--help`` says ``--out`` defaults to (the job's ``default_out``);
    empty: ``--out`` (or ``AP_OUT_DIR``) is required.
    """
    group = parser.add_argument_group("run (orchestrator contract)")
    group.add_argument(
        "--run-id", metavar="ID", help="run identity (env AP_RUN_ID; default: <job>-<time>-<pid>)"
    )
    group.add_argument(
        "--out",
        metavar="DIR",
        help="output directory of this run (env AP_OUT_DIR; "
        + (f"default: {out_default})" if out_default else "required)"),
    )
    group.add_argument(
        "--data-root",
        metavar="DIR",
        help="shared data root: anti-rollback state, caches (env AP_DATA_ROOT; default: the "
        "state goes to ~/.local/state/aiconfig)",
    )
    group.add_argument(
        "--no-network",
        action="store_const",
        const=True,
        default=None,
        help="refuse every non-loopback connection (env AP_NO_NETWORK=1)",
    )
    group.add_argument(
        "--cpu-limit", metavar="CORES", help="CPU budget in cores (env AP_CPU_LIMIT)"
    )
    group.add_argument(
        "--mem-limit-mb", metavar="MB", help="memory budget in MiB (env AP_MEM_LIMIT_MB)"
    )
    group.add_argument(
        "--log-json",
        action="store_const",
        const=True,
        default=None,
        help="one JSON log object per line on stdout (env AP_LOG_JSON=1)",
    )
    group.add_argument(
        "--ready-file",
        metavar="PATH",
        help="readiness file written once ready, removed on exit (env AP_READY_FILE)",
    )
    group.add_argument(
        "--lock-dir",
        metavar="DIR",
        help="device lock directory (env AP_LOCK_DIR; default $HYPERVISOR_RUN_DIR/shared/locks)",
    )


class _Resolver:
    """Reads each setting from its flag (winning) or its variable.

    Where each value came from goes to ``sources``; every invalid one to ``problems``, so that
    all of them are reported at once.
    """

    def __init__(self, args: argparse.Namespace | None, env: Mapping[str, str]) -> None:
        self.args = args
        self.env = env
        self.problems: list[Problem] = []
        self.sources: dict[str, str] = {}

    def raw(self, key: str, flag: str, var: str | None) -> tuple[str | None, str]:
        value = getattr(self.args, key, None) if self.args is not None else None
        if value is not None:
            self.sources[key] = flag
            return str(value), flag
        if var is not None and var in self.env:
            self.sources[key] = var
            return self.env[var], var
        return None, ""

    def bad(self, source: str, message: str, expected: str, got: str) -> None:
        self.problems.append(Problem(message, path=source, expected=expected, got=repr(got)))

    def flag_bool(self, key: str, flag: str, var: str) -> bool:
        value, source = self.raw(key, flag, var)
        if value is None:
            return False
        if source == flag:
            return True
        if value.strip().lower() in _TRUE:
            return True
        if value.strip().lower() in _FALSE:
            return False
        self.bad(source, "not a boolean", "1 or 0", value)
        return False

    def path(self, key: str, flag: str, var: str | None) -> Path | None:
        value, source = self.raw(key, flag, var)
        if value is None:
            return None
        if not value.strip() or "\0" in value:
            self.bad(source, "not a usable path", "a non-empty path", value)
            return None
        return Path(value).expanduser().absolute()

    def run_id(self, job: str) -> str:
        """The given run id (checked), or ``<job>-<UTC time>-<pid>`` when none is given."""
        run_id, source = self.raw("run_id", "--run-id", "AP_RUN_ID")
        if run_id is None:
            self.sources["run_id"] = "generated"
            return f"{job}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}"
        if not RUN_ID_RE.match(run_id):
            self.bad(
                source,
                "invalid run id",
                "1-128 chars of [A-Za-z0-9._-], not starting with . _ -",
                run_id,
            )
        return run_id

    def out_dir(self, run_id: str, default_out: Path | None, per_run: bool) -> Path | None:
        """The output directory: given, or ``default_out`` (``default_out/<run id>`` per run)."""
        out = self.path("out", "--out", "AP_OUT_DIR")
        if out is None and "out" not in self.sources:
            if default_out is None:
                self.problems.append(
                    Problem(
                        "no output directory", path="--out", hint="pass --out DIR or set AP_OUT_DIR"
                    )
                )
            else:
                out = default_out.expanduser().absolute()
                if per_run:
                    out = out / run_id
                self.sources["out"] = "default"
        if out is not None and out.exists() and not out.is_dir():
            self.bad(
                self.sources["out"],
                "output path exists and is not a directory",
                "a directory",
                str(out),
            )
        return out

    def data_root(self) -> Path | None:
        data_root = self.path("data_root", "--data-root", "AP_DATA_ROOT")
        if data_root is not None and data_root.exists() and not data_root.is_dir():
            # A missing data root is created on first use (anti-rollback state, caches).
            self.bad(
                self.sources["data_root"],
                "data root is not a directory",
                "a directory",
                str(data_root),
            )
        return data_root

    def cpu_limit(self) -> float | None:
        value, source = self.raw("cpu_limit", "--cpu-limit", "AP_CPU_LIMIT")
        if value is None or not value.strip():
            return None
        try:
            cores: float | None = float(value)
        except ValueError:
            cores = None
        if cores is None or not math.isfinite(cores) or not 0 < cores <= MAX_CPU:
            self.bad(source, "invalid CPU limit", f"a number of cores in (0, {MAX_CPU:g}]", value)
            return None
        return cores

    def mem_limit_mb(self) -> int | None:
        value, source = self.raw("mem_limit_mb", "--mem-limit-mb", "AP_MEM_LIMIT_MB")
        if value is None or not value.strip():
            return None
        try:
            mib: int | None = int(value)
        except ValueError:
            mib = None
        if mib is None or mib < MIN_MEM_MB:
            self.bad(
                source, "invalid memory limit", f"an integer number of MiB >= {MIN_MEM_MB}", value
            )
            return None
        return mib

    def ready_file(self) -> Path | None:
        ready_file = self.path("ready_file", "--ready-file", "AP_READY_FILE")
        if ready_file is not None and ready_file.is_dir():
            self.bad(
                self.sources["ready_file"],
                "ready file path is a directory",
                "a file path",
                str(ready_file),
            )
        return ready_file

    def lock_dir(self, hyper: str | None) -> Path | None:
        """The given lock directory, or ``$HYPERVISOR_RUN_DIR/shared/locks`` under one."""
        lock_dir = self.path("lock_dir", "--lock-dir", "AP_LOCK_DIR")
        if lock_dir is None and hyper:
            lock_dir = Path(hyper).absolute() / "shared" / "locks"
            self.sources["lock_dir"] = "HYPERVISOR_RUN_DIR"
        return lock_dir


def resolve_settings(
    args: argparse.Namespace | None,
    job: str,
    *,
    env: Mapping[str, str] | None = None,
    default_out: Path | None = None,
    default_out_per_run: bool = False,
) -> RunSettings:
    """Merge flags (winning) with ``AP_*`` variables; RunSettingError lists every problem.

    ``default_out`` is the output directory when neither ``--out`` nor ``AP_OUT_DIR`` is
    given; with ``default_out_per_run`` each run gets ``default_out/<run id>`` instead (and,
    outside an orchestrator, ``default_out`` as its run directory).
    """
    environ = os.environ if env is None else env
    r = _Resolver(args, environ)
    if not JOB_RE.match(job):
        r.bad("job", "invalid job name", "lower-case [a-z0-9_-]", job)
    run_id = r.run_id(job)
    out = r.out_dir(run_id, default_out, default_out_per_run)
    data_root = r.data_root()
    no_network = r.flag_bool("no_network", "--no-network", "AP_NO_NETWORK")
    log_json = r.flag_bool("log_json", "--log-json", "AP_LOG_JSON")
    cpu_limit = r.cpu_limit()
    mem_limit_mb = r.mem_limit_mb()
    ready_file = r.ready_file()
    hyper = environ.get("HYPERVISOR_RUN_DIR")
    lock_dir = r.lock_dir(hyper)
    if r.problems:
        raise RunSettingError(r.problems)
    assert out is not None  # noqa: S101 - guaranteed by the problem check above
    run_dir = Path(hyper).absolute() if hyper else out.parent
    return RunSettings(
        job=job,
        run_id=run_id,
        out_dir=out,
        run_dir=run_dir,
        data_root=data_root,
        no_network=no_network,
        cpu_limit=cpu_limit,
        mem_limit_mb=mem_limit_mb,
        log_json=log_json,
        ready_file=ready_file,
        lock_dir=lock_dir,
        sources=r.sources,
    )
