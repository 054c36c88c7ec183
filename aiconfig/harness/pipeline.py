"""The processing pipeline: validate persisted capture sessions and write ``fixture_report.json``.

Input is a manifest listing session directories, in either form:

* ``{"sessions": ["session_20261121_183000", {"path": "/abs/session_..."}]}``, or
* an aiconfig run manifest (``aiconfig.run-manifest/1``, e.g. a capture run's
  ``manifest.json``): every directory holding a listed ``metadata.json`` is a session.

Relative paths resolve against the manifest's directory, then against the data root. The
optional config template (JSON) sets quality thresholds; unknown keys are refused.

Further steps come from entry-point plugins (group ``aiconfig.plugins``, loaded under the plugin
policy, ``--step NAME``). A step is a callable declaring ``kind = "pipeline_step"`` (a class is
instantiated once, without arguments)::

    def step(session_dir: Path, stats: dict[str, Any], out_dir: Path) -> dict[str, Any]: ...

It runs on every valid session, reads the session (never writes it), may write files under
``out_dir`` (``OUT/steps/<name>/<session_id>/``, created for it; they become run artifacts) and
returns JSON-able results, stored in the report as ``sessions[i].steps.<name>``. A step that
raises makes that session invalid, with the step's error as the problem.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from .._bounded import load_json_capped
from .._errors import (
    BudgetError,
    ConfigFileError,
    ConfigValidationError,
    ManifestError,
    SessionError,
)
from .._files import atomic_write_json
from .context import RunContext
from .manifest import SCHEMA_VERSION as RUN_MANIFEST_SCHEMA
from .settings import RunSettings

if TYPE_CHECKING:
    from .sessions import SessionReport, Thresholds

__all__ = [
    "REPORT_NAME",
    "REPORT_SCHEMA",
    "load_template",
    "process_sessions",
    "read_session_list",
    "run_pipeline",
]

# numpy, pyarrow and PyAV (which the session reader imports lazily) load on entering the run,
# under the budget's thread and allocator settings (OpenBLAS and Arrow read them on load).
_PRELOAD = ("aiconfig.harness.sessions", "numpy", "pyarrow.parquet", "pyarrow.compute", "av")

REPORT_NAME = "fixture_report.json"
REPORT_SCHEMA = "aiconfig.fixture-report/1"
_TEMPLATE_KEYS = {
    "schema_version": str,
    "description": str,
    "max_drop_rate": float,
    "max_capture_jitter_ms": float,
    "max_capture_lag_ms": float,
    "action_event_types": list,
    "require_webcam": bool,
    "require_audio": bool,
}


def load_template(path: Path | None) -> tuple[Thresholds, dict[str, Any] | None]:
    """Thresholds from a JSON config template, and ``{"path", "sha256"}`` for provenance."""
    from ..sessions import INPUT_EVENT_TYPES
    from .sessions import Thresholds

    if path is None:
        return Thresholds(), None
    try:
        raw = path.read_bytes()
        doc = json.loads(raw)
    except OSError as exc:
        raise ConfigFileError(
            f"cannot read config template: {exc.strerror}", file=str(path)
        ) from None
    except ValueError as exc:
        raise ConfigValidationError(f"config template is not JSON: {exc}", file=str(path)) from None
    if not isinstance(doc, dict):
        raise ConfigValidationError("config template is not a JSON object", file=str(path))
    problems = []
    values: dict[str, Any] = {}
    for key, value in doc.items():
        want = _TEMPLATE_KEYS.get(key)
        if want is None:
            problems.append(f"unknown key {key!r} (known: {', '.join(sorted(_TEMPLATE_KEYS))})")
        elif want is float and isinstance(value, int | float) and not isinstance(value, bool):
            values[key] = float(value)
        elif want is list and isinstance(value, list) and all(isinstance(v, str) for v in value):
            values[key] = tuple(value)
        elif want in (str, bool) and isinstance(value, want):
            values[key] = value
        else:
            problems.append(f"{key} must be {want.__name__}, got {type(value).__name__}")
    unknown = [t for t in values.get("action_event_types", ()) if t not in INPUT_EVENT_TYPES]
    if unknown:
        problems.append(
            f"action_event_types: {', '.join(map(repr, unknown))} is not an input event type the "
            f"recorder writes (use: {', '.join(INPUT_EVENT_TYPES)})"
        )
    if problems:
        raise ConfigValidationError("; ".join(problems), file=str(path))
    values.pop("schema_version", None)
    values.pop("description", None)
    provenance = {"path": str(path), "sha256": hashlib.sha256(raw).hexdigest()}
    return Thresholds(**values), provenance


def _resolve(entry: str, base: Path, data_root: Path | None) -> Path:
    p = Path(entry)
    if p.is_absolute():
        return p
    if (base / p).exists() or data_root is None:
        return base / p
    return data_root / p


def read_session_list(manifest: Path, data_root: Path | None) -> list[Path]:
    """Session directories listed by ``manifest`` (see module docstring), in manifest order."""
    try:
        doc = load_json_capped(manifest, what="input manifest")
    except FileNotFoundError:
        raise ManifestError("input manifest not found", file=str(manifest)) from None
    except ConfigFileError as exc:
        raise ManifestError(
            f"unreadable input manifest: {exc.problems[0].message}", file=str(manifest)
        ) from None
    base = manifest.parent
    entries: list[str] = []
    if isinstance(doc, Mapping) and isinstance(doc.get("sessions"), list):
        for i, item in enumerate(doc["sessions"]):
            value = item.get("path") if isinstance(item, Mapping) else item
            if not isinstance(value, str) or not value:
                raise ManifestError("entry has no path", file=str(manifest), path=f"sessions[{i}]")
            entries.append(value)
    elif isinstance(doc, Mapping) and doc.get("schema_version") == RUN_MANIFEST_SCHEMA:
        for art in doc.get("artifacts", []):
            rel = PurePosixPath(str(art.get("path", "")) if isinstance(art, Mapping) else "")
            if rel.name == "metadata.json" and str(rel.parent) not in entries:
                entries.append(str(rel.parent))
    else:
        raise ManifestError(
            "input manifest lists no sessions",
            file=str(manifest),
            expected='{"sessions": [...]} or an aiconfig run manifest',
        )
    if not entries:
        raise ManifestError("input manifest lists no sessions", file=str(manifest))
    return [_resolve(e, base, data_root) for e in entries]


def _totals(reports: list[SessionReport]) -> dict[str, Any]:
    valid = [r for r in reports if r.valid]
    minutes = sum(r.stats.get("duration_s", 0.0) for r in valid) / 60.0
    frames = sum(r.stats.get("video_frames", 0) for r in valid)
    actions = sum(r.stats.get("actions", 0) for r in valid)
    return {
        "sessions": len(reports),
        "valid": len(valid),
        "invalid": len(reports) - len(valid),
        "degraded": sum(1 for r in valid if r.degraded_by),
        "duration_s": round(minutes * 60.0, 3),
        "video_frames": frames,
        "dropped_frames": sum(r.stats.get("dropped_frames", 0) for r in valid),
        "input_events": sum(r.stats.get("input_events", 0) for r in valid),
        "actions_per_minute": round(actions / minutes, 2) if minutes > 0 else None,
    }


STEP_KIND = "pipeline_step"


def _callable(obj: Any) -> Any:
    return obj() if isinstance(obj, type) else obj


def _component(name: str) -> str:
    """``name`` as one safe path component (no separators, not ``.`` or ``..``)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    return safe if safe.strip(".") else "_" + safe


def _run_steps(rep: SessionReport, path: Path, steps: Mapping[str, Any], out: Path) -> None:
    for name, step in steps.items():
        # From the directory, never from the session's content: a recorded session_id of
        # "../../tmp/x" must not choose where a step writes.
        step_out = out / "steps" / _component(name) / _component(Path(path).resolve().name)
        try:
            step_out.mkdir(parents=True, exist_ok=True)
            result = step(path, dict(rep.stats), step_out)
            rep.steps[name] = json.loads(json.dumps(result if result is not None else {}))
        except Exception as exc:  # noqa: BLE001 - a failed step is reported per session
            text = f"{type(exc).__name__}: {exc}".splitlines()[0]
            rep.problems.append(f"step {name!r} failed: {text}")
            rep.steps[name] = {"error": text}
        with contextlib.suppress(OSError):
            step_out.rmdir()  # only if the step wrote nothing
            step_out.parent.rmdir()


def run_pipeline(
    run: RunContext,
    *,
    manifest: Path,
    template: Path | None = None,
    force_idle: bool = False,
    steps: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Analyse every session, write ``fixture_report.json`` in ``run.out_dir``; return the report.

    Raises SessionError after writing the report when any session is invalid.
    """
    from .sessions import analyze_session

    run.budget.apply_libraries()  # pyarrow is imported by now: cap its pools and allocator
    thresholds, template_info = load_template(template)
    if template_info is not None:
        run.set_config(sha256=template_info["sha256"], path=template_info["path"])
    sessions = read_session_list(manifest, run.settings.data_root)
    run.log.info("pipeline.sessions", count=len(sessions), manifest=str(manifest))
    run.mark_ready(sessions=len(sessions))
    batch_rows = max(1024, min(65536, run.budget.chunk_bytes(8 << 20) // 64))
    workers = min(run.budget.threads, len(sessions))

    step_fns = {name: _callable(obj) for name, obj in (steps or {}).items()}

    def one(path: Path) -> SessionReport:
        rep = analyze_session(path, thresholds=thresholds, batch_rows=batch_rows)
        if rep.valid:
            _run_steps(rep, path, step_fns, run.out_dir)
        run.log.info(
            "pipeline.session",
            path=str(path),
            quality=rep.quality,
            problems=rep.problems,
            degraded_by=rep.degraded_by,
            warnings=rep.warnings,
        )
        return rep

    if workers <= 1:
        reports = [one(path) for path in sessions]  # one core: no pool, no extra thread
    else:
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pipeline")
        try:
            reports = list(pool.map(one, sessions))
        except RuntimeError as exc:
            if "can't start new thread" not in str(exc):
                raise
            raise BudgetError(
                "cannot start worker threads within the memory budget",
                path="AP_MEM_LIMIT_MB",
                hint="raise AP_MEM_LIMIT_MB or lower AP_CPU_LIMIT",
            ) from None
        finally:
            # On SIGTERM or an error, sessions not yet started are cancelled, not processed.
            pool.shutdown(wait=True, cancel_futures=True)
    totals = _totals(reports)
    report: dict[str, Any] = {
        "schema_version": REPORT_SCHEMA,
        "run_id": run.run_id,
        "generated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "input_manifest": str(manifest),
        "config_template": template_info,
        "thresholds": {
            "max_drop_rate": thresholds.max_drop_rate,
            "max_capture_jitter_ms": thresholds.max_capture_jitter_ms,
            "max_capture_lag_ms": thresholds.max_capture_lag_ms,
            "action_event_types": list(thresholds.action_event_types),
            "require_webcam": thresholds.require_webcam,
            "require_audio": thresholds.require_audio,
        },
        "force_idle": force_idle,
        "steps": sorted(step_fns),
        "offline": run.settings.no_network,
        "budget": {"cpus": run.budget.cpus, "mem_limit_mb": run.budget.mem_limit_mb},
        "totals": totals,
        "sessions": [r.to_dict() for r in reports],
    }
    atomic_write_json(run.out_dir / REPORT_NAME, report)
    run.add_artifact(REPORT_NAME, kind="report")
    run.set_extra(report_totals=totals)
    run.log.info("pipeline.report", path=str(run.out_dir / REPORT_NAME), **totals)
    bad = [r for r in reports if not r.valid]
    if bad:
        first = bad[0]
        raise SessionError(
            f"{len(bad)} of {len(reports)} sessions invalid; first: {first.problems[0]}",
            file=first.path,
            hint=f"see {run.out_dir / REPORT_NAME}",
        )
    return report


def process_sessions(
    settings: RunSettings,
    *,
    manifest: Path,
    template: Path | None = None,
    force_idle: bool = False,
    steps: Sequence[str] = (),
) -> dict[str, Any]:
    """The pipeline job: :func:`run_pipeline` as a run (:class:`RunContext`) of ``settings``.

    The ``steps`` plugins load inside the run, so offline mode refuses one that needs the
    network. Returns the report; raises as :func:`run_pipeline` does (the run is then failed).
    """
    from .plugins import load_named

    with RunContext(settings, preload=_PRELOAD) as run:
        step_objs = load_named(steps, kind=STEP_KIND, what="pipeline step")
        return run_pipeline(
            run, manifest=manifest, template=template, force_idle=force_idle, steps=step_objs
        )
