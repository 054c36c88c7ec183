"""Preflight of the external vLLM sidecar: is it up, OpenAI-compatible, and serving our model?

aiconfig never launches vLLM (the orchestrator owns it). Before a job depends on the sidecar it
runs :func:`preflight`, which tries, in order:

1. offline policy -- with ``AP_NO_NETWORK=1`` only a loopback ``base_url`` is allowed;
2. ``GET /health`` -- vLLM answers 200 with an empty body once the engine is up (no API key);
3. ``GET /v1/models`` -- with the API key when one is configured (vLLM guards ``/v1`` only);
4. the configured model is among the served ids.

Every step records what was tried, what answered and, on failure, how to fix it; the job fails
closed with all of it (:class:`SidecarNotReady`). ``wait_s`` keeps polling while the failure is
transient (nothing listening yet -- vLLM opens its port only after loading the model -- a 503, or
a timeout) and stops at once on a permanent one (401, wrong model, not OpenAI-compatible).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from aiconfig import Problem, VLLMConfig
from aiconfig._network import check_network_allowed

from ._errors import OfflineModeError, SidecarNotReady
from ._http import error_message, make_client

__all__ = ["Check", "SidecarDiagnosis", "ensure_ready", "preflight"]

_POLL_S = 0.25
_BUSY_BACKOFF_S = 0.1


@dataclass(frozen=True)
class Check:
    """One preflight step."""

    name: str
    tried: str
    answered: str
    ok: bool
    hint: str | None = None
    transient: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class SidecarDiagnosis:
    """The outcome of a preflight: ready or not, and every check behind that verdict."""

    base_url: str
    model: str
    ready: bool
    checks: tuple[Check, ...]
    served_models: tuple[str, ...] = ()
    attempts: int = 1
    elapsed_ms: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def render(self) -> list[str]:
        """Human lines: verdict, then ``[ok]``/``[FAIL]`` per check with answer and fix."""
        verdict = "ready" if self.ready else "NOT READY"
        lines = [f"vLLM sidecar at {self.base_url} for model '{self.model}': {verdict}"]
        for c in self.checks:
            mark = "ok" if c.ok else "FAIL"
            lines.append(f"  [{mark}] {c.name}: tried {c.tried} -> {c.answered}")
            if c.hint and not c.ok:
                lines.append(f"         fix: {c.hint}")
        if self.attempts > 1:
            lines.append(f"  ({self.attempts} attempts over {self.elapsed_ms / 1000:.1f} s)")
        return lines

    def problems(self) -> list[Problem]:
        return [
            Problem(f"vLLM sidecar {c.name} failed: tried {c.tried}, got {c.answered}", hint=c.hint)
            for c in self.checks
            if not c.ok
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "model": self.model,
            "ready": self.ready,
            "served_models": list(self.served_models),
            "attempts": self.attempts,
            "elapsed_ms": round(self.elapsed_ms, 1),
            "checks": [c.to_dict() for c in self.checks],
        }


def _describe_transport_error(exc: httpx.HTTPError, url: str, timeout_s: float) -> Check:
    tried = f"GET {url}"
    if isinstance(exc, httpx.ConnectError):
        return Check(
            "health",
            tried,
            f"connection refused ({exc})",
            False,
            "nothing is listening: the sidecar is down or still loading the model (vLLM "
            "opens its port only once the model is loaded). Start it, e.g. "
            "`vllm serve MODEL --host 127.0.0.1 --port 8000`, or wait and retry "
            "(`aiconfig check-sidecar --wait 120`)",
            transient=True,
        )
    if isinstance(exc, httpx.TimeoutException):
        return Check(
            "health",
            tried,
            f"no answer within {timeout_s:g} s ({type(exc).__name__})",
            False,
            "the port accepts connections but the server does not answer: it may be starting "
            "or overloaded; retry, or raise inference.vllm.connect_timeout_s",
            transient=True,
        )
    return Check(
        "health", tried, f"{type(exc).__name__}: {exc}", False, "check inference.vllm.base_url"
    )


async def _preflight_once(
    cfg: VLLMConfig, base_url: str, model: str, transport: httpx.AsyncBaseTransport | None
) -> tuple[list[Check], tuple[str, ...]]:
    """One pass over the checks: health, then the model list, then our model in it."""
    timeout = cfg.connect_timeout_s
    async with make_client(
        cfg, base_url=base_url, transport=transport, read_timeout_s=timeout
    ) as client:
        health = await _check_health(client, f"{base_url}/health", timeout)
        if not health.ok:
            return [health], ()
        checks, served = await _check_models(client, cfg, f"{base_url}/v1/models", timeout)
    if checks[-1].ok:
        checks.append(_check_model(model, served))
    return [health, *checks], served


async def _check_health(client: httpx.AsyncClient, url: str, timeout: float) -> Check:
    """``GET /health``: 200 once the engine is up; 503 while loading; no key needed."""
    tried = f"GET {url}"
    try:
        resp = await client.get("/health")
    except httpx.HTTPError as exc:
        return _describe_transport_error(exc, url, timeout)
    status, body = resp.status_code, error_message(resp.content)
    if status == 200:
        return Check("health", tried, "200 OK", True)
    if status == 503:
        return Check(
            "health",
            tried,
            f"503 Service Unavailable ({body})",
            False,
            "the server is up but not ready (loading the model, sleeping, or busy); "
            "retry within the budget or wait (`aiconfig check-sidecar --wait 120`)",
            transient=True,
        )
    if status == 401:
        return Check(
            "health",
            tried,
            f"401 Unauthorized ({body})",
            False,
            "vLLM serves /health without a key, so a proxy in front of it wants one: "
            "set inference.vllm.api_key or fix inference.vllm.base_url",
        )
    return Check(
        "health",
        tried,
        f"{status} {resp.reason_phrase} ({body})",
        False,
        "this does not look like a healthy vLLM server: check inference.vllm.base_url "
        "and the sidecar's logs",
        transient=status >= 500,
    )


async def _check_models(
    client: httpx.AsyncClient, cfg: VLLMConfig, url: str, timeout: float
) -> tuple[list[Check], tuple[str, ...]]:
    """``GET /v1/models`` with the API key when one is set (vLLM guards ``/v1`` only)."""
    key_note = "with API key" if cfg.api_key is not None else "without API key"
    tried = f"GET {url} ({key_note})"
    try:
        resp = await client.get("/v1/models")
    except httpx.HTTPError as exc:
        check = _describe_transport_error(exc, url, timeout)
        return [Check("models", tried, check.answered, False, check.hint, True)], ()
    if resp.status_code == 401:
        hint = (
            "the configured API key was rejected: set inference.vllm.api_key to the key the "
            "sidecar was started with (--api-key / VLLM_API_KEY)"
            if cfg.api_key is not None
            else "the sidecar requires an API key: set inference.vllm.api_key, e.g. "
            "'${oc.env:VLLM_API_KEY}'"
        )
        answered = f"401 Unauthorized ({error_message(resp.content)})"
        return [Check("api key", tried, answered, False, hint)], ()
    if resp.status_code == 503:
        busy = Check(
            "models",
            tried,
            f"503 Service Unavailable ({error_message(resp.content)})",
            False,
            "the server is busy or still loading; retry within the budget",
            transient=True,
        )
        return [busy], ()
    served = _served_models(resp)
    if served is None:
        bad = Check(
            "models",
            tried,
            f"{resp.status_code} {resp.reason_phrase} ({error_message(resp.content, 120)})",
            False,
            "the server at base_url is not OpenAI-compatible (no model list): check "
            "inference.vllm.base_url points at vLLM's OpenAI server",
        )
        return [bad], ()
    checks = [Check("api key", tried, "accepted", True)] if cfg.api_key is not None else []
    checks.append(Check("models", tried, f"200 OK, serving {json.dumps(list(served))}", True))
    return checks, served


def _served_models(resp: httpx.Response) -> tuple[str, ...] | None:
    """The ids of an OpenAI model list, or None when the answer is not one."""
    if resp.status_code != 200:
        return None
    try:
        return tuple(str(m["id"]) for m in resp.json()["data"])
    except (ValueError, KeyError, TypeError):
        return None


def _check_model(model: str, served: tuple[str, ...]) -> Check:
    """The configured model is among the served ids."""
    tried = f"'{model}' in served models"
    if model in served:
        return Check("model", tried, "found", True)
    listed = ", ".join(served) if served else "nothing"
    return Check(
        "model",
        tried,
        f"missing; the sidecar serves: {listed}",
        False,
        f"set inference.vllm.model to one of [{listed}], or start vLLM with "
        f"--served-model-name {model}",
    )


async def preflight(
    cfg: VLLMConfig,
    *,
    base_url: str | None = None,
    model: str | None = None,
    wait_s: float = 0.0,
    transport: httpx.AsyncBaseTransport | None = None,
    environ: Mapping[str, str] | None = None,
) -> SidecarDiagnosis:
    """Check the sidecar; poll up to ``wait_s`` seconds while the failure is transient.

    Never raises for a sidecar problem: the verdict and the reasons are in the diagnosis.
    """
    url = (base_url or cfg.base_url).rstrip("/")
    want = model or cfg.model
    t0 = time.monotonic()
    try:
        check_network_allowed(url, purpose="the vLLM sidecar", environ=environ)
    except OfflineModeError as exc:
        check = Check(
            "offline policy",
            f"connect to {url} with AP_NO_NETWORK=1",
            "refused: not a loopback address",
            False,
            exc.problems[0].hint,
        )
        return SidecarDiagnosis(url, want, False, (check,))
    attempts = 0
    busy_retries = 0
    while True:
        attempts += 1
        checks, served = await _preflight_once(cfg, url, want, transport)
        ready = all(c.ok for c in checks)
        failed = [c for c in checks if not c.ok]
        transient = any(c.transient for c in failed)
        left = wait_s - (time.monotonic() - t0)
        if ready or not transient:
            break
        if left <= 0:
            # A 503 means busy: retry it a few times (inference.vllm.retries_on_busy) with a
            # short backoff even without --wait; "nothing listening" is not retried then.
            if not any(c.answered.startswith("503") for c in failed):
                break
            if busy_retries >= cfg.retries_on_busy:
                break
            busy_retries += 1
            await asyncio.sleep(_BUSY_BACKOFF_S * 2 ** (busy_retries - 1))
            continue
        await asyncio.sleep(min(_POLL_S, left))
    policy = Check(
        "offline policy", f"base_url {url}", "allowed (loopback or network permitted)", True
    )
    return SidecarDiagnosis(
        url,
        want,
        ready,
        (policy, *checks),
        served,
        attempts,
        (time.monotonic() - t0) * 1000.0,
    )


async def ensure_ready(cfg: VLLMConfig, **kwargs: Any) -> SidecarDiagnosis:
    """:func:`preflight`; raises :class:`SidecarNotReady` with every failed check if not ready."""
    diagnosis = await preflight(cfg, **kwargs)
    if not diagnosis.ready:
        raise SidecarNotReady(diagnosis.problems(), diagnosis)
    return diagnosis
