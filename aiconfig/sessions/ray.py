"""Ray Data over sessions, for what outgrows one machine (the ``ray`` extra).

:func:`read_sessions` returns a ``ray.data.Dataset`` of the same samples as
:class:`~aiconfig.sessions.SessionClipDataset`: the sessions are validated and their actions
binned once, when the dataset is planned (:func:`~aiconfig.sessions.bin_actions`, the same
code); then one read task per keyframe-aligned clip is handed its clip's rows of those actions
and decodes its frames. :func:`export_episodes` runs the LeRobot export's per-session video
work as Ray tasks (``aiconfig sessions export --engine ray``).

Locally ``ray.init(num_cpus=2)``; on a cluster ``ray.init(address="ray://head:10001")`` (or
``RAY_ADDRESS``), with the sessions on storage every node mounts at the same path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .._errors import AiconfigError
from ._actions import ActionSpec

if TYPE_CHECKING:
    from ._dataset import SessionSource

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


# A clip's rows of the actions the plan binned (what a read task needs besides the video).
_ACTION_COLUMNS = ("action", "keys", "buttons", "mouse", "mouse_known", "scroll")


def _clip_actions(src: SessionSource, start: int, stop: int) -> dict[str, Any]:
    """Rows ``start..stop-1`` of ``src``'s binned actions, as the read task's columns."""
    import numpy as np

    a = src.actions
    return {
        "action": a.action[start:stop].astype(np.float32),
        "keys": a.keys[start:stop].astype(np.float32),
        "buttons": a.buttons[start:stop].astype(np.float32),
        "mouse": a.mouse[start:stop].copy(),
        "mouse_known": a.mouse_known[start:stop].copy(),
        "scroll": a.scroll[start:stop].copy(),
    }


class _Clip(NamedTuple):
    """What one read task is handed: where the clip is and its rows of the binned actions."""

    session_id: str
    video: str
    fps: float
    gop: int
    start: int
    stop: int
    actions: dict[str, Any]


def _clip_block(clip: _Clip, resolution: tuple[int, int], k: int) -> Iterator[Any]:
    """One read task: the samples of frames ``start..stop-1`` of one session, as one block.
    ``actions`` holds those frames' rows (:func:`_clip_actions`); only the video is read."""
    import numpy as np
    import pyarrow as pa
    from ray.data.extensions import ArrowTensorArray

    from ._decode import iter_clip

    start, stop, actions = clip.start, clip.stop, clip.actions
    first = max(0, start - k + 1) // clip.gop * clip.gop
    window: list[Any] = []
    stacks, index = [], []
    for i, array in iter_clip(Path(clip.video), clip.fps, first, stop, resolution):
        window.append(array)
        if len(window) > k:
            window.pop(0)
        if i >= start:
            stacks.append(np.stack([window[0]] * (k - len(window)) + window))
            index.append(i)
    rows = np.asarray(index, dtype=np.int64)
    at = rows - start
    tensor = {"action", "keys", "buttons", "mouse"}
    yield pa.table(
        {
            "session_id": pa.array([clip.session_id] * len(rows)),
            "frame_index": pa.array(rows),
            "frames": ArrowTensorArray.from_numpy(np.stack(stacks)),
            **{
                name: ArrowTensorArray.from_numpy(actions[name][at])
                if name in tensor
                else pa.array(actions[name][at])
                for name in _ACTION_COLUMNS
            },
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
    # The plan opened, validated and binned every session once. A read task runs in another
    # process (on a cluster, another machine), so it cannot share the plan's objects: it is
    # handed its clip's rows of the binned actions instead (a few numbers per frame, clips are
    # a few GOPs: far below the size Ray inlines into a task) and decodes only the video.
    clips = []
    for s, a, b in plan.clips:
        src = plan.sources[s]
        video = str(src.session.video_path)
        clips.append(_Clip(src.id, video, src.fps, src.gop, a, b, _clip_actions(src, a, b)))
    frame_bytes = 3 * size[0] * size[1] * k

    class _Sessions(Datasource):
        def estimate_inmemory_data_size(self) -> int:
            total: int = sum(c.stop - c.start for c in clips) * frame_bytes
            return total

        def get_read_tasks(
            self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None
        ) -> list[Any]:
            tasks = []
            for clip in clips:
                meta = BlockMetadata(
                    num_rows=clip.stop - clip.start,
                    size_bytes=(clip.stop - clip.start) * frame_bytes,
                    input_files=(clip.video,),
                    exec_stats=None,
                )

                def read(clip: _Clip = clip) -> Iterator[Any]:
                    return _clip_block(clip, (size[0], size[1]), k)

                tasks.append(ReadTask(read, meta))
            return tasks

    if summary is not None:
        summary.update(plan.summary())
    source = _Sessions()  # type: ignore[no-untyped-call]  # ray's Datasource.__init__ is untyped
    return ray.data.read_datasource(source, override_num_blocks=max(1, len(clips)))


def export_episodes(
    jobs: Sequence[tuple[Any, ...]],
    progress: Callable[[int], None] | None = None,
    *,
    work: Callable[..., dict[str, Any]],
) -> list[dict[str, Any]]:
    """``work(*job)`` for every job, as Ray tasks; results in job order. ``work`` is the
    export's :func:`~aiconfig.sessions._lerobot.export_video` (passed in so the two modules do
    not import each other) and each job its small arguments (paths and numbers: the actions
    were binned by the plan, in this process); what it writes must be on storage the workers
    share."""
    ray = _ray()
    task = ray.remote(work)
    refs = [task.remote(*job) for job in jobs]
    results: dict[Any, Any] = {}
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            results[ref] = ray.get(ref)
            if progress is not None:
                progress(1)
    return [results[r] for r in refs]
