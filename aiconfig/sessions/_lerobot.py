"""Export sessions as a LeRobot v3 dataset (codebase v3.0, the layout of ``lerobot==0.4.4``).

The layout, as LeRobot's own ``lerobot/datasets/utils.py`` and ``lerobot_dataset.py`` write it::

    meta/info.json                      codebase_version "v3.0", fps, features, path templates
    meta/stats.json                     per feature: min max mean std count q01 q10 q50 q90 q99
    meta/tasks.parquet                  task_index, indexed by the task string (pandas index)
    meta/episodes/chunk-000/file-000.parquet   one row per episode: length, data and video file,
                                        dataset_from_index/to_index, from/to_timestamp, stats/*
    data/chunk-EEE/file-FFF.parquet     observation.state, action (fixed-size float32 lists),
                                        timestamp float32, frame_index, episode_index, index,
                                        task_index (int64)
    videos/observation.images.screen/chunk-EEE/file-FFF.mp4

One episode per session, each in its own data and video file (file ``e % 1000`` of chunk
``e // 1000``; LeRobot's ``chunks_size`` is 1000 files): a session's H.264 stream is copied
unchanged (PTS = index, so frame ``j`` is at ``timestamp = j / fps`` exactly and decodes to the
very pixels the session holds). With ``fps`` below the sessions' (it must divide it), export
frame ``j`` is session frame ``j * step``, re-encoded losslessly (x264 ``qp=0``, same yuv420p
samples), and its action covers session frames ``j*step .. (j+1)*step-1`` (a tap in a skipped
frame is kept, never lost).

``action`` = ``model.action_space`` multi-hot + ``mouse_x``, ``mouse_y`` (end of the frame,
normalised) + ``scroll``; ``observation.state`` = keys and buttons held and the pointer when the
frame began (+ ``mouse_known``). The session's provenance (session id, config name, digest,
signers, run id) is kept in the episode's row under ``aiconfig/*``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import AiconfigError, SessionError
from .._files import publish_dir
from ._actions import ActionSpec
from ._provenance import session_provenance

if TYPE_CHECKING:
    from ._dataset import SessionSource

__all__ = [
    "CODEBASE_VERSION",
    "ExportResult",
    "episode",
    "episode_arrays",
    "export_lerobot",
    "export_video",
    "plan_export",
]

CODEBASE_VERSION = "v3.0"
IMAGE_KEY = "observation.images.screen"
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
QUANTILES = (("q01", 0.01), ("q10", 0.10), ("q50", 0.50), ("q90", 0.90), ("q99", 0.99))
_DEFAULTS = {
    "timestamp": "float32",
    "frame_index": "int64",
    "episode_index": "int64",
    "index": "int64",
    "task_index": "int64",
}


@dataclass
class ExportResult:
    out: str
    episodes: int = 0
    frames: int = 0
    fps: int = 0
    engine: str = "local"
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": self.out,
            "format": "lerobot",
            "codebase_version": CODEBASE_VERSION,
            "episodes": self.episodes,
            "frames": self.frames,
            "fps": self.fps,
            "engine": self.engine,
            "sessions": self.summary,
        }


def _names(spec: ActionSpec) -> tuple[list[str], list[str]]:
    action = [*spec.action_space, "mouse_x", "mouse_y", "scroll"]
    state = [
        *(f"key_{k}" for k in spec.key_vocabulary),
        *(f"mouse_{b}" for b in spec.buttons),
        "mouse_x",
        "mouse_y",
        "mouse_known",
    ]
    return action, state


def _stats(x: Any) -> dict[str, Any]:
    """LeRobot's per-feature stats of rows ``x`` ``[N, D]``."""
    import numpy as np

    out: dict[str, Any] = {
        "min": x.min(axis=0).tolist(),
        "max": x.max(axis=0).tolist(),
        "mean": x.mean(axis=0, dtype=np.float64).tolist(),
        "std": x.std(axis=0, dtype=np.float64).tolist(),
        "count": [int(x.shape[0])],
    }
    for name, q in QUANTILES:
        out[name] = np.quantile(x, q, axis=0).tolist()
    return out


def _image_stats(frames: Any) -> dict[str, Any]:
    """Per channel over ``[N, 3, h, w]`` uint8, scaled to [0, 1], shaped ``[3][1][1]``."""
    import numpy as np

    x = frames.transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64) / 255.0

    def shape(v: Any) -> list[Any]:
        return [[[float(c)]] for c in v]

    out = {
        "min": shape(x.min(axis=1)),
        "max": shape(x.max(axis=1)),
        "mean": shape(x.mean(axis=1)),
        "std": shape(x.std(axis=1)),
        "count": [int(frames.shape[0])],
    }
    for name, q in QUANTILES:
        out[name] = shape(np.quantile(x, q, axis=1))
    return out


def _copy_video(src: Path, dst: Path) -> None:
    """The H.264 packets of ``src`` into a plain MP4 (moov first), unchanged."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        ist = inp.streams.video[0]
        ost = out.add_stream_from_template(ist)
        for packet in inp.demux(ist):
            if packet.dts is None:
                continue
            packet.stream = ost
            out.mux(packet)


def _resample_video(src: Path, dst: Path, fps: float, step: int, out_fps: int) -> int:
    """Every ``step``-th frame of ``src``, re-encoded losslessly at ``out_fps``."""
    from fractions import Fraction

    import av

    written = 0
    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        ist = inp.streams.video[0]
        ost = out.add_stream("libx264", rate=out_fps)
        ost.width, ost.height, ost.pix_fmt = (
            ist.codec_context.width,
            ist.codec_context.height,
            "yuv420p",
        )
        ost.time_base = Fraction(1, out_fps)
        ost.options = {"qp": "0", "preset": "ultrafast", "bf": "0", "g": str(out_fps)}
        rate = Fraction(fps).limit_denominator(1001)
        tb = ist.time_base or 1 / rate
        for frame in inp.decode(ist):
            if frame.pts is None:
                continue
            index = round(Fraction(frame.pts) * tb * rate)
            if index % step:
                continue
            picture = frame.reformat(format="yuv420p")
            picture.pts, picture.time_base = index // step, Fraction(1, out_fps)
            for packet in ost.encode(picture):
                out.mux(packet)
            written += 1
        for packet in ost.encode(None):
            out.mux(packet)
    return written


def _keyframe_sample(path: Path, limit: int = 64) -> Any:
    """Keyframes only (cheap), small: what the image stats are computed from."""
    import av
    import numpy as np

    from ._decode import to_array

    frames = []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.codec_context.skip_frame = "NONKEY"
        for frame in c.decode(s):
            frames.append(to_array(frame, (96, 54)))
            if len(frames) >= limit:
                break
    return np.stack(frames)


def episode_arrays(src: SessionSource, step: int) -> tuple[Any, Any]:
    """``(action, state)`` of one session's episode, from the actions the plan binned: export
    frame ``j`` stands for session frames ``j*step .. (j+1)*step-1``."""
    import numpy as np

    acts, n = src.actions, src.frame_count
    m = (n + step - 1) // step
    starts = np.arange(m) * step

    def any_in_bin(a: Any) -> Any:
        return np.maximum.reduceat(a, starts, axis=0)

    ends = np.minimum(starts + step, n) - 1
    scroll = np.add.reduceat(acts.scroll, starts)
    action = np.concatenate(
        [any_in_bin(acts.action).astype(np.float32), acts.mouse[ends], scroll[:, None]], axis=1
    ).astype(np.float32)
    prev = np.maximum(starts - 1, 0)
    start_mouse = np.where(starts[:, None] > 0, acts.mouse[prev], 0.5).astype(np.float32)
    start_known = np.where(starts > 0, acts.mouse_known[prev], False)
    state = np.concatenate(
        [
            acts.state_keys[starts].astype(np.float32),
            acts.state_buttons[starts].astype(np.float32),
            start_mouse,
            start_known[:, None].astype(np.float32),
        ],
        axis=1,
    ).astype(np.float32)
    return action, state


def export_video(
    video_path: str, episode: int, out: str, fps: float, out_fps: int, frames: int
) -> dict[str, Any]:
    """Write episode ``episode``'s video (every ``step``-th of the session's ``frames`` frames,
    ``step = fps / out_fps``) under ``out``; returns its image stats. This is the per-session
    work a Ray task runs: its arguments are a few strings and numbers, and nothing of the
    session but its video is read."""
    step = round(fps) // out_fps
    chunk, file = divmod(episode, CHUNKS_SIZE)
    video = Path(out) / VIDEO_PATH.format(video_key=IMAGE_KEY, chunk_index=chunk, file_index=file)
    video.parent.mkdir(parents=True, exist_ok=True)
    if step == 1:
        _copy_video(Path(video_path), video)
    else:
        m = (frames + step - 1) // step
        written = _resample_video(Path(video_path), video, fps, step, out_fps)
        if written != m:
            raise SessionError(
                f"the video holds {written} of the {m} frames to export",
                file=video_path,
                hint="validate the session",
            )
    return {"image_stats": _image_stats(_keyframe_sample(video))}


def episode(src: SessionSource, out_fps: int, video: dict[str, Any]) -> dict[str, Any]:
    """One episode's rows and metadata: the plan's binned actions, ``video``
    (:func:`export_video`'s result) and the session's provenance."""
    session, fps = src.session, src.fps
    step = round(fps) // out_fps
    action, state = episode_arrays(src, step)
    origin = session_provenance(session)
    return {
        "session_id": session.id,
        "length": int(action.shape[0]),
        "fps": out_fps,
        "source_fps": fps,
        "resolution": session.resolution,
        "action": action,
        "state": state,
        "image_stats": video["image_stats"],
        "provenance": {
            "aiconfig/session_id": origin.session_id,
            "aiconfig/session_path": origin.session_path,
            "aiconfig/format_version": origin.format_version,
            "aiconfig/source_fps": float(fps),
            "aiconfig/frame_step": step,
            "aiconfig/run_id": origin.run_id,
            "aiconfig/config_name": origin.config_name,
            "aiconfig/config_digest": origin.config_digest,
            "aiconfig/config_path": origin.config_path,
            "aiconfig/signers": [s.principal for s in origin.signers or ()],
        },
    }


@dataclass(frozen=True)
class _Plan:
    # Opened, validated and binned once (load_sources); the export reuses them.
    sources: list[SessionSource]
    fps: int
    resolution: tuple[int, int]
    summary: dict[str, Any]

    @property
    def paths(self) -> list[str]:
        return [str(s.session.path) for s in self.sources]

    def video_jobs(self, out: str) -> list[tuple[str, int, str, float, int, int]]:
        """:func:`export_video`'s arguments for every episode (small, picklable: Ray's too)."""
        return [
            (str(s.session.video_path), e, out, s.fps, self.fps, s.frame_count)
            for e, s in enumerate(self.sources)
        ]


def plan_export(paths: Sequence[str | Path], spec: ActionSpec, fps: int | None) -> _Plan:
    """The usable sessions (the dataset's rules: skipped ones counted) and the export fps."""
    from ._dataset import Summary, load_sources

    summary = Summary(",".join(map(str, paths)), "all")
    sources = load_sources(paths, spec, summary=summary)
    if not sources:
        raise SessionError(
            "no usable session to export",
            file=summary.root,
            hint="record sessions, or see 'aiconfig sessions validate ROOT'",
        )
    rates = {s.fps for s in sources}
    sizes = {s.session.resolution for s in sources}
    if len(rates) > 1 or len(sizes) > 1:
        raise SessionError(
            f"sessions differ in fps {sorted(rates)} or size {sorted(sizes)}; a LeRobot dataset "
            "has one of each",
            file=summary.root,
            hint="export each group of sessions to its own folder",
        )
    src_fps = rates.pop()
    if src_fps != int(src_fps):
        raise SessionError(
            f"fps {src_fps} is not whole; LeRobot needs an integer fps", file=summary.root
        )
    target = fps or int(src_fps)
    if target <= 0 or int(src_fps) % target:
        raise SessionError(
            f"--fps {target} does not divide the sessions' fps ({int(src_fps)})",
            file=summary.root,
            path="--fps",
            hint=f"use a divisor of {int(src_fps)}, e.g. {int(src_fps) // 2 or 1}",
        )
    return _Plan(sources, target, sizes.pop(), summary.to_dict())


def _run_local(
    plan: _Plan, tmp: str, progress: Callable[[int], None] | None
) -> list[dict[str, Any]]:
    out = []
    for src, job in zip(plan.sources, plan.video_jobs(tmp), strict=True):
        out.append(episode(src, plan.fps, export_video(*job)))
        if progress is not None:
            progress(1)
    return out


def export_lerobot(
    paths: Sequence[str | Path],
    out: str | Path,
    *,
    spec: ActionSpec,
    fps: int | None = None,
    task: str = "play League of Legends",
    engine: str = "local",
    progress: Callable[[int], None] | None = None,
) -> ExportResult:
    """Write every usable session under ``paths`` to ``out`` (which must not exist yet) in
    LeRobot's v3 layout. Everything is written into a temporary folder beside ``out`` and
    renamed into place at the end: a failure leaves nothing half-written."""
    out = Path(out)
    if out.exists():
        raise SessionError(
            "already exists",
            file=str(out),
            hint="export into a new folder (nothing is overwritten)",
        )
    plan = plan_export(paths, spec, fps)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        if engine == "ray":
            from .ray import export_episodes

            videos = export_episodes(plan.video_jobs(tmp), progress, work=export_video)
            episodes = [episode(s, plan.fps, v) for s, v in zip(plan.sources, videos, strict=True)]
        elif engine == "local":
            episodes = _run_local(plan, tmp, progress)
        else:
            raise AiconfigError(f"unknown engine {engine!r}; use local or ray")
        _write_tables(Path(tmp), episodes, spec, plan, task)
        publish_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(
        str(out),
        episodes=len(episodes),
        frames=sum(e["length"] for e in episodes),
        fps=plan.fps,
        engine=engine,
        summary=plan.summary,
    )


def _hf_metadata(action_dim: int, state_dim: int) -> bytes:
    def vec(n: int) -> dict[str, Any]:
        return {"feature": {"dtype": "float32", "_type": "Value"}, "length": n, "_type": "List"}

    features: dict[str, Any] = {"observation.state": vec(state_dim), "action": vec(action_dim)}
    features.update({k: {"dtype": t, "_type": "Value"} for k, t in _DEFAULTS.items()})
    return json.dumps({"info": {"features": features}}).encode()


def _data_schema(action_dim: int, state_dim: int) -> Any:
    """The arrow schema of ``data/*.parquet`` (with the ``huggingface`` features metadata)."""
    import pyarrow as pa

    return pa.schema(
        [
            ("observation.state", pa.list_(pa.float32(), state_dim)),
            ("action", pa.list_(pa.float32(), action_dim)),
            ("timestamp", pa.float32()),
            ("frame_index", pa.int64()),
            ("episode_index", pa.int64()),
            ("index", pa.int64()),
            ("task_index", pa.int64()),
        ],
        metadata={"huggingface": _hf_metadata(action_dim, state_dim)},
    )


def _frame_columns(ep: dict[str, Any], e: int, first: int, fps: int) -> dict[str, Any]:
    """Episode ``e``'s per-frame columns; its first frame is dataset row ``first``."""
    import numpy as np

    m = ep["length"]
    frame_index = np.arange(m, dtype=np.int64)
    return {
        "observation.state": ep["state"],
        "action": ep["action"],
        "timestamp": (frame_index / fps).astype(np.float32),
        "frame_index": frame_index,
        "episode_index": np.full(m, e, dtype=np.int64),
        "index": np.arange(first, first + m, dtype=np.int64),
        "task_index": np.zeros(m, dtype=np.int64),
    }


def _write_data(path: Path, cols: dict[str, Any], schema: Any) -> None:
    """One episode's data file: the vector columns as fixed-size lists."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = [
        pa.FixedSizeListArray.from_arrays(pa.array(cols[k].reshape(-1)), cols[k].shape[1])
        if k in ("observation.state", "action")
        else pa.array(cols[k])
        for k in schema.names
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_arrays(arrays, schema=schema), path, compression="snappy")


def _episode_row(
    e: int, ep: dict[str, Any], cols: dict[str, Any], first: int, fps: int, task: str
) -> dict[str, Any]:
    """Episode ``e``'s row of ``meta/episodes``: where its frames are, their stats, provenance."""
    chunk, file = divmod(e, CHUNKS_SIZE)
    m = ep["length"]
    row: dict[str, Any] = {
        "episode_index": e,
        "tasks": [task],
        "length": m,
        "data/chunk_index": chunk,
        "data/file_index": file,
        "dataset_from_index": first,
        "dataset_to_index": first + m,
        f"videos/{IMAGE_KEY}/chunk_index": chunk,
        f"videos/{IMAGE_KEY}/file_index": file,
        f"videos/{IMAGE_KEY}/from_timestamp": 0.0,
        f"videos/{IMAGE_KEY}/to_timestamp": m / fps,
    }
    stats = {IMAGE_KEY: ep["image_stats"]}
    for k in ("observation.state", "action"):
        stats[k] = _stats(cols[k])
    for k in _DEFAULTS:
        stats[k] = _stats(cols[k].reshape(-1, 1))
    for k, st in stats.items():
        for name, value in st.items():
            row[f"stats/{k}/{name}"] = value
    row.update(ep["provenance"])
    row["meta/episodes/chunk_index"] = 0
    row["meta/episodes/file_index"] = 0
    return row


def _info(
    plan: _Plan, episodes: int, frames: int, action_names: list[str], state_names: list[str]
) -> dict[str, Any]:
    """``meta/info.json``: the codebase version, fps, path templates and every feature."""
    w, h = plan.resolution
    vec = {"dtype": "float32"}
    features: dict[str, Any] = {
        IMAGE_KEY: {
            "dtype": "video",
            "shape": [h, w, 3],
            "names": ["height", "width", "channels"],
            "info": {
                "video.height": h,
                "video.width": w,
                "video.codec": "h264",
                "video.pix_fmt": "yuv420p",
                "video.is_depth_map": False,
                "video.fps": plan.fps,
                "video.channels": 3,
                "has_audio": False,
            },
        },
        "observation.state": {**vec, "shape": [len(state_names)], "names": state_names},
        "action": {**vec, "shape": [len(action_names)], "names": action_names},
    }
    features.update({k: {"dtype": t, "shape": [1], "names": None} for k, t in _DEFAULTS.items()})
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": None,
        "total_episodes": episodes,
        "total_frames": frames,
        "total_tasks": 1,
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 200,
        "fps": plan.fps,
        "splits": {"train": f"0:{episodes}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH,
        "features": features,
    }


def _write_tables(
    root: Path, episodes: list[dict[str, Any]], spec: ActionSpec, plan: _Plan, task: str
) -> None:
    """Every table and metadata file of the dataset under ``root`` (the videos are written apart).

    One data file and one ``meta/episodes`` row per episode, then ``meta/tasks.parquet``,
    ``meta/stats.json`` (over every frame) and ``meta/info.json``.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    action_names, state_names = _names(spec)
    schema = _data_schema(len(action_names), len(state_names))
    rows: list[dict[str, Any]] = []
    index = 0  # the dataset row of the episode's first frame
    all_cols: dict[str, list[Any]] = {k: [] for k in ("action", "observation.state", *_DEFAULTS)}
    image_stats = []
    for e, ep in enumerate(episodes):
        cols = _frame_columns(ep, e, index, plan.fps)
        chunk, file = divmod(e, CHUNKS_SIZE)
        _write_data(root / DATA_PATH.format(chunk_index=chunk, file_index=file), cols, schema)
        rows.append(_episode_row(e, ep, cols, index, plan.fps, task))
        for k, parts in all_cols.items():
            parts.append(cols[k] if cols[k].ndim == 2 else cols[k].reshape(-1, 1))
        image_stats.append(ep["image_stats"])
        index += ep["length"]
    (root / EPISODES_PATH).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), root / EPISODES_PATH, compression="snappy")
    _write_tasks(root, task)
    stats_all = {k: _stats(np.concatenate(v)) for k, v in all_cols.items()}
    stats_all[IMAGE_KEY] = _merge_image_stats(image_stats)
    (root / "meta/stats.json").write_text(json.dumps(stats_all, indent=4))
    info = _info(plan, len(episodes), index, action_names, state_names)
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))


def _merge_image_stats(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Episode image stats pooled (count-weighted; quantiles averaged as LeRobot does)."""
    import numpy as np

    counts = np.array([p["count"][0] for p in parts], dtype=np.float64)
    w = counts / counts.sum()

    def arr(name: str) -> Any:
        return np.array([p[name] for p in parts], dtype=np.float64)

    mean = (arr("mean") * w[:, None, None, None]).sum(axis=0)
    var = ((arr("std") ** 2 + (arr("mean") - mean) ** 2) * w[:, None, None, None]).sum(axis=0)
    out = {
        "min": arr("min").min(axis=0).tolist(),
        "max": arr("max").max(axis=0).tolist(),
        "mean": mean.tolist(),
        "std": np.sqrt(var).tolist(),
        "count": [int(counts.sum())],
    }
    for name, _ in QUANTILES:
        out[name] = (arr(name) * w[:, None, None, None]).sum(axis=0).tolist()
    return out


def _write_tasks(root: Path, task: str) -> None:
    """``meta/tasks.parquet`` as pandas writes it (the task string is the frame's index)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pandas_meta = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": None,
                "field_name": "__index_level_0__",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
    }
    schema = pa.schema(
        [("task_index", pa.int64()), ("__index_level_0__", pa.string())],
        metadata={"pandas": json.dumps(pandas_meta).encode()},
    )
    table = pa.Table.from_arrays([pa.array([0]), pa.array([task])], schema=schema)
    pq.write_table(table, root / "meta/tasks.parquet")
