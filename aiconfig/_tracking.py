"""Experiment-tracker logging: the resolved config, its digest, signers and lineage.

:func:`flatten` turns a loaded config into ``section.key -> value`` pairs (every key is a
valid ``--set`` path; secrets redacted) for any tracker. :func:`log_to_mlflow` logs a config
into an MLflow run:

* params: the flattened config, values as JSON text (strings as they are);
* tags: ``aiconfig.digest``, ``aiconfig.signers``, ``aiconfig.lineage``,
  ``aiconfig.fork_overrides``, ``aiconfig.version`` and a few more (see ``TAGS``);
* artifacts under ``aiconfig/``: the config file and its ``.sig`` exactly as verified, the
  files and signatures of its bases (``aiconfig/bases/<step>/``), and ``resolved.json``,
  ``params.json`` and ``provenance.json``.

MLflow's limits are handled, not left to fail at the server: param and tag keys may only hold
letters, digits, ``_ - . / : space`` and 250 characters, param values 6000 characters and tag
values 8000 (``mlflow.utils.validation``). A key outside that is rewritten (invalid characters
become ``_``; a long one is cut and ends in a short digest of the full key, so two long keys
never collide); a long value is cut and ends with a pointer to ``aiconfig/params.json``,
which always holds every full key and value. Params are sent in batches of 100.

MLflow is an optional extra (``pip install "aiconfig[mlflow]"``) imported only here, inside
the functions.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import ConfigFileError, TrackingError
from ._keypath import is_secret_key
from ._overrides import format_path
from ._schema import AIConfig

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = ["MLFLOW_LIMITS", "TAGS", "TrackedRun", "flatten", "log_to_mlflow"]

REDACTED = "**********"
# mlflow.utils.validation: MAX_ENTITY_KEY_LENGTH, MAX_PARAM_VAL_LENGTH, MAX_TAG_VAL_LENGTH,
# MAX_PARAMS_TAGS_PER_BATCH (read from MLflow at run time; these are the values of MLflow 3).
MLFLOW_LIMITS = {"key": 250, "param_value": 6000, "tag_value": 8000, "batch": 100}
TAGS = (
    "aiconfig.digest",  # sha256 of the loaded file's exact bytes
    "aiconfig.path",
    "aiconfig.name",  # meta.name
    "aiconfig.config_version",  # meta.version
    "aiconfig.signed",  # "true" / "false"
    "aiconfig.signers",  # principal (fingerprint), ...
    "aiconfig.lineage",  # JSON: [{path, name, version, sha256, signers}, ...] from the root
    "aiconfig.fork_overrides",  # JSON: every override along the lineage, later steps winning
    "aiconfig.emergency",  # JSON: active emergency overrides ([] when none)
    "aiconfig.version",  # the aiconfig package version
)
_BAD_KEY_CHARS = re.compile(r"[^/\w.\- :]")
_ARTIFACT_DIR = "aiconfig"
_PARAMS_FILE = f"{_ARTIFACT_DIR}/params.json"


def _leaves(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(value, Mapping) and (value or not path):
        for key, sub in value.items():
            yield from _leaves(sub, (*path, str(key)))
        return
    segments = tuple(str(p) for p in path)
    if value is not None and any(is_secret_key(s) for s in segments):
        value = REDACTED
    yield segments, value


def flatten(config: AIConfig | Mapping[str, Any]) -> dict[str, Any]:
    """Every leaf of ``config`` as ``dotted.path -> value``, secrets redacted.

    ``config`` is a loaded :class:`AIConfig` (its resolved values, defaults filled in) or a
    plain mapping. Keys are the paths ``aiconfig fork --set`` takes (a map key holding a dot
    is quoted: ``monitoring.latency_thresholds_ms."Qwen/Qwen2.5-0.5B-Instruct"``); values are
    JSON-safe scalars, lists of them, or ``{}`` for an empty map.
    """
    data = config.model_dump(mode="json") if isinstance(config, AIConfig) else dict(config)
    return {format_path(segments): value for segments, value in _leaves(data)}


@dataclass(frozen=True)
class TrackedRun:
    """What :func:`log_to_mlflow` logged, and where."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    params: int
    tags: int
    artifacts: tuple[str, ...]
    rewritten_keys: dict[str, str]  # flattened key -> the MLflow key it was logged under
    truncated: tuple[str, ...]  # MLflow keys whose value was cut (full value in params.json)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]


def _mlflow_key(segments: Sequence[str], limit: int) -> str:
    key = _BAD_KEY_CHARS.sub("_", ".".join(segments))
    # MLflow also refuses keys that are not a normalized relative path ("a//b", "/a", "..").
    key = re.sub(r"/{2,}", "/", key).strip("/")
    key = "/".join("_" if part in (".", "..") else part for part in key.split("/")) or "_"
    if len(key) > limit:
        key = f"{key[: limit - 12]}--{_digest('.'.join(segments))}"
    return key


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _cut(value: str, limit: int, where: str) -> tuple[str, bool]:
    if len(value) <= limit:
        return value, False
    marker = f"...[cut at {limit} characters; full value in {where}]"
    return value[: limit - len(marker)] + marker, True


def _mlflow_params(config: AIConfig) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(MLflow key -> value, flattened key -> rewritten MLflow key, truncated MLflow keys)."""
    data = config.model_dump(mode="json")
    params: dict[str, str] = {}
    rewritten: dict[str, str] = {}
    truncated: list[str] = []
    for segments, value in _leaves(data):
        key = _mlflow_key(segments, MLFLOW_LIMITS["key"])
        if key in params:  # two paths fold onto one key after rewriting: keep both apart
            unique = f"{segments[-1]}--{_digest('.'.join(segments))}"
            key = _mlflow_key((*segments[:-1], unique), MLFLOW_LIMITS["key"])
        flat = format_path(segments)
        if key != flat:
            rewritten[flat] = key
        text, cut = _cut(_text(value), MLFLOW_LIMITS["param_value"], _PARAMS_FILE)
        if cut:
            truncated.append(key)
        params[key] = text
    return params, rewritten, truncated


def _tags(config: AIConfig) -> dict[str, str]:
    from . import __version__

    prov = config.provenance
    lineage = [
        {k: step.get(k) for k in ("path", "name", "version", "sha256", "signers")}
        for step in prov.lineage
    ]
    overrides: dict[str, Any] = {}
    for step in prov.lineage[1:]:
        overrides.update(step.get("overrides", {}))
    emergency = getattr(prov, "emergency", None) or []
    tags = {
        "aiconfig.digest": prov.sha256,
        "aiconfig.path": prov.path,
        "aiconfig.name": config.meta.name,
        "aiconfig.config_version": str(config.meta.version),
        "aiconfig.signed": "true" if prov.signed else "false",
        "aiconfig.signers": ", ".join(f"{s.principal} ({s.fingerprint})" for s in prov.signers),
        "aiconfig.lineage": json.dumps(lineage, ensure_ascii=False),
        "aiconfig.fork_overrides": json.dumps(overrides, ensure_ascii=False, default=str),
        "aiconfig.emergency": json.dumps(emergency, ensure_ascii=False, default=str),
        "aiconfig.version": __version__,
    }
    limit = MLFLOW_LIMITS["tag_value"]
    return {k: _cut(v, limit, f"{_ARTIFACT_DIR}/provenance.json")[0] for k, v in tags.items()}


def _verified_bytes(path: str, sha256: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigFileError(
            f"cannot read the loaded config to log it ({exc.strerror})",
            file=path,
            hint="log the config from the same working directory it was loaded from",
        ) from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ConfigFileError(
            "the file changed after it was loaded; refusing to log bytes that were not verified",
            file=path,
            hint="load the config again, then log it",
        )
    return data


def _stage_artifacts(config: AIConfig, params: Mapping[str, Any], root: Path) -> list[str]:
    """Write the artifacts under ``root/aiconfig``; return their artifact paths."""
    prov = config.provenance
    out = root / _ARTIFACT_DIR
    (out / "bases").mkdir(parents=True)
    written: list[str] = []

    def put(rel: str, data: bytes) -> None:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(f"{_ARTIFACT_DIR}/{rel}")

    steps = list(prov.lineage) or [{"path": prov.path, "sha256": prov.sha256}]
    for index, step in enumerate(steps):
        path, sha = str(step["path"]), str(step["sha256"])
        if path == "<memory>" or not sha:
            continue  # made in memory (fork_for_experiment): nothing on disk to log
        prefix = "" if index == len(steps) - 1 else f"bases/{index}/"
        name = Path(path).name
        put(prefix + name, _verified_bytes(path, sha))
        sig = Path(path + ".sig")
        if sig.is_file():
            put(prefix + sig.name, sig.read_bytes())
    resolved = _redacted_dump(config)
    put("resolved.json", (json.dumps(resolved, indent=2, ensure_ascii=False) + "\n").encode())
    put("params.json", (json.dumps(dict(params), indent=2, ensure_ascii=False) + "\n").encode())
    record = {**prov.to_dict(), "emergency": getattr(prov, "emergency", None) or []}
    put("provenance.json", (json.dumps(record, indent=2, default=str) + "\n").encode())
    return written


def _redacted_dump(config: AIConfig) -> Any:
    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: walk(v, str(k)) for k, v in value.items()}
        if key and is_secret_key(key) and value is not None:
            return REDACTED
        return value

    return walk(config.model_dump(mode="json"))


def _client(tracking_uri: str | None) -> MlflowClient:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise TrackingError(
            "MLflow is not installed",
            hint='pip install "aiconfig[mlflow]" (or: pip install mlflow)',
        ) from None
    return MlflowClient(tracking_uri=tracking_uri)


def log_to_mlflow(
    config: AIConfig,
    *,
    tracking_uri: str | None = None,
    run_id: str | None = None,
    experiment: str | None = None,
    run_name: str | None = None,
) -> TrackedRun:
    """Log ``config`` (a loaded config) into an MLflow run; return what was logged.

    With ``run_id``, into that existing run; otherwise into the active ``mlflow`` run if there
    is one, else into a new run of ``experiment`` (default: the root baseline's
    ``meta.name``), which is finished afterwards. ``tracking_uri`` defaults to MLflow's own
    (``MLFLOW_TRACKING_URI``); a local store is ``sqlite:///mlflow.db``. MLflow refusals
    (an unknown run, a param that already holds a different value) raise
    :class:`TrackingError`.
    """
    from mlflow.entities import Param, RunTag
    from mlflow.exceptions import MlflowException

    if run_id is None and tracking_uri is None:
        import mlflow

        active = mlflow.active_run()
        run_id = active.info.run_id if active is not None else None
    where = tracking_uri or "the default MLflow tracking URI"
    params, rewritten, truncated = _mlflow_params(config)
    tags = _tags(config)
    try:
        client = _client(tracking_uri)
        created = run_id is None
        if run_id is None:
            name = experiment or (config.provenance.lineage or [{}])[0].get("name")
            name = str(name or config.meta.name)
            found = client.get_experiment_by_name(name)
            experiment_id = (
                found.experiment_id
                if found
                else client.create_experiment(
                    name, artifact_location=_artifact_location(tracking_uri)
                )
            )
            run = client.create_run(
                experiment_id, run_name=run_name or f"{config.meta.name}-v{config.meta.version}"
            )
            run_id = run.info.run_id
        else:
            run = client.get_run(run_id)
            experiment_id = run.info.experiment_id
        batch = MLFLOW_LIMITS["batch"]
        items = list(params.items())
        for start in range(0, len(items), batch):
            chunk = [Param(k, v) for k, v in items[start : start + batch]]
            client.log_batch(run_id, params=chunk)
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        with tempfile.TemporaryDirectory(prefix="aiconfig-track-") as tmp:
            flat = flatten(config)
            artifacts = _stage_artifacts(config, flat, Path(tmp))
            client.log_artifacts(run_id, str(Path(tmp) / _ARTIFACT_DIR), _ARTIFACT_DIR)
        if created:
            client.set_terminated(run_id)
    except MlflowException as exc:
        if "API request to" in exc.message and "failed with exception" in exc.message:
            reason = "connection refused" if "refused" in exc.message else "request failed"
            raise TrackingError(
                f"cannot reach the MLflow tracking server at {where} ({reason})",
                file=config.provenance.path,
                hint="start it (mlflow server --host 127.0.0.1) or check --mlflow",
            ) from None
        raise TrackingError(
            f"MLflow refused: {_first_line(exc.message)}",
            file=config.provenance.path,
            hint=_hint(exc, run_id, where),
        ) from None
    except OSError as exc:  # requests' connection errors are OSErrors too
        raise TrackingError(
            f"cannot reach the MLflow tracking store at {where}: {_first_line(str(exc))}",
            file=config.provenance.path,
            hint="check --mlflow (e.g. sqlite:///mlflow.db or http://127.0.0.1:5000)",
        ) from None
    return TrackedRun(
        run_id=run_id,
        experiment_id=str(experiment_id),
        tracking_uri=client.tracking_uri,
        params=len(params),
        tags=len(tags),
        artifacts=tuple(artifacts),
        rewritten_keys=rewritten,
        truncated=tuple(truncated),
    )


def _artifact_location(tracking_uri: str | None) -> str | None:
    """Artifacts of a new experiment in a local SQLite store go beside the database file.

    (MLflow's default is ``./mlruns`` in whatever directory the process happens to run in.)
    """
    prefix = "sqlite:///"
    if tracking_uri is None or not tracking_uri.startswith(prefix):
        return None
    db = Path(tracking_uri[len(prefix) :].split("?", 1)[0])
    return (db.resolve().parent / "mlartifacts").as_uri()


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else "(no message)"


def _hint(exc: Any, run_id: str | None, where: str) -> str:
    code = getattr(exc, "error_code", "")
    if code == "RESOURCE_DOES_NOT_EXIST":
        return f"no run {run_id} at {where}: check --run-id, or leave it out to start a new run"
    if "Changing param values is not allowed" in str(exc):
        return (
            f"run {run_id} already holds another config; log this one into a new run "
            "(leave out --run-id)"
        )
    return f"check the tracking store at {where}"
