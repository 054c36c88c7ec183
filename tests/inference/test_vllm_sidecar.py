"""Sidecar preflight and vLLM client against a fake vLLM over a real socket."""

from __future__ import annotations

import asyncio
import time

import pytest
from pydantic import SecretStr

from aiconfig import VLLMConfig
from aiconfig.inference import (
    LatencyBudgetExceeded,
    OfflineModeError,
    SidecarNotReady,
    SidecarRequestError,
    VLLMClient,
    ensure_ready,
    preflight,
)

from .fake_vllm import Behaviour, FakeVLLM
from .otel_helpers import OTel

MODEL = "Qwen/Qwen2.5-0.5B-Instruct"


def cfg_for(server: FakeVLLM | str, **kw: object) -> VLLMConfig:
    url = server if isinstance(server, str) else server.base_url
    return VLLMConfig(base_url=url, connect_timeout_s=1.0, **kw)


def fails(diag_checks: list[tuple[str, bool]]) -> list[str]:
    return [name for name, ok in diag_checks if not ok]


# -- preflight ------------------------------------------------------------------------------


def test_ready(fake_vllm: FakeVLLM) -> None:
    diag = asyncio.run(preflight(cfg_for(fake_vllm)))
    assert diag.ready, diag.render()
    assert diag.served_models == (MODEL,)
    assert [c.name for c in diag.checks] == ["offline policy", "health", "models", "model"]
    assert "ready" in diag.render()[0]


def test_sidecar_down_connection_refused() -> None:
    server = FakeVLLM()  # bound, never listening: connect() is refused like a dead sidecar
    try:
        diag = asyncio.run(preflight(cfg_for(server)))
    finally:
        server.stop()
    assert not diag.ready
    health = diag.checks[-1]
    assert health.name == "health" and not health.ok
    assert "connection refused" in health.answered
    assert health.hint is not None and "still loading" in health.hint
    assert f"GET {server.base_url}/health" in health.tried
    with pytest.raises(SidecarNotReady) as info:
        asyncio.run(ensure_ready(cfg_for(server)))
    assert "connection refused" in str(info.value)


def test_delayed_listen_is_waited_for() -> None:
    server = FakeVLLM().start(listen_after_s=0.6)
    try:
        quick = asyncio.run(preflight(cfg_for(server)))
        assert not quick.ready and "refused" in quick.checks[-1].answered
        diag = asyncio.run(preflight(cfg_for(server), wait_s=10))
    finally:
        server.stop()
    assert diag.ready, diag.render()
    assert diag.attempts > 1


def test_loading_503_then_ready() -> None:
    server = FakeVLLM(Behaviour(loading=True)).start()
    try:
        diag = asyncio.run(preflight(cfg_for(server)))
        assert not diag.ready
        assert "503" in diag.checks[-1].answered
        assert "loading" in diag.checks[-1].answered  # the body's message is shown

        async def flip() -> None:
            await asyncio.sleep(0.4)
            server.behaviour.loading = False

        async def main() -> object:
            flipper = asyncio.create_task(flip())
            d = await preflight(cfg_for(server), wait_s=10)
            await flipper
            return d

        diag2 = asyncio.run(main())
    finally:
        server.stop()
    assert diag2.ready  # type: ignore[attr-defined]


@pytest.mark.parametrize("shape", ["flat", "nested"])
def test_wrong_model_lists_served_models(shape: str) -> None:
    server = FakeVLLM(Behaviour(models=["a/one", "b/two"], error_shape=shape)).start()  # type: ignore[arg-type]
    try:
        diag = asyncio.run(preflight(cfg_for(server, model="c/three"), wait_s=5))
        assert diag.attempts == 1  # permanent failure: no polling
        check = diag.checks[-1]
        assert check.name == "model" and not check.ok
        assert "a/one, b/two" in check.answered
        assert check.hint is not None and "--served-model-name c/three" in check.hint

        async def call() -> None:
            client = VLLMClient(cfg_for(server, model="c/three"), latency_budget_ms=5_000)
            try:
                await client.chat("hi")
            finally:
                await client.aclose()

        with pytest.raises(SidecarRequestError) as info:
            asyncio.run(call())
        assert info.value.status == 404
        assert "The model `c/three` does not exist." in str(info.value)  # both shapes parsed
    finally:
        server.stop()


def test_401_on_v1_only() -> None:
    server = FakeVLLM(Behaviour(api_key="s3cret")).start()
    try:
        diag = asyncio.run(preflight(cfg_for(server)))
        assert [c.name for c in diag.checks if c.ok] == ["offline policy", "health"]
        bad = diag.checks[-1]
        assert bad.name == "api key" and "401" in bad.answered and "Unauthorized" in bad.answered
        assert bad.hint is not None and "requires an API key" in bad.hint

        wrong = asyncio.run(preflight(cfg_for(server, api_key=SecretStr("nope"))))
        assert wrong.checks[-1].hint is not None and "rejected" in wrong.checks[-1].hint
        assert "nope" not in "\n".join(wrong.render())  # never echo the secret

        good = asyncio.run(preflight(cfg_for(server, api_key=SecretStr("s3cret"))))
        assert good.ready, good.render()
        assert ("GET", "/health", None) in server.requests  # health needs no key
    finally:
        server.stop()


def test_not_openai_compatible() -> None:
    server = FakeVLLM().start()
    try:
        diag = asyncio.run(preflight(cfg_for(server.base_url + "/nope")))
    finally:
        server.stop()
    assert not diag.ready and "404" in diag.checks[-1].answered


def test_offline_mode_refuses_remote_without_connecting() -> None:
    cfg = cfg_for("http://10.255.255.1:8000")
    diag = asyncio.run(preflight(cfg, environ={"AP_NO_NETWORK": "1"}))
    assert not diag.ready and diag.checks[0].name == "offline policy"
    with pytest.raises(OfflineModeError, match="loopback"):
        VLLMClient(cfg, environ={"AP_NO_NETWORK": "1"})
    ok = VLLMClient(cfg_for("http://localhost:8000"), environ={"AP_NO_NETWORK": "1"})
    asyncio.run(ok.aclose())


# -- client ---------------------------------------------------------------------------------


def _client(server: FakeVLLM, otel: OTel | None = None, **kw: object) -> VLLMClient:
    cfg_kw = {k: v for k, v in kw.items() if k in VLLMConfig.model_fields}
    rest = {k: v for k, v in kw.items() if k not in VLLMConfig.model_fields}
    extra = otel.kwargs() if otel else {}
    return VLLMClient(cfg_for(server, **cfg_kw), **rest, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize("stream", [False, True])
def test_chat_and_completion(fake_vllm: FakeVLLM, otel: OTel, stream: bool) -> None:
    async def main() -> None:
        c = _client(fake_vllm, otel, latency_budget_ms=5_000)
        try:
            r = await c.chat("hello there", stream=stream)
            assert r.output.text == "echo hello there"
            assert r.output.streamed is stream
            assert r.output.output_tokens == 3
            assert r.output.finish_reason == "stop"
            r2 = await c.complete("once upon", stream=stream, max_tokens=2)
            assert r2.output.text == "echo once"
            if stream:
                assert r.output.time_to_first_chunk_ms is not None
        finally:
            await c.aclose()

    asyncio.run(main())
    spans = {s.name: s for s in otel.spans.get_finished_spans()}
    chat = spans[f"chat {MODEL}"]
    assert chat.kind.name == "CLIENT"
    attrs = dict(chat.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "vllm"
    assert attrs["gen_ai.request.model"] == MODEL
    assert attrs["gen_ai.response.model"] == MODEL
    assert attrs["gen_ai.usage.output_tokens"] == 3
    assert attrs["server.address"] == "127.0.0.1"
    assert f"text_completion {MODEL}" in spans
    points = otel.points("gen_ai.client.operation.duration")
    ops = sorted(str(p.attributes["gen_ai.operation.name"]) for p in points)  # type: ignore[attr-defined]
    assert ops == ["chat", "text_completion"]
    tokens = otel.points("gen_ai.client.token.usage")
    assert {p.attributes["gen_ai.token.type"] for p in tokens} == {"input", "output"}  # type: ignore[attr-defined]


def test_503_busy_is_retried_within_budget(otel: OTel) -> None:
    server = FakeVLLM(Behaviour(busy=2)).start()

    async def main() -> None:
        c = _client(server, otel, retries_on_busy=2, latency_budget_ms=5_000)
        try:
            r = await c.chat("x")
            assert r.output.attempts == 3
        finally:
            await c.aclose()

    try:
        asyncio.run(main())
    finally:
        server.stop()
    (span,) = otel.spans.get_finished_spans()
    assert [e.name for e in span.events] == ["gen_ai.retry", "gen_ai.retry"]


def test_503_past_retries_and_past_budget() -> None:
    server = FakeVLLM(Behaviour(busy=100, error_shape="nested")).start()

    async def main() -> None:
        c = _client(server, retries_on_busy=1, latency_budget_ms=5_000)
        try:
            with pytest.raises(SidecarRequestError) as info:
                await c.chat("x")
            assert info.value.status == 503 and "busy" in str(info.value)
            # Retry-After longer than what is left of the budget: give up at once.
            server.behaviour.retry_after = "10"
            t0 = time.monotonic()
            with pytest.raises(LatencyBudgetExceeded) as info2:
                await c.chat("x", budget_ms=500)
            assert info2.value.phase == "retry"
            assert time.monotonic() - t0 < 5
        finally:
            await c.aclose()

    try:
        asyncio.run(main())
    finally:
        server.stop()


def test_slow_server_exceeds_budget(otel: OTel) -> None:
    server = FakeVLLM(Behaviour(delay_s=0.3)).start()

    async def main() -> None:
        c = _client(server, otel, latency_budget_ms=50)
        try:
            with pytest.raises(LatencyBudgetExceeded) as info:
                await c.chat("x")
            assert info.value.phase == "compute"
            assert c.admission.active == 0
        finally:
            await c.aclose()

    try:
        asyncio.run(main())
    finally:
        server.stop()
    (point,) = otel.points("gen_ai.client.operation.duration")
    assert point.attributes["error.type"] in {"CancelledError", "TimeoutError"}  # type: ignore[attr-defined]


def test_client_401_and_connection_refused() -> None:
    server = FakeVLLM(Behaviour(api_key="k")).start()

    async def main(s: FakeVLLM) -> None:
        c = _client(s, latency_budget_ms=5_000)
        try:
            await c.complete("x")
        finally:
            await c.aclose()

    try:
        with pytest.raises(SidecarRequestError) as info:
            asyncio.run(main(server))
        assert info.value.status == 401 and "Unauthorized" in str(info.value)
    finally:
        server.stop()
    dead = FakeVLLM()
    try:
        with pytest.raises(SidecarRequestError, match="cannot connect"):
            asyncio.run(main(dead))
    finally:
        dead.stop()


def test_brief_503_is_retried_without_wait() -> None:
    server = FakeVLLM(Behaviour(loading=True)).start()

    async def main() -> object:
        async def flip() -> None:
            await asyncio.sleep(0.05)
            server.behaviour.loading = False

        flipper = asyncio.create_task(flip())
        diag = await preflight(cfg_for(server, retries_on_busy=3))
        await flipper
        return diag

    try:
        diag = asyncio.run(main())
        assert diag.ready and diag.attempts > 1  # type: ignore[attr-defined]
        server.behaviour.loading = True
        stuck = asyncio.run(preflight(cfg_for(server, retries_on_busy=1)))
        assert not stuck.ready and stuck.attempts == 2
    finally:
        server.stop()
