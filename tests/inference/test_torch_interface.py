"""TorchModelInterface on a real (small, CPU) PyTorch model."""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from typing import Any

import numpy as np
import pytest
import torch

from aiconfig import InferenceConfig, InferenceServerError
from aiconfig.inference import (
    LatencyBudgetExceeded,
    ModelError,
    Overloaded,
    TorchModelInterface,
    configure_determinism,
    preprocess_frames,
    resolve_device,
)

from .otel_helpers import OTel


def tiny() -> torch.nn.Module:
    configure_determinism(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))


class Slow(torch.nn.Module):
    """Sleeps ``delay_s`` (releasing the GIL) and, when ``gate`` is given, waits for it."""

    def __init__(self, delay_s: float = 0.0, gate: threading.Event | None = None) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 2)
        self.delay_s = delay_s
        self.gate = gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate is not None:
            self.gate.wait(10)
        if self.delay_s:
            time.sleep(self.delay_s)
        out: torch.Tensor = self.lin(x)
        return out


@pytest.mark.parametrize("offload", [True, False])
def test_result_matches_bare_model_and_runs_in_inference_mode(offload: bool) -> None:
    net = tiny()
    x = torch.randn(3, 8)
    expected = net(x).detach()

    async def main() -> Any:
        m = TorchModelInterface(net, name="tiny", device="cpu", offload=offload)
        try:
            return await m.infer(x)
        finally:
            await m.aclose()
            await m.aclose()  # idempotent

    r = asyncio.run(main())
    assert torch.equal(r.output, expected)
    assert r.output.is_inference()
    assert not r.output.requires_grad
    assert r.model == "tiny" and r.budget_ms == 50.0


@pytest.mark.parametrize("kind", ["traced", "scripted", "frozen"])
def test_torchscript_models_run_as_given(kind: str) -> None:
    """A deployed TorchScript module (traced, scripted, or frozen) is served as is, batched
    or not; ScriptModules refuse ``requires_grad_``, so gradients are turned off per tensor."""
    net = tiny().eval()
    x = torch.randn(1, 8)
    with torch.inference_mode():
        expected = net(x)
    with warnings.catch_warnings():  # TorchScript is deprecated, and still deployed
        warnings.simplefilter("ignore", DeprecationWarning)
        if kind == "traced":
            module = torch.jit.trace(net, x)  # type: ignore[no-untyped-call]
        elif kind == "scripted":
            module = torch.jit.script(net)
        else:
            module = torch.jit.freeze(torch.jit.script(net))

    async def main() -> list[Any]:
        out = []
        for batch in (1, 4):
            m = TorchModelInterface(module, name="ts", device="cpu", max_batch_size=batch)
            out.append((await m.infer(x)).output)
            await m.aclose()
        return out

    for output in asyncio.run(main()):
        assert torch.allclose(output, expected, atol=1e-6)
    assert not any(p.requires_grad for p in module.parameters())


def test_from_config_and_determinism_switches() -> None:
    cfg = InferenceConfig(latency_budget_ms=123, max_concurrency=3, max_queue=5, seed=7)
    m = TorchModelInterface.from_config(tiny(), cfg, name="p")
    assert m.latency_budget_ms == 123
    assert (m.admission.max_concurrency, m.admission.max_queue) == (3, 5)
    assert m.device == torch.device("cpu")
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.initial_seed() == 7
    asyncio.run(m.aclose())


def test_same_seed_same_output() -> None:
    def once() -> torch.Tensor:
        configure_determinism(3)
        net = torch.nn.Linear(8, 2)
        m = TorchModelInterface(net, device="cpu", seed=3, offload=False)
        return m.run_sync(np.ones((1, 8), dtype=np.float32))  # type: ignore[no-any-return]

    assert torch.equal(once(), once())


def test_compile_path() -> None:
    net = tiny()
    m = TorchModelInterface(net, device="cpu", compile=True, compile_backend="eager", offload=False)
    assert m.compiled_model is not None
    x = torch.randn(2, 8)
    m.warmup(x, runs=1)
    r = asyncio.run(m.infer(x, budget_ms=5_000))
    assert torch.allclose(r.output, net(x).detach())


def test_missing_device_is_a_clear_error() -> None:
    if torch.cuda.is_available():  # pragma: no cover - CPU-only here
        pytest.fail("this test expects a CPU-only torch build")
    with pytest.raises(InferenceServerError, match=r"no CUDA device is available"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")


def test_preprocess_frames_is_pure_and_shaped() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(2, 36, 64, 3), dtype=np.uint8)
    a = preprocess_frames(frames, size=(32, 18))
    b = preprocess_frames(frames.copy(), size=(32, 18))
    assert a.shape == (2, 3, 18, 32) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    one = preprocess_frames(frames[0])
    assert one.shape == (1, 3, 36, 64)
    assert float(one[0, 0, 0, 0]) == pytest.approx(frames[0, 0, 0, 0] / 255.0)
    with pytest.raises(ValueError, match="uint8"):
        preprocess_frames(frames.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        preprocess_frames(np.zeros((2, 2), dtype=np.uint8))


def test_overload_twice_capacity_with_threads(otel: OTel) -> None:
    """2x capacity: excess refused before any compute finishes; accepted within budget."""
    gate = threading.Event()
    net = Slow(delay_s=0.005, gate=gate)

    async def main() -> None:
        m = TorchModelInterface(
            net,
            name="slow",
            device="cpu",
            latency_budget_ms=2_000,
            max_concurrency=2,
            max_queue=2,
            **otel.kwargs(),  # type: ignore[arg-type]
        )
        x = torch.ones(1, 4)
        tasks = [asyncio.create_task(m.infer(x)) for _ in range(8)]
        await asyncio.sleep(0)
        refused = [t for t in tasks if t.done()]
        assert len(refused) == 4
        assert all(isinstance(t.exception(), Overloaded) for t in refused)
        gate.set()
        results = [await t for t in tasks if t not in refused]
        assert all(r.total_ms <= r.budget_ms for r in results)
        assert sum(r.queue_ms > r.compute_ms / 2 for r in results) >= 1  # two of them queued
        await m.aclose()

    asyncio.run(main())
    spans = otel.spans.get_finished_spans()
    outcomes = sorted(str(s.attributes["aiconfig.inference.outcome"]) for s in spans)  # type: ignore[index]
    assert outcomes == ["ok"] * 4 + ["overloaded"] * 4


def test_compute_overrun_keeps_slot_until_thread_ends() -> None:
    gate = threading.Event()

    async def main() -> None:
        m = TorchModelInterface(
            Slow(gate=gate), device="cpu", latency_budget_ms=30, max_concurrency=1, max_queue=0
        )
        with pytest.raises(LatencyBudgetExceeded) as info:
            await m.infer(torch.ones(1, 4))
        assert info.value.phase == "compute"
        # The thread is still running: its slot is still taken, so a new call is refused.
        assert m.admission.active == 1
        with pytest.raises(Overloaded):
            await m.infer(torch.ones(1, 4))
        gate.set()
        for _ in range(200):
            if m.admission.active == 0:
                break
            await asyncio.sleep(0.01)
        assert m.admission.active == 0
        r = await m.infer(torch.ones(1, 4), budget_ms=5_000)
        assert r.output.shape == (1, 2)
        await m.aclose()

    asyncio.run(main())


def test_inline_overrun_is_reported_after_the_fact() -> None:
    async def main() -> None:
        m = TorchModelInterface(
            Slow(delay_s=0.03), device="cpu", latency_budget_ms=5, offload=False
        )
        with pytest.raises(LatencyBudgetExceeded) as info:
            await m.infer(torch.ones(1, 4))
        assert info.value.phase == "compute" and info.value.elapsed_ms >= 5
        assert m.admission.active == 0

    asyncio.run(main())


def test_cpu_limit_sizes_torch_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    monkeypatch.setenv("AP_CPU_LIMIT", "1")
    try:
        TorchModelInterface(tiny(), device="cpu", offload=False)
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("AP_CPU_LIMIT", "lots")
        with pytest.raises(InferenceServerError, match="AP_CPU_LIMIT"):
            TorchModelInterface(tiny(), device="cpu", offload=False)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("offload", [True, False])
def test_model_errors_become_model_error_and_free_the_slot(offload: bool) -> None:
    async def main() -> None:
        m = TorchModelInterface(tiny(), name="tiny", device="cpu", offload=offload)
        with pytest.raises(ModelError, match=r"model 'tiny' failed: RuntimeError") as info:
            await m.infer(torch.ones(1, 3))  # wrong width: the Linear layer raises
        assert isinstance(info.value.__cause__, RuntimeError)
        for _ in range(100):
            if m.admission.active == 0:
                break
            await asyncio.sleep(0.01)
        assert m.admission.active == 0
        await m.aclose()

    asyncio.run(main())
