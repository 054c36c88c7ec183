"""RunContext: one object that runs a job under the orchestrator contract.

::

    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    args = parser.parse_args()
    with RunContext.from_args(args, job="capture", devices=("screen", "input")) as run:
        ...                      # open devices; write under run.out_dir; temp files in run.tmp_dir
        run.mark_ready()         # ready file, once devices are open
        run.add_artifact("session_x/frames.mp4", kind="video")   # optional annotations
    # on exit: ready file removed, manifest.json written last, locks released, tmp removed

Entering applies, in order: offline mode, the budget (thread caps and allocator settings, then
the ``preload`` imports, then ``RLIMIT_DATA``), the output
directory claim, the temp directory (also exported as ``TMPDIR``), the device locks and a SIGTERM
handler that unwinds the run like an exception so cleanup still happens.
"""

from __future__ import annotations

import argparse
import fcntl
import importlib
import os
import resource
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from .. import _network as network
from .._errors import AiconfigError, BudgetError, RunStateError, Terminated
from .._files import UnsafeFileError, open_lock_file
from .budget import Budget
from .locks import DeviceLock
from .logs import RunLog
from .manifest import MANIFEST_NAME, collect_artifacts, load_manifest, write_manifest
from .ready import remove_ready_file, write_ready_file
from .settings import RunSettings, resolve_settings

__all__ = ["RunContext", "Terminated"]

_OUT_LOCK = ".aiconfig-run.lock"


def _import(module: str) -> None:
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise RunStateError(
            f"cannot import {module}: {exc}",
            hint="install the extra this job needs, e.g. pip install 'aiconfig[capture]'",
        ) from None
    except ImportError as exc:
        text = str(exc).splitlines()[0]
        if "failed to map segment" in text or "cannot allocate memory" in text.lower():
            raise BudgetError(
                f"cannot load {module} within the address-space limit: {text}",
                hint="numpy + pyarrow + PyAV need about 450 MB of address space (prlimit --as, "
                "ulimit -v); limit memory with AP_MEM_LIMIT_MB or a cgroup instead",
            ) from None
        raise RunStateError(f"cannot import {module}: {text}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class RunContext:
    """Lifecycle of one job run; use as a context manager (entering twice is refused)."""

    def __init__(
        self,
        settings: RunSettings,
        *,
        devices: Iterable[str] = (),
        preload: Iterable[str] = (),
        log: RunLog | None = None,
        shared_out: bool = False,
    ) -> None:
        self.settings = settings
        self._shared_out = shared_out
        self.devices = tuple(devices)
        self.preload = tuple(preload)
        self.budget = Budget.from_limits(settings.cpu_limit, settings.mem_limit_mb)
        self.log = log or RunLog(
            settings.run_id,
            settings.job,
            json_lines=settings.log_json,
            # Human mode keeps stderr quiet (warnings only): the CLI prints the one error line.
            min_level="info" if settings.log_json else "warning",
        )
        self.status = "pending"
        self.error: str | None = None
        self.started_at: str | None = None
        self.ended_at: str | None = None
        self.manifest_path: Path | None = None
        self._config: dict[str, Any] | None = None
        self._annotations: dict[str, dict[str, Any]] = {}
        self._extra: dict[str, Any] = {}
        self._scope: list[str] | None = None
        self._locks: list[DeviceLock] = []
        self._out_lock_fd: int | None = None
        self._owns_out = False
        self._wrote_ready = False  # only a ready file this run wrote is ever removed
        self._prev_offline = False
        self._prev_env: dict[str, str | None] = {}
        self._prev_tempdir: str | None = None
        self._prev_rlimit: tuple[int, int] | None = None
        self._prev_sigterm: Any = None
        self._entered = False

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_args(
        cls,
        args: argparse.Namespace | None,
        job: str,
        *,
        devices: Iterable[str] = (),
        preload: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
        default_out: Path | None = None,
    ) -> RunContext:
        """Resolve flags (:func:`add_run_arguments`) and ``AP_*`` variables; nothing runs yet.

        ``preload`` names modules (e.g. numpy, pyarrow, av) to import on entry, after the
        budget's thread/allocator settings are exported and before the memory limit is set.
        """
        settings = resolve_settings(args, job, env=env, default_out=default_out)
        return cls(settings, devices=devices, preload=preload)

    @classmethod
    def from_env(cls, job: str, **kwargs: Any) -> RunContext:
        return cls.from_args(None, job, **kwargs)

    # -- accessors ---------------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self.settings.run_id

    @property
    def out_dir(self) -> Path:
        return self.settings.out_dir

    @property
    def tmp_dir(self) -> Path:
        return self.settings.tmp_dir

    def cache_dir(self, name: str) -> Path:
        """A cache directory keyed by run id: ``<data root or run dir>/cache/<name>/<run_id>``."""
        base = self.settings.data_root or self.settings.run_dir
        path = base / "cache" / name / self.run_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def set_config(
        self,
        *,
        sha256: str,
        signers: Iterable[str] = (),
        path: str | None = None,
        emergency: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        """Record the config that drives this run (digest and signers) in the manifest.

        ``emergency`` is ``provenance.emergency``: active emergency overrides are listed
        under ``config.emergency`` (absent when there are none).
        """
        self._config = {"path": path, "sha256": sha256, "signers": sorted(set(signers))}
        active = [dict(e) for e in emergency]
        if active:
            self._config["emergency"] = active

    def add_artifact(self, rel_path: str, **annotations: Any) -> None:
        """Annotate an output file (``kind``, ``capture={...}``, anything JSON); hashed at exit."""
        self._annotations.setdefault(rel_path, {}).update(annotations)

    @property
    def shared_out(self) -> bool:
        """True when the job declared its output directory a collection of runs.

        A standalone capture (no run id from an orchestrator) records into a directory that
        collects sessions (``./sessions``): a previous run's manifest there is replaced, and the
        run lists only its own subpaths (:meth:`scope_artifacts`). An orchestrated run's output
        directory is its own; another run's manifest there is refused.
        """
        return self._shared_out

    def scope_artifacts(self, *rel_paths: str) -> None:
        """Limit the manifest to these subpaths of the output directory (this run's own)."""
        self._scope = sorted({*(self._scope or ()), *rel_paths})

    def set_extra(self, **fields: Any) -> None:
        """Extra top-level manifest fields (e.g. the pipeline's report summary)."""
        self._extra.update(fields)

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> RunContext:
        if self._entered:
            raise RunStateError("a RunContext can be entered once")
        self._entered = True
        self.started_at = _utc_now()
        self.log.info(
            "run.started",
            pid=os.getpid(),
            out=str(self.out_dir),
            no_network=self.settings.no_network,
            cpus=self.budget.cpus,
            mem_limit_mb=self.budget.mem_limit_mb,
            devices=list(self.devices),
        )
        try:
            self._setup()
        except BaseException as exc:
            self.status = "failed"
            self.error = _first_line(exc)
            self._teardown(success=False)
            raise
        self.status = "running"
        return self

    def _setup(self) -> None:
        s = self.settings
        if s.log_json:
            self.log.capture_stdlib()
        if s.no_network:
            self._prev_env.setdefault("AP_NO_NETWORK", os.environ.get("AP_NO_NETWORK"))
            self._prev_offline = network.set_offline(True)
        for name in [*self.budget.thread_env(), *self.budget.memory_env()]:
            self._prev_env.setdefault(name, os.environ.get(name))
        self._prev_rlimit = resource.getrlimit(resource.RLIMIT_DATA)
        applied = self.budget.export_env()
        for module in self.preload:
            # Heavy libraries load under the thread and allocator settings, before the memory
            # limit, so the headroom check below sees what they use.
            _import(module)
        applied.update(self.budget.apply_libraries())
        applied.update(self.budget.limit_memory())
        self.log.debug("budget.applied", **applied)
        self._claim_out_dir()
        s.tmp_dir.mkdir(parents=True, exist_ok=True)
        self._prev_env.setdefault("TMPDIR", os.environ.get("TMPDIR"))
        os.environ["TMPDIR"] = str(s.tmp_dir)
        self._prev_tempdir = tempfile.tempdir
        tempfile.tempdir = str(s.tmp_dir)
        if self.devices:
            if s.lock_dir is None:
                self.log.info(
                    "locks.none", reason="no --lock-dir, AP_LOCK_DIR or HYPERVISOR_RUN_DIR"
                )
            else:
                for device in self.devices:
                    lock = DeviceLock(s.lock_dir, device, run_id=s.run_id, job=s.job)
                    self._locks.append(lock.acquire())
                    self.log.info("lock.acquired", device=device, path=str(lock.path))
        if threading.current_thread() is threading.main_thread():
            self._prev_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        raise Terminated(signum)

    def _claim_out_dir(self) -> None:
        out = self.out_dir
        try:
            out.mkdir(parents=True, exist_ok=True)
            fd = open_lock_file(out / _OUT_LOCK)
        except UnsafeFileError as exc:
            raise RunStateError(
                f"the output directory's lock file {exc.strerror}",
                file=str(out / _OUT_LOCK),
                hint="remove it; it is created by aiconfig runs, never as a link",
            ) from None
        except OSError as exc:
            raise RunStateError(
                f"cannot create the output directory: {exc.strerror}", file=str(out)
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunStateError(
                "another run is writing this output directory",
                file=str(out),
                hint="give each run its own --out",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {self.run_id}\n".encode(), 0)
        self._out_lock_fd = fd
        previous = out / MANIFEST_NAME
        if previous.exists():
            try:
                old_id = load_manifest(previous).get("run_id")
            except AiconfigError:
                old_id = None
            if old_id != self.run_id and self.shared_out:
                self.log.info("manifest.replaced", previous_run_id=old_id)
            elif old_id != self.run_id:
                raise RunStateError(
                    f"output directory already holds run {old_id!r}",
                    file=str(out),
                    hint="use a new --out per run id",
                )
            previous.unlink()  # a re-run of the same id: no stale 'succeeded' manifest meanwhile
        self._owns_out = True  # from here on the manifest in this directory is ours to write

    def mark_ready(self, **fields: Any) -> None:
        """Write the ready file (if ``--ready-file`` was given): devices open, checks passed."""
        if self.status != "running" or self.started_at is None:
            raise RunStateError("mark_ready() is only valid inside the run's with block")
        if self.settings.ready_file is None:
            self.log.info("run.ready", **fields)
            return
        self._wrote_ready = True  # set first: a write that fails half-way is still cleaned up
        write_ready_file(
            self.settings.ready_file,
            run_id=self.run_id,
            job=self.settings.job,
            started_at=self.started_at,
            out=str(self.out_dir),
            **fields,
        )
        self.log.info("run.ready", ready_file=str(self.settings.ready_file), **fields)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.status = "succeeded"
        elif isinstance(exc, Terminated | KeyboardInterrupt):
            self.status = "interrupted"
            self.error = str(exc) or type(exc).__name__
        else:
            self.status = "failed"
            self.error = _first_line(exc)
        self._teardown(success=exc is None)

    def _teardown(self, *, success: bool) -> None:
        s = self.settings
        if self._prev_sigterm is not None:
            # A second SIGTERM must not interrupt the cleanup itself (SIGKILL still works).
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if s.ready_file is not None and self._wrote_ready:
            remove_ready_file(s.ready_file, run_id=self.run_id)
        self.ended_at = _utc_now()
        if self._owns_out:
            if self.status == "pending":
                self.status = "failed"
            try:
                self._write_manifest()
            except OSError as exc:
                self.log.error("manifest.failed", error=str(exc))
        for lock in reversed(self._locks):
            lock.release()
        self._locks.clear()
        if self._out_lock_fd is not None:
            fcntl.flock(self._out_lock_fd, fcntl.LOCK_UN)
            os.close(self._out_lock_fd)
            self._out_lock_fd = None
        if self._prev_sigterm is not None:
            signal.signal(signal.SIGTERM, self._prev_sigterm)
            self._prev_sigterm = None
        tempfile.tempdir = self._prev_tempdir
        if success and s.tmp_dir.exists():
            shutil.rmtree(s.tmp_dir, ignore_errors=True)
            for parent in (s.tmp_dir.parent, s.tmp_dir.parent.parent):
                try:
                    parent.rmdir()  # only if empty: other runs may share RUN_DIR/tmp
                except OSError:
                    break
        if self._prev_rlimit is not None:
            resource.setrlimit(resource.RLIMIT_DATA, self._prev_rlimit)
        if s.no_network:
            network.set_offline(self._prev_offline)
        for name, value in self._prev_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self.log.info(
            "run.finished",
            status=self.status,
            error=self.error,
            manifest=None if self.manifest_path is None else str(self.manifest_path),
        )
        self.log.release_stdlib()

    def _write_manifest(self) -> None:
        skip = []
        ready = self.settings.ready_file
        if ready is not None and ready.is_relative_to(self.out_dir):
            skip.append(ready.relative_to(self.out_dir).as_posix())
        scope = self._scope
        if scope is None and self.shared_out:
            scope = []  # a shared directory holds other runs' files: list only what is ours
        artifacts = collect_artifacts(
            self.out_dir,
            annotations=self._annotations,
            skip=skip,
            chunk=self.budget.chunk_bytes(1024 * 1024),
            scope=scope,
        )
        body = {
            "run_id": self.run_id,
            "job": self.settings.job,
            "status": self.status,
            "error": self.error,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "pid": os.getpid(),
            "config": self._config,
            "settings": self.settings.to_dict(),
            **({} if scope is None else {"scope": scope}),
            **self._extra,
        }
        self.manifest_path = write_manifest(self.out_dir, body, artifacts)
