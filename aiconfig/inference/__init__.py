"""Inference with explicit latency budgets and backpressure.

Public API::

    from aiconfig.inference import TorchModelInterface, VLLMClient, preflight
    model = TorchModelInterface.from_config(net, cfg.inference, name="policy")
    result = await model.infer(x)          # InferenceResult: output, queue_ms, compute_ms, ...

    client = VLLMClient.from_config(cfg.inference)
    result = await client.chat("hello")    # or .complete(prompt), stream=True for SSE

Every call has a latency budget; a full queue raises :class:`Overloaded` at once and a call past
its budget raises :class:`LatencyBudgetExceeded`. Telemetry goes through ``opentelemetry-api``
only; :mod:`aiconfig.monitoring` configures where it goes. ``TorchModelInterface`` imports torch,
so it is loaded lazily (``import aiconfig.inference`` works without torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiconfig._network import check_network_allowed, is_loopback_url
from aiconfig._network import is_offline as offline_mode

from ._admission import Admission, ComputeEstimate
from ._batching import BatchScheduler
from ._call import InferenceResult, LatencyObserver, Slot
from ._errors import (
    LatencyBudgetExceeded,
    ModelError,
    OfflineModeError,
    Overloaded,
    SidecarNotReady,
    SidecarRequestError,
)
from ._interface import AIModelInterface
from ._job import InferRequest, JobTelemetry, read_prompts, run_infer_job
from ._vllm import Generation, GenerationRequest, VLLMClient
from .sidecar import Check, SidecarDiagnosis, ensure_ready, preflight

if TYPE_CHECKING:
    from ._torch import (
        TorchModelInterface,
        configure_determinism,
        preprocess_frames,
        resolve_device,
    )

__all__ = [
    "AIModelInterface",
    "Admission",
    "BatchScheduler",
    "Check",
    "ComputeEstimate",
    "Generation",
    "GenerationRequest",
    "InferRequest",
    "InferenceResult",
    "JobTelemetry",
    "LatencyBudgetExceeded",
    "LatencyObserver",
    "ModelError",
    "OfflineModeError",
    "Overloaded",
    "SidecarDiagnosis",
    "SidecarNotReady",
    "SidecarRequestError",
    "Slot",
    "TorchModelInterface",
    "VLLMClient",
    "check_network_allowed",
    "configure_determinism",
    "ensure_ready",
    "is_loopback_url",
    "offline_mode",
    "preflight",
    "preprocess_frames",
    "read_prompts",
    "resolve_device",
    "run_infer_job",
]

_TORCH_NAMES = frozenset(
    {"TorchModelInterface", "configure_determinism", "preprocess_frames", "resolve_device"}
)


def __getattr__(name: str) -> Any:
    if name in _TORCH_NAMES:
        from . import _torch  # torch is optional and heavy: import on first use

        return getattr(_torch, name)
    raise AttributeError(f"module 'aiconfig.inference' has no attribute {name!r}")
