"""Client for the external vLLM sidecar (OpenAI-compatible HTTP); never launches vLLM.

Each call is a :class:`GenerationRequest` run through :class:`AIModelInterface`, so it gets the
latency budget, bounded concurrency/queue and telemetry like any model. On top of that, each call
is a GenAI client span (``chat MODEL`` / ``text_completion MODEL``, kind CLIENT) and records
``gen_ai.client.operation.duration`` and ``gen_ai.client.token.usage`` with the GenAI semantic
convention attributes. A 503 (busy / loading) is retried up to ``retries_on_busy`` times, with
backoff and ``Retry-After`` honoured, but never past the call's deadline.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind

from aiconfig import InferenceConfig, VLLMConfig
from aiconfig._network import check_network_allowed

from ._call import InferenceResult, LatencyObserver, Slot
from ._errors import LatencyBudgetExceeded, SidecarRequestError
from ._http import error_message, make_client, server_address
from ._interface import AIModelInterface

__all__ = ["Generation", "GenerationRequest", "VLLMClient"]

Operation = Literal["chat", "text_completion"]

# GenAI semantic conventions: gen_ai.client.operation.duration bucket advice (seconds).
_GENAI_DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
_GENAI_TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
_BACKOFF_S = 0.05
_MAX_RETRY_AFTER_S = 30.0


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    operation: Operation
    prompt: str | None = None
    messages: tuple[Mapping[str, str], ...] = ()
    max_tokens: int | None = None
    temperature: float | None = None
    stream: bool = False


@dataclass(frozen=True, slots=True)
class Generation:
    """The text a call produced, plus what the server said about it."""

    text: str
    model: str
    finish_reason: str | None
    input_tokens: int | None
    output_tokens: int | None
    response_id: str | None
    streamed: bool
    time_to_first_chunk_ms: float | None = None
    attempts: int = 1


class VLLMClient(AIModelInterface[GenerationRequest, Generation]):
    """OpenAI-compatible client for ``/v1/chat/completions`` and ``/v1/completions``."""

    backend = "vllm"
    _span_kind = SpanKind.CLIENT
    _span_in_context = True

    def __init__(
        self,
        cfg: VLLMConfig,
        *,
        latency_budget_ms: float = 30_000.0,
        max_concurrency: int = 4,
        max_queue: int = 16,
        transport: httpx.AsyncBaseTransport | None = None,
        environ: Mapping[str, str] | None = None,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        observers: tuple[LatencyObserver, ...] = (),
    ) -> None:
        check_network_allowed(
            cfg.base_url,
            purpose="the vLLM sidecar",
            key_path="inference.vllm.base_url",
            environ=environ,
        )
        super().__init__(
            cfg.model,
            latency_budget_ms=latency_budget_ms,
            max_concurrency=max_concurrency,
            max_queue=max_queue,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            observers=observers,
        )
        self.cfg = cfg
        self._client = make_client(cfg, transport=transport)
        host, port = server_address(cfg.base_url)
        self._genai_base = {
            "gen_ai.provider.name": "vllm",
            # Pre-1.37 name of gen_ai.provider.name, still read by many back-ends.
            "gen_ai.system": "vllm",
            "gen_ai.request.model": cfg.model,
            "server.address": host,
            "server.port": port,
        }
        meter = metrics.get_meter("aiconfig.inference.vllm", meter_provider=meter_provider)
        self._m_op = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=_GENAI_DURATION_BUCKETS,
        )
        self._m_tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=_GENAI_TOKEN_BUCKETS,
        )

    @classmethod
    def from_config(cls, cfg: InferenceConfig, **kwargs: Any) -> VLLMClient:
        return cls(
            cfg.vllm,
            latency_budget_ms=cfg.latency_budget_ms,
            max_concurrency=cfg.max_concurrency,
            max_queue=cfg.max_queue,
            **kwargs,
        )

    # -- public API --------------------------------------------------------------------------

    async def chat(
        self,
        messages: Sequence[Mapping[str, str]] | str,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stream: bool = False,
        budget_ms: float | None = None,
    ) -> InferenceResult[Generation]:
        """``POST /v1/chat/completions``; a plain string is sent as one user message."""
        if isinstance(messages, str):
            messages = ({"role": "user", "content": messages},)
        req = GenerationRequest(
            "chat",
            messages=tuple(messages),
            max_tokens=max_tokens,
            temperature=temperature,
            stream=stream,
        )
        return await self.infer(req, budget_ms=budget_ms)

    async def complete(
        self,
        prompt: str,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stream: bool = False,
        budget_ms: float | None = None,
    ) -> InferenceResult[Generation]:
        """``POST /v1/completions``."""
        req = GenerationRequest(
            "text_completion",
            prompt=prompt,
            max_tokens=max_tokens,
            temperature=temperature,
            stream=stream,
        )
        return await self.infer(req, budget_ms=budget_ms)

    async def aclose(self) -> None:
        await super().aclose()
        await self._client.aclose()

    # -- AIModelInterface hooks --------------------------------------------------------------

    def _span_attributes(self, inputs: GenerationRequest) -> Mapping[str, Any]:
        return {
            **self._attrs,
            **self._genai_base,
            "gen_ai.operation.name": inputs.operation,
            "gen_ai.request.max_tokens": inputs.max_tokens or self.cfg.max_tokens,
            "gen_ai.request.temperature": (
                self.cfg.temperature if inputs.temperature is None else inputs.temperature
            ),
        }

    def _payload(self, req: GenerationRequest) -> tuple[str, dict[str, Any]]:
        payload: dict[str, Any] = {
            "model": self.cfg.model,
            "max_tokens": req.max_tokens or self.cfg.max_tokens,
            "temperature": self.cfg.temperature if req.temperature is None else req.temperature,
        }
        if req.stream:
            payload["stream"] = True
            payload["stream_options"] = {"include_usage": True}
        if req.operation == "chat":
            payload["messages"] = [dict(m) for m in req.messages]
            return "/v1/chat/completions", payload
        payload["prompt"] = req.prompt or ""
        return "/v1/completions", payload

    async def _execute(self, inputs: GenerationRequest, deadline: float, slot: Slot) -> Generation:
        # Span names follow GenAI semconv: "{gen_ai.operation.name} {gen_ai.request.model}".
        span = trace.get_current_span()
        span.update_name(f"{inputs.operation} {self.cfg.model}")
        loop = asyncio.get_running_loop()
        path, payload = self._payload(inputs)
        op_attrs: dict[str, Any] = {**self._genai_base, "gen_ai.operation.name": inputs.operation}
        t0 = time.perf_counter()
        attempt = 0
        try:
            while True:
                attempt += 1
                try:
                    gen = await self._send(path, payload, inputs, t0)
                    break
                except _Busy as busy:
                    if attempt > self.cfg.retries_on_busy:
                        raise SidecarRequestError(
                            f"vLLM sidecar at {self.cfg.base_url} stayed busy (503) through "
                            f"{attempt} attempts: {busy.message}",
                            status=503,
                            hint="retry later, lower the load, or raise "
                            "inference.vllm.retries_on_busy / inference.latency_budget_ms",
                        ) from None
                    wait = busy.retry_after or _BACKOFF_S * 2 ** (attempt - 1)
                    left = deadline - loop.time()
                    if wait >= left:
                        raise LatencyBudgetExceeded(
                            self.name,
                            budget_ms=self.latency_budget_ms,
                            elapsed_ms=(time.perf_counter() - t0) * 1000.0,
                            phase="retry",
                        ) from None
                    span.add_event("gen_ai.retry", {"attempt": attempt, "wait_s": wait})
                    await asyncio.sleep(wait)
        except BaseException as exc:
            op_attrs["error.type"] = (
                str(exc.status)
                if isinstance(exc, SidecarRequestError) and exc.status
                else type(exc).__name__
            )
            self._m_op.record(time.perf_counter() - t0, op_attrs)
            raise
        gen = _with_attempts(gen, attempt)
        op_attrs["gen_ai.response.model"] = gen.model
        self._m_op.record(time.perf_counter() - t0, op_attrs)
        if gen.input_tokens is not None:
            self._m_tokens.record(gen.input_tokens, {**op_attrs, "gen_ai.token.type": "input"})
        if gen.output_tokens is not None:
            self._m_tokens.record(gen.output_tokens, {**op_attrs, "gen_ai.token.type": "output"})
        if span.is_recording():
            attrs: dict[str, Any] = {"gen_ai.response.model": gen.model}
            if gen.response_id:
                attrs["gen_ai.response.id"] = gen.response_id
            if gen.finish_reason:
                attrs["gen_ai.response.finish_reasons"] = (gen.finish_reason,)
            if gen.input_tokens is not None:
                attrs["gen_ai.usage.input_tokens"] = gen.input_tokens
            if gen.output_tokens is not None:
                attrs["gen_ai.usage.output_tokens"] = gen.output_tokens
            span.set_attributes(attrs)
        return gen

    async def _send(
        self, path: str, payload: dict[str, Any], req: GenerationRequest, t0: float
    ) -> Generation:
        try:
            if req.stream:
                async with self._client.stream("POST", path, json=payload) as resp:
                    if resp.status_code != 200:
                        await resp.aread()
                        self._raise_for(resp)
                    return await _read_stream(resp, req.operation, t0)
            resp = await self._client.post(path, json=payload)
        except httpx.ConnectError as exc:
            raise SidecarRequestError(
                f"cannot connect to the vLLM sidecar at {self.cfg.base_url}: {exc}",
                hint="the sidecar is down or still loading; run `aiconfig check-sidecar`",
            ) from None
        except httpx.HTTPError as exc:
            raise SidecarRequestError(
                f"request to the vLLM sidecar at {self.cfg.base_url}{path} failed: "
                f"{type(exc).__name__}: {exc}",
                hint="run `aiconfig check-sidecar` for a diagnosis",
            ) from None
        if resp.status_code != 200:
            self._raise_for(resp)
        try:
            return _parse_completion(resp.json(), req.operation)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise SidecarRequestError(
                f"the vLLM sidecar answered {path} with a body that is not an OpenAI "
                f"completion ({type(exc).__name__}: {exc})"
            ) from None

    def _raise_for(self, resp: httpx.Response) -> None:
        msg = error_message(resp.content)
        status = resp.status_code
        if status == 503:
            raise _Busy(msg, _retry_after(resp.headers.get("retry-after")))
        hints = {
            401: "set inference.vllm.api_key to the key the sidecar was started with",
            404: f"is '{self.cfg.model}' served? run `aiconfig check-sidecar` to list models",
            400: "the request was refused; check max_tokens against the model's context length",
        }
        raise SidecarRequestError(
            f"vLLM sidecar answered {status} {resp.reason_phrase}: {msg}",
            status=status,
            hint=hints.get(status, "run `aiconfig check-sidecar` for a diagnosis"),
        )


class _Busy(Exception):  # internal control flow, never escapes
    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), _MAX_RETRY_AFTER_S)
    except ValueError:
        return None


def _with_attempts(gen: Generation, attempts: int) -> Generation:
    if attempts == 1:
        return gen
    return Generation(
        gen.text,
        gen.model,
        gen.finish_reason,
        gen.input_tokens,
        gen.output_tokens,
        gen.response_id,
        gen.streamed,
        gen.time_to_first_chunk_ms,
        attempts,
    )


def _parse_completion(data: Any, operation: Operation) -> Generation:
    choice = data["choices"][0]
    text = choice["message"]["content"] if operation == "chat" else choice["text"]
    usage = data.get("usage") or {}
    return Generation(
        text=text or "",
        model=str(data.get("model", "")),
        finish_reason=choice.get("finish_reason"),
        input_tokens=usage.get("prompt_tokens"),
        output_tokens=usage.get("completion_tokens"),
        response_id=data.get("id"),
        streamed=False,
    )


async def _read_stream(resp: httpx.Response, operation: Operation, t0: float) -> Generation:
    """Read an SSE stream: ``data: {chunk}`` events up to ``data: [DONE]``."""
    parts: list[str] = []
    model = ""
    finish: str | None = None
    response_id: str | None = None
    usage: Mapping[str, Any] = {}
    ttfc: float | None = None
    async for line in resp.aiter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        try:
            chunk = json.loads(data)
        except ValueError:
            raise SidecarRequestError(f"bad SSE event from the sidecar: {data[:120]}") from None
        if "error" in chunk:
            raise SidecarRequestError(
                "the vLLM sidecar failed mid-stream: " + error_message(json.dumps(chunk).encode())
            )
        model = chunk.get("model", model)
        response_id = chunk.get("id", response_id)
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or ():
            piece = (
                (choice.get("delta") or {}).get("content")
                if operation == "chat"
                else choice.get("text")
            )
            if piece:
                if ttfc is None:
                    ttfc = (time.perf_counter() - t0) * 1000.0
                parts.append(piece)
            finish = choice.get("finish_reason") or finish
    return Generation(
        text="".join(parts),
        model=model,
        finish_reason=finish,
        input_tokens=usage.get("prompt_tokens"),
        output_tokens=usage.get("completion_tokens"),
        response_id=response_id,
        streamed=True,
        time_to_first_chunk_ms=ttfc,
    )
