"""Dynamic batching of the Torch backend on a real CPU model: grouping, identity, failures."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import torch

from aiconfig import InferenceConfig
from aiconfig.inference import (
    LatencyBudgetExceeded,
    ModelError,
    Overloaded,
    TorchModelInterface,
    configure_determinism,
)

from .otel_helpers import OTel

H, W = 36, 64  # small frames keep the suite fast; the benchmark uses 256x144


def encoder() -> torch.nn.Module:
    """A conv encoder over 4 stacked RGB frames (12 channels), as a policy would use."""
    configure_determinism(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(12, 16, 5, stride=2),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, stride=2),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(32, 6),
    )


class Recording(torch.nn.Module):
    """Wraps a model; records the batch size of every forward pass; optional gate / failure."""

    def __init__(self, inner: torch.nn.Module, gate: threading.Event | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.gate = gate
        self.sizes: list[int] = []
        self.fail_when: Any = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(x.shape[0])
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail_when is not None and self.fail_when(x):
            raise RuntimeError("CUDA-like failure: out of memory (simulated by the model)")
        out: torch.Tensor = self.inner(x)
        return out


def frames(n: int, seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(1, 12, H, W, generator=g) for _ in range(n)]


def interface(model: torch.nn.Module, **kw: Any) -> TorchModelInterface:
    opts: dict[str, Any] = {
        "name": "enc",
        "device": "cpu",
        "latency_budget_ms": 10_000,
        "max_concurrency": 1,
        "max_queue": 64,
        "max_batch_size": 8,
    }
    opts.update(kw)
    return TorchModelInterface(model, **opts)


@pytest.mark.parametrize("offload", [True, False])
def test_output_identical_batched_or_alone_in_any_order(offload: bool) -> None:
    xs = frames(13)

    async def main() -> tuple[list[Any], list[Any], list[Any], list[int]]:
        rec = Recording(encoder())
        m = interface(rec, offload=offload)
        try:
            together = await asyncio.gather(*(m.infer(x) for x in xs))
            order = [7, 2, 12, 0, 5, 9, 1, 11, 3, 6, 10, 4, 8]
            shuffled = await asyncio.gather(*(m.infer(xs[i]) for i in order))
            by_index = [None] * len(xs)
            for i, r in zip(order, shuffled, strict=True):
                by_index[i] = r.output
            alone = [(await m.infer(x)).output for x in xs]
            return [r.output for r in together], by_index, alone, rec.sizes
        finally:
            await m.aclose()

    together, shuffled, alone, sizes = asyncio.run(main())
    for a, b, c in zip(together, shuffled, alone, strict=True):
        assert a.shape == (1, 6)
        assert torch.equal(a, b)  # order-independent
        assert torch.equal(a, c)  # identical whether it ran with others or alone
    assert set(sizes) == {8}  # every forward pass has the one fixed, padded shape
    # 13 together: 8 + 5 (padded); the same again shuffled; then 13 alone.
    assert len(sizes) == 2 + 2 + 13


def test_calls_are_gathered_up_to_max_batch_size_and_keep_their_own_spans(otel: OTel) -> None:
    gate = threading.Event()
    rec = Recording(encoder(), gate=gate)
    xs = frames(20)

    async def main() -> list[Any]:
        m = interface(rec, **otel.kwargs())
        try:
            tasks = [asyncio.create_task(m.infer(x)) for x in xs]
            await asyncio.sleep(0.05)
            assert m.batcher is not None
            assert m.batcher.active == 1 and m.batcher.queued == 12  # 8 computing, 12 waiting
            gate.set()
            return list(await asyncio.gather(*tasks))
        finally:
            await m.aclose()

    results = asyncio.run(main())
    assert len(rec.sizes) == 3  # 8 + 8 + 4 calls: three passes
    spans = otel.spans.get_finished_spans()
    assert len(spans) == 20
    sizes = sorted(int(s.attributes["aiconfig.inference.batch_size"]) for s in spans)  # type: ignore[index, arg-type]
    assert sizes == [4] * 4 + [8] * 16
    assert all(s.attributes["aiconfig.inference.outcome"] == "ok" for s in spans)  # type: ignore[index]
    assert all(r.total_ms <= r.budget_ms for r in results)
    # The last batch waited for two others: its queue time shows it.
    assert max(r.queue_ms for r in results) > min(r.queue_ms for r in results)


def test_a_failing_batch_fails_each_of_its_calls_with_the_models_error() -> None:
    rec = Recording(encoder())
    rec.fail_when = lambda x: bool((x[:, 0, 0, 0] > 5).any())  # a poisoned sample
    xs = frames(6)
    poisoned = xs[2].clone()
    poisoned[0, 0, 0, 0] = 10.0
    xs[2] = poisoned

    async def main() -> tuple[list[Any], Any]:
        m = interface(rec)
        try:
            first = await asyncio.gather(*(m.infer(x) for x in xs), return_exceptions=True)
            later = await m.infer(frames(1, seed=9)[0])  # the model still works afterwards
            return first, later
        finally:
            await m.aclose()

    first, later = asyncio.run(main())
    assert all(isinstance(r, ModelError) for r in first)
    assert all("out of memory (simulated" in str(r) for r in first)
    assert all(isinstance(r.__cause__, RuntimeError) for r in first)
    assert later.output.shape == (1, 6)


def test_a_bad_input_fails_only_its_own_call() -> None:
    xs: list[Any] = frames(4)
    xs[1] = torch.rand(1, 3, H, W)  # wrong channel count: the conv refuses it
    xs[3] = "not a tensor"

    async def main() -> list[Any]:
        m = interface(encoder())
        try:
            return list(await asyncio.gather(*(m.infer(x) for x in xs), return_exceptions=True))
        finally:
            await m.aclose()

    out = asyncio.run(main())
    assert isinstance(out[1], ModelError) and "enc" in str(out[1])
    assert isinstance(out[3], ModelError)
    assert out[0].output.shape == (1, 6) and out[2].output.shape == (1, 6)


def test_each_call_keeps_its_own_budget() -> None:
    gate = threading.Event()
    rec = Recording(encoder(), gate=gate)

    async def main() -> tuple[list[Any], LatencyBudgetExceeded]:
        m = interface(rec, max_batch_size=2)
        try:
            running = [asyncio.create_task(m.infer(x)) for x in frames(2)]
            await asyncio.sleep(0.02)  # one batch of 2 holds the only executor
            waiting = asyncio.create_task(m.infer(frames(1, 3)[0]))
            with pytest.raises(LatencyBudgetExceeded) as info:
                await m.infer(frames(1, 4)[0], budget_ms=30)
            gate.set()
            return [await t for t in [*running, waiting]], info.value
        finally:
            await m.aclose()

    ok, late = asyncio.run(main())
    assert late.phase == "queue" and late.queue_ms >= 30
    assert [r.output.shape for r in ok] == [(1, 6)] * 3


def test_the_window_gathers_calls_but_never_past_the_most_urgent_budget() -> None:
    rec = Recording(encoder())

    async def main() -> list[Any]:
        m = interface(rec, batch_window_ms=5_000, latency_budget_ms=10_000)
        try:
            first = asyncio.create_task(m.infer(frames(1)[0]))
            await asyncio.sleep(0.02)
            second = asyncio.create_task(m.infer(frames(1, 2)[0]))
            await asyncio.sleep(0.02)
            assert rec.sizes == []  # held open: 2 of 8 gathered, window not over
            t0 = time.perf_counter()
            urgent = await m.infer(frames(1, 3)[0], budget_ms=200)
            waited = time.perf_counter() - t0
            assert waited < 1.0  # bounded by its own budget, not the 5 s window
            return [await first, await second, urgent]
        finally:
            await m.aclose()

    results = asyncio.run(main())
    assert rec.sizes == [8]  # all three in one pass
    assert {r.output.shape for r in results} == {(1, 6)}


def test_overload_is_refused_at_once_when_batching() -> None:
    gate = threading.Event()
    rec = Recording(encoder(), gate=gate)

    async def main() -> None:
        m = interface(rec, max_batch_size=4, max_queue=2)
        try:
            tasks = [asyncio.create_task(m.infer(x)) for x in frames(10)]
            await asyncio.sleep(0)  # every task ran up to its first await
            refused = [t for t in tasks if t.done()]
            # idle executor: room for one batch of 4 gathering, plus 2 queued
            assert len(refused) == 4
            assert all(isinstance(t.exception(), Overloaded) for t in refused)
            gate.set()
            for t in tasks:
                if t not in refused:
                    assert (await t).output.shape == (1, 6)
        finally:
            await m.aclose()

    asyncio.run(main())


def test_from_config_turns_batching_on() -> None:
    cfg = InferenceConfig(max_batch_size=4, batch_window_ms=2.5, max_concurrency=2, device="cpu")
    m = TorchModelInterface.from_config(encoder(), cfg, name="p")
    assert m.batcher is not None
    assert (m.batcher.max_batch_size, m.batcher.window_s) == (4, 0.0025)
    assert TorchModelInterface.from_config(encoder(), InferenceConfig(), name="q").batcher is None


def test_outputs_must_keep_the_batch_dimension() -> None:
    class Pooled(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean()  # loses the batch dimension: cannot be split back

    async def main() -> Any:
        m = interface(Pooled(), max_batch_size=2)
        try:
            return await m.infer(frames(1)[0])
        finally:
            await m.aclose()

    with pytest.raises(ModelError, match="batch dimension first"):
        asyncio.run(main())


@pytest.mark.parametrize("offload", [True, False])
def test_a_probe_gets_through_a_stale_estimate_and_corrects_it(offload: bool) -> None:
    from aiconfig.inference._admission import PROBE_AFTER

    async def main() -> list[str]:
        m = interface(encoder(), offload=offload)
        assert m.batcher is not None
        m.batcher.estimate.observe(10_000.0)  # as if one cold batch had taken 10 s
        outcomes = []
        try:
            for x in frames(PROBE_AFTER + 2):
                try:
                    await m.infer(x, budget_ms=2_000)
                    outcomes.append("ok")
                except LatencyBudgetExceeded as exc:
                    outcomes.append(exc.phase)
        finally:
            await m.aclose()
        assert m.estimate_ms is not None and m.estimate_ms < 10_000.0
        return outcomes

    # the probe is not dropped as hopeless when its batch starts; once it has re-measured,
    # calls are admitted again
    assert asyncio.run(main()) == ["admission"] * PROBE_AFTER + ["ok", "ok"]


def test_warmup_seeds_the_estimate_with_the_padded_shape() -> None:
    rec = Recording(encoder())
    m = interface(rec, max_batch_size=4)
    assert m.estimate_ms is None
    m.warmup(frames(1)[0], runs=3)
    assert rec.sizes == [4, 4, 4]
    assert m.estimate_ms is not None and m.estimate_ms > 0
