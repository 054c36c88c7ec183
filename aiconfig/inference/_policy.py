"""A small built-in policy network for ``aiconfig infer`` when no checkpoint is configured.

It maps ``frame_stack``-free RGB frames at ``model.input_resolution`` to one logit per entry of
``model.action_space``: two strided convolutions, global average pooling and a linear head. Its
weights come from ``inference.seed``, so two runs of one config give the same outputs. It is a
stand-in to exercise the inference path (budgets, telemetry) end to end, not a trained model.
A configured ``model.checkpoint`` must be a ``torch.export`` program (``.pt2``, written by
``torch.export.save``) and is loaded with ``torch.export.load``: no pickle, so loading it runs no
arbitrary Python (TorchScript is deprecated in PyTorch 2.13 and ``torch.load`` unpickles).
Export it with an example input of shape ``(1, 3, H, W)`` at ``model.input_resolution``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import torch

from aiconfig import ConfigFileError, ModelConfig

from ._torch import configure_determinism

__all__ = ["build_policy", "load_frames"]


class TinyPolicy(torch.nn.Module):
    def __init__(self, n_actions: int, width: int = 16) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, width, 5, stride=4, padding=2),
            torch.nn.ReLU(),
            torch.nn.Conv2d(width, width, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
        )
        self.head = torch.nn.Linear(width, n_actions)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.features(x))
        return out


def build_policy(model: ModelConfig, seed: int) -> torch.nn.Module:
    """The configured ``torch.export`` checkpoint, or the seeded built-in :class:`TinyPolicy`."""
    if model.checkpoint:
        path = Path(model.checkpoint)
        if not path.is_file():
            raise ConfigFileError(
                "checkpoint not found", file=str(path), path="model.checkpoint",
                hint="point model.checkpoint at a torch.export program (.pt2)",
            )  # fmt: skip
        hint = "write it with torch.export.save(torch.export.export(model, (x,)), path)"
        if not zipfile.is_zipfile(path):  # checked first: torch logs a traceback otherwise
            raise ConfigFileError(
                "not a torch.export program (not a .pt2 archive)",
                file=str(path), path="model.checkpoint", hint=hint,
            )  # fmt: skip
        try:
            loaded: torch.nn.Module = torch.export.load(str(path)).module()
        except (RuntimeError, ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
            raise ConfigFileError(
                f"not a torch.export program: {(str(exc).splitlines() or [''])[0][:200]}",
                file=str(path),
                path="model.checkpoint",
                hint=hint,
            ) from None
        return loaded
    configure_determinism(seed)
    return TinyPolicy(len(model.action_space))


def load_frames(path: str | Path) -> Any:
    """uint8 ``(N, H, W, 3)`` frames from a ``.npy`` file or a video (PyAV, capture extra)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigFileError("no such frames file", file=str(p), hint="pass a .npy or .mp4")
    if p.suffix == ".npy":
        import numpy as np  # only this input type needs it

        try:
            frames = np.load(p, allow_pickle=False)
        except ValueError as exc:
            raise ConfigFileError(f"cannot read frames: {exc}", file=str(p)) from None
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ConfigFileError(
                f"frames must be uint8 (N, H, W, 3); got {frames.dtype} {frames.shape}",
                file=str(p),
            )
        if frames.shape[0] == 0:
            raise ConfigFileError(
                f"no frames: the array is {frames.shape}", file=str(p), hint="save N >= 1 frames"
            )
        return frames
    try:
        import av  # optional (capture extra)
        import numpy as np
    except ImportError:
        raise ConfigFileError(
            "reading video needs PyAV: pip install 'aiconfig[capture]' (or pass a .npy)",
            file=str(p),
        ) from None
    try:
        with av.open(str(p)) as container:
            return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    except (av.error.FFmpegError, ValueError) as exc:
        raise ConfigFileError(f"cannot decode video: {exc}", file=str(p)) from None
