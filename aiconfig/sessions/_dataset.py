"""PyTorch datasets over recorded sessions, built from a config (imports torch: load it lazily).

``SessionDataset.from_config(cfg, split="train")`` reads ``training.dataset`` (sessions_dir,
train_split, min_session_s), ``training.seed`` and ``model`` (input_resolution, frame_stack,
action_space, key_vocabulary, action_map). Sample ``i`` of a session is::

    frames       uint8 [K, 3, H, W]  frames i-K+1 .. i (frame 0 repeated before the start)
    action       float32 [A]         multi-hot over model.action_space
    keys         float32 [V]         keys held during frame i, over model.key_vocabulary
    buttons      float32 [3]         mouse buttons held (left, right, middle)
    mouse        float32 [2]         pointer at the end of frame i / window size, in [0, 1]
    mouse_known  bool                False before the session's first pointer row
    scroll       float32             scroll delta during frame i
    session_id   str, frame_index int

(binning: :mod:`._actions`; decoding: :mod:`._decode`). Sessions are split by session, never
by frame: a session is in ``train`` when ``sha256(seed:session_id)`` falls below
``train_split``, so adding sessions never moves one between splits. Sessions that are
unfinished, invalid (the one validator) or shorter than ``min_session_s`` are skipped and
counted in :meth:`SessionDataset.summary`.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from .._errors import AiconfigError, BudgetError, SessionError
from ._actions import ActionSpec, FrameActions, bin_actions
from ._catalog import discover
from ._decode import FrameReader, iter_clip
from ._format import STATUS_COMPLETE, STATUS_RECOVERED
from ._session import Session, open_session
from ._validate import validate_session

__all__ = [
    "SessionClipDataset",
    "SessionDataset",
    "SessionSource",
    "load_sources",
    "split_of",
]

Split = Literal["train", "val", "all"]


def split_of(session_id: str, seed: int, train_split: float) -> str:
    """``train`` or ``val`` for one session: stable, from the seed and the id only."""
    digest = hashlib.sha256(f"{seed}:{session_id}".encode()).digest()
    return "train" if int.from_bytes(digest[:8], "big") / 2**64 < train_split else "val"


@dataclass
class SessionSource:
    """One usable session: where its video is and its per-frame actions."""

    session: Session
    frame_count: int
    gop: int
    actions: FrameActions

    @property
    def id(self) -> str:
        return self.session.id

    @property
    def fps(self) -> float:
        return self.session.fps


@dataclass
class Summary:
    root: str
    split: str
    found: int = 0
    used: int = 0
    other_split: int = 0
    samples: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_sessions: list[dict[str, str]] = field(default_factory=list)

    def skip(self, kind: str, where: str, reason: str) -> None:
        self.skipped[kind] = self.skipped.get(kind, 0) + 1
        self.skipped_sessions.append({"session": where, "kind": kind, "reason": reason})

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "split": self.split,
            "sessions_found": self.found,
            "sessions_used": self.used,
            "sessions_in_other_split": self.other_split,
            "samples": self.samples,
            "skipped": dict(sorted(self.skipped.items())),
            "skipped_sessions": list(self.skipped_sessions),
        }


def load_sources(
    paths: Sequence[str | Path],
    spec: ActionSpec,
    *,
    min_frames: int = 1,
    min_session_s: float = 0.0,
    split: Split = "all",
    seed: int = 0,
    train_split: float = 0.9,
    summary: Summary | None = None,
) -> list[SessionSource]:
    """Every usable session under ``paths`` (each a session or a root searched recursively),
    in session-id order; what is skipped and why goes into ``summary``."""
    summary = summary if summary is not None else Summary(",".join(map(str, paths)), split)
    found: list[tuple[Path, str | None]] = []
    for root in paths:
        found.extend(discover(Path(root)))
    out: list[SessionSource] = []
    for path, problem in sorted(found):
        summary.found += 1
        if problem is not None:
            summary.skip("unreadable", str(path), problem)
            continue
        try:
            session = open_session(path)
        except AiconfigError as exc:
            summary.skip("unreadable", str(path), str(exc))
            continue
        if session.status not in (STATUS_COMPLETE, STATUS_RECOVERED):
            summary.skip("unfinished", session.id, f"status {session.status}")
            continue
        if split != "all" and split_of(session.id, seed, train_split) != split:
            summary.other_split += 1
            continue
        src = _source(session, spec, summary, min_frames, min_session_s)
        if src is not None:
            out.append(src)
            summary.used += 1
            summary.samples += src.frame_count
    return out


def _source(
    session: Session, spec: ActionSpec, summary: Summary, min_frames: int, min_session_s: float
) -> SessionSource | None:
    """``session`` validated and binned, or ``None`` (skipped, the reason in ``summary``).

    events.parquet is read once: the validator checks the very table the actions are binned
    from (and it is dropped on return). Unreadable, it is left to the validator, which says why.
    """
    try:
        events = session.events()
    except (SessionError, BudgetError):  # the validator streams it and says why
        events = None
    check = validate_session(session.path, verify_hashes=False, events=events)
    if not check.valid:
        summary.skip("invalid", session.id, check.problems[0])
        return None
    n = session.frame_count
    seconds = n / session.fps if session.fps > 0 else 0.0
    if n < min_frames or seconds < min_session_s:
        summary.skip("too_short", session.id, f"{seconds:.1f} s < min_session_s {min_session_s} s")
        return None
    try:
        actions = bin_actions(session, spec, frame_count=n, events=events)
    except SessionError as exc:
        summary.skip("invalid", session.id, str(exc))
        return None
    gop = session.keyframe_interval or max(1, round(session.fps))
    return SessionSource(session, n, gop, actions)


def _stack(i: int, k: int) -> list[int]:
    return [max(0, j) for j in range(i - k + 1, i + 1)]


def _sample(src: SessionSource, i: int, frames: list[Any]) -> dict[str, Any]:
    a = src.actions
    return {
        "frames": torch.from_numpy(np.stack(frames)),
        "action": torch.from_numpy(a.action[i].astype(np.float32)),
        "keys": torch.from_numpy(a.keys[i].astype(np.float32)),
        "buttons": torch.from_numpy(a.buttons[i].astype(np.float32)),
        "mouse": torch.from_numpy(a.mouse[i].copy()),
        "mouse_known": bool(a.mouse_known[i]),
        "scroll": torch.tensor(float(a.scroll[i]), dtype=torch.float32),
        "session_id": src.id,
        "frame_index": i,
    }


class _FromConfig:
    @staticmethod
    def _settings(cfg: Any, root: str | Path | None) -> dict[str, Any]:
        ds = cfg.training.dataset
        return {
            "paths": [root if root is not None else ds.sessions_dir],
            "spec": ActionSpec.from_model(cfg.model),
            "resolution": tuple(cfg.model.input_resolution),
            "frame_stack": int(cfg.model.frame_stack),
            "min_session_s": float(ds.min_session_s),
            "seed": int(cfg.training.seed),
            "train_split": float(ds.train_split),
        }


class SessionDataset(Dataset[dict[str, Any]], _FromConfig):
    """Map-style: ``len()`` = frames of every usable session; ``ds[j]`` = one sample (see the
    module docstring). Decoding is per process with a bounded cache (``cache_mb``)."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        *,
        spec: ActionSpec,
        resolution: tuple[int, int] = (256, 144),
        frame_stack: int = 4,
        split: Split = "all",
        seed: int = 0,
        train_split: float = 0.9,
        min_session_s: float = 0.0,
        cache_mb: float = 128,
    ) -> None:
        self.spec = spec
        self.resolution = (int(resolution[0]), int(resolution[1]))
        self.frame_stack = int(frame_stack)
        self._summary = Summary(",".join(map(str, paths)), split)
        self.sources = load_sources(
            paths,
            spec,
            min_frames=1,
            min_session_s=min_session_s,
            split=split,
            seed=seed,
            train_split=train_split,
            summary=self._summary,
        )
        self._starts = [0]
        for src in self.sources:
            self._starts.append(self._starts[-1] + src.frame_count)
        self.reader = FrameReader(self.resolution, cache_bytes=int(cache_mb * (1 << 20)))

    @classmethod
    def from_config(
        cls, cfg: Any, split: Split = "train", *, root: str | Path | None = None, **kwargs: Any
    ) -> SessionDataset:
        """The dataset a config describes; ``root`` overrides ``training.dataset.sessions_dir``
        and keyword arguments any other setting (``min_session_s=1``, ``cache_mb=64``)."""
        return cls(**{**cls._settings(cfg, root), "split": split, **kwargs})

    def __len__(self) -> int:
        return self._starts[-1]

    def locate(self, index: int) -> tuple[SessionSource, int]:
        """``(session, frame)`` of sample ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} is outside 0..{len(self) - 1}")
        s = bisect.bisect_right(self._starts, index) - 1
        return self.sources[s], index - self._starts[s]

    def __getitem__(self, index: int) -> dict[str, Any]:
        src, i = self.locate(int(index))
        frames = self.reader.frames(
            src.session.video_path, src.fps, src.gop, _stack(i, self.frame_stack)
        )
        return _sample(src, i, frames)

    def summary(self) -> dict[str, Any]:
        """Sessions found, used, in the other split, skipped (by kind, with reasons); samples."""
        return self._summary.to_dict()


class SessionClipDataset(IterableDataset[dict[str, Any]], _FromConfig):
    """Streaming: clips of ``clip_frames`` frames (aligned to keyframes), in a shuffled order
    per epoch (``set_epoch``), split across DataLoader workers; each clip is decoded once, in
    order, after one seek. ``shuffle_buffer`` mixes samples of neighbouring clips."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        *,
        spec: ActionSpec,
        resolution: tuple[int, int] = (256, 144),
        frame_stack: int = 4,
        split: Split = "all",
        seed: int = 0,
        train_split: float = 0.9,
        min_session_s: float = 0.0,
        clip_frames: int | None = None,
        shuffle: bool = True,
        shuffle_buffer: int = 256,
    ) -> None:
        self.spec = spec
        self.resolution = (int(resolution[0]), int(resolution[1]))
        self.frame_stack = int(frame_stack)
        self.seed = seed
        self.shuffle = shuffle
        self.shuffle_buffer = max(1, shuffle_buffer)
        self.epoch = 0
        self._summary = Summary(",".join(map(str, paths)), split)
        self.sources = load_sources(
            paths,
            spec,
            min_session_s=min_session_s,
            split=split,
            seed=seed,
            train_split=train_split,
            summary=self._summary,
        )
        self.clips: list[tuple[int, int, int]] = []  # (source, first frame, end)
        for s, src in enumerate(self.sources):
            step = clip_frames or 2 * src.gop
            step = max(src.gop, step // src.gop * src.gop)  # whole GOPs: one seek, no waste
            for start in range(0, src.frame_count, step):
                self.clips.append((s, start, min(start + step, src.frame_count)))

    @classmethod
    def from_config(
        cls, cfg: Any, split: Split = "train", *, root: str | Path | None = None, **kwargs: Any
    ) -> SessionClipDataset:
        kwargs.setdefault("shuffle", bool(cfg.training.dataset.shuffle))
        return cls(**{**cls._settings(cfg, root), "split": split, **kwargs})

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return sum(src.frame_count for src in self.sources)

    def summary(self) -> dict[str, Any]:
        return self._summary.to_dict()

    def iter_clip(self, clip: tuple[int, int, int]) -> Iterator[dict[str, Any]]:
        """The samples of one clip, in frame order (what a Ray read task runs too)."""
        s, start, stop = clip
        src = self.sources[s]
        k = self.frame_stack
        first = max(0, start - k + 1)
        first = first // src.gop * src.gop
        window: list[Any] = []
        for index, array in iter_clip(
            src.session.video_path, src.fps, first, stop, self.resolution
        ):
            window.append(array)
            if len(window) > k:
                window.pop(0)
            if index >= start:
                frames = [window[0]] * (k - len(window)) + window
                yield _sample(src, index, frames)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        order = list(range(len(self.clips)))
        rng = random.Random(f"{self.seed}:{self.epoch}")  # noqa: S311 - shuffling, not secrets
        if self.shuffle:
            rng.shuffle(order)
        info = get_worker_info()
        if info is not None:
            order = order[info.id :: info.num_workers]
        if not self.shuffle:
            for c in order:
                yield from self.iter_clip(self.clips[c])
            return
        buffer: list[dict[str, Any]] = []
        for c in order:
            for fresh in self.iter_clip(self.clips[c]):
                if len(buffer) < self.shuffle_buffer:
                    buffer.append(fresh)
                    continue
                j = rng.randrange(len(buffer))
                out, buffer[j] = buffer[j], fresh
                yield out
        rng.shuffle(buffer)
        yield from buffer
