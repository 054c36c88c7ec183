"""Ray Data over sessions, for what outgrows one machine (the ``ray`` extra).

:func:`read_sessions` returns a ``ray.data.Dataset`` of the same samples as
:class:`~aiconfig.sessions.SessionClipDataset`: one read task per keyframe-aligned clip, each
opening its session, binning its actions (:func:`~aiconfig.sessions.bin_actions`, the same
code) and decoding its frames inside the task. :func:`export_episodes` runs the LeRobot export's
per-session work as Ray tasks (``aiconfig sessions export --engine ray``).

Locally ``ray.init(num_cpus=2)``; on a cluster ``ray.init(address="ray://head:10001")`` (or
``RAY_ADDRESS``), with the sessions on storage every node mounts at the same path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .._errors import AiconfigError
from ._actions import ActionSpec

__all__ = ["export_episodes", "read_sessions"]


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise AiconfigError(
            "Ray is not installed; pip install 'aiconfig[ray]' (or pip install 'ray[data]')"
        ) from None
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        cpus = os.environ.get("AP_CPU_LIMIT")
        ray.init(
            address=address,
            num_cpus=None if address or not cpus else max(1, int(float(cpus))),
            include_dashboard=False,
            log_to_driver=False,
        )
    return ray


def _clip_block(
    path: str, start: int, stop: int, spec: ActionSpec, resolution: tuple[int, int], k: int
) -> Iterator[Any]:
    """One read task: the samples of frames ``start..stop-1`` of one session, as one block."""
    import numpy as np
    import pyarrow as pa
    from ray.data.extensions import ArrowTensorArray

    from ._actions import bin_actions
    from ._decode import iter_clip
    from ._session import open_session

    session = open_session(path)
    n = session.frame_count
    acts = bin_actions(session, spec, frame_count=n)
    gop = session.keyframe_interval or max(1, round(session.fps))
    first = max(0, start - k + 1) // gop * gop
    window: list[Any] = []
    stacks, index = [], []
    for i, array in iter_clip(session.video_path, session.fps, first, stop, resolution):
        window.append(array)
        if len(window) > k:
            window.pop(0)
        if i >= start:
            stacks.append(np.stack([window[0]] * (k - len(window)) + window))
            index.append(i)
    rows = np.asarray(index, dtype=np.int64)
    yield pa.table(
        {
            "session_id": pa.array([session.id] * len(rows)),
            "frame_index": pa.array(rows),
            "frames": ArrowTensorArray.from_numpy(np.stack(stacks)),
            "action": ArrowTensorArray.from_numpy(acts.action[rows].astype(np.float32)),
            "keys": ArrowTensorArray.from_numpy(acts.keys[rows].astype(np.float32)),
            "buttons": ArrowTensorArray.from_numpy(acts.buttons[rows].astype(np.float32)),
            "mouse": ArrowTensorArray.from_numpy(acts.mouse[rows]),
            "mouse_known": pa.array(acts.mouse_known[rows]),
            "scroll": pa.array(acts.scroll[rows]),
        }
    )


def read_sessions(
    paths: Sequence[str | Path],
    *,
    config: Any = None,
    spec: ActionSpec | None = None,
    resolution: tuple[int, int] | None = None,
    frame_stack: int | None = None,
    split: str = "all",
    clip_frames: int | None = None,
    min_session_s: float | None = None,
    summary: dict[str, Any] | None = None,
) -> Any:
    """A ``ray.data.Dataset`` of samples (columns as :class:`SessionDataset` samples, frames
    ``uint8 [K, 3, H, W]``) from the sessions under ``paths``, one read task per clip. Settings
    come from ``config`` (an ``AIConfig``: model, training.seed/dataset) unless given here. Sessions
    skipped (unfinished, invalid, too short) are counted into ``summary`` when a dict is given."""
    ray = _ray()
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    from ._dataset import SessionClipDataset

    if spec is None:
        if config is None:
            raise AiconfigError("read_sessions needs config= (an AIConfig) or spec=")
        spec = ActionSpec.from_model(config.model)
    kw: dict[str, Any] = {}
    if config is not None:
        kw = {
            "seed": int(config.training.seed),
            "train_split": float(config.training.dataset.train_split),
            "min_session_s": float(config.training.dataset.min_session_s),
        }
    if min_session_s is not None:
        kw["min_session_s"] = min_session_s
    size = tuple(resolution or (config.model.input_resolution if config else (256, 144)))
    k = int(frame_stack or (config.model.frame_stack if config else 4))
    plan = SessionClipDataset(
        paths, spec=spec, resolution=(size[0], size[1]), frame_stack=k, split=split,  # type: ignore[arg-type]
        clip_frames=clip_frames, shuffle=False, **kw,
    )  # fmt: skip
    clips = [(str(plan.sources[s].session.path), a, b) for s, a, b in plan.clips]
    frame_bytes = 3 * size[0] * size[1] * k

    the_spec: ActionSpec = spec

    class _Sessions(Datasource):
        def estimate_inmemory_data_size(self) -> int:
            total: int = sum(b - a for _, a, b in clips) * frame_bytes
            return total

        def get_read_tasks(
            self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None
        ) -> list[Any]:
            tasks = []
            for path, a, b in clips:
                meta = BlockMetadata(
                    num_rows=b - a,
                    size_bytes=(b - a) * frame_bytes,
                    input_files=(path,),
                    exec_stats=None,
                )

                def read(path: str = path, a: int = a, b: int = b) -> Iterator[Any]:
                    return _clip_block(path, a, b, the_spec, (size[0], size[1]), k)

                tasks.append(ReadTask(read, meta))
            return tasks

    if summary is not None:
        summary.update(plan.summary())
    source = _Sessions()  # type: ignore[no-untyped-call]  # ray's Datasource.__init__ is untyped
    return ray.data.read_datasource(source, override_num_blocks=max(1, len(clips)))


def export_episodes(
    paths: Sequence[str],
    out: str,
    spec: ActionSpec,
    fps: int,
    progress: Callable[[int], None] | None = None,
    *,
    work: Callable[..., dict[str, Any]],
) -> list[dict[str, Any]]:
    """``work`` (the export's :func:`~aiconfig.sessions._lerobot.export_episode`, passed in so
    the two modules do not import each other) for every session, as Ray tasks
    (``out`` must be on storage the workers share); results in episode order."""
    ray = _ray()
    task = ray.remote(work)
    refs = [task.remote(p, e, out, spec, fps) for e, p in enumerate(paths)]
    results: dict[Any, Any] = {}
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            results[ref] = ray.get(ref)
            if progress is not None:
                progress(1)
    return [results[r] for r in refs]
