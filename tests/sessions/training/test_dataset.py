"""SessionDataset on sessions recorded for real, with keys injected by XTEST at known frames."""

from __future__ import annotations

import random
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from aiconfig import AIConfig
from aiconfig.sessions import ActionSpec, SessionClipDataset, SessionDataset, open_session, split_of

from .conftest import TimedRoot
from .timed import TAP_KEYS

pytestmark = [pytest.mark.x11, pytest.mark.slow]


def config(**training: object) -> AIConfig:
    return AIConfig.model_validate(
        {
            "meta": {"name": "t", "version": 1},
            "training": {"dataset": {"min_session_s": 1}, **training},
        }
    )


def independent_decode(video: Path, size: tuple[int, int]) -> list[np.ndarray]:
    """Every frame in order, no seeking, no cache, plain PyAV: the reference."""
    w, h = size
    with av.open(str(video)) as c:
        return [
            f.to_ndarray(width=w, height=h, format="rgb24", interpolation="AREA").transpose(2, 0, 1)
            for f in c.decode(video=0)
        ]


@pytest.fixture(scope="module")
def dataset(timed: TimedRoot) -> SessionDataset:
    return SessionDataset.from_config(config(), split="all", root=timed.root)


def test_every_injected_input_is_in_exactly_the_right_sample(
    timed: TimedRoot, dataset: SessionDataset
) -> None:
    spec = dataset.spec
    assert spec.action_space == ("move", "attack", "q", "w", "e", "r", "d", "f")
    by_id = {src.id: src for src in dataset.sources}
    checked = 0
    for inj in timed.injected:
        assert len(inj.keys) >= 5, inj.ambiguous  # the machine was not hopelessly loaded
        src = by_id[open_session(inj.session).id]
        a = src.actions
        for key, frame in inj.keys.items():
            col = spec.key_vocabulary.index(key)
            assert np.nonzero(a.keys[:, col])[0].tolist() == [frame], key
            action = spec.action_map.get(key)
            if action is not None:
                col = spec.action_space.index(action)
                assert np.nonzero(a.action[:, col])[0].tolist() == [frame], key
            checked += 1
        if inj.right_click is not None:  # right-click is "move" in the League default
            assert np.nonzero(a.action[:, 0])[0].tolist() == [inj.right_click]
            assert np.nonzero(a.buttons[:, 1])[0].tolist() == [inj.right_click]
            assert not a.buttons[:, 0].any() and not a.buttons[:, 2].any()
        if inj.scroll_up is not None:
            assert np.nonzero(a.scroll)[0].tolist() == [inj.scroll_up]
            assert a.scroll[inj.scroll_up] == 1.0
        if inj.move is not None:
            frame, x, y = inj.move
            assert not a.mouse_known[:frame].any() and a.mouse_known[frame:].all()
            np.testing.assert_allclose(a.mouse[frame], [x / 320, y / 240])
        # The sample the DataLoader gets says the same thing.
        for key, frame in inj.keys.items():
            j = dataset.sources.index(src)
            sample = dataset[sum(s.frame_count for s in dataset.sources[:j]) + frame]
            assert sample["frame_index"] == frame and sample["session_id"] == src.id
            assert sample["keys"][spec.key_vocabulary.index(key)] == 1.0
            assert sample["keys"].sum() == 1.0
        # A tap delayed onto a frame boundary is in the frames its bracket spans, no others.
        for key, (lo, hi) in inj.ambiguous.items():
            if key in TAP_KEYS:
                frames = np.nonzero(a.keys[:, spec.key_vocabulary.index(key)])[0].tolist()
                assert frames and set(frames) <= set(range(int(lo) - 1, int(hi) + 2)), key
        # No key anywhere that was not injected.
        untouched = [c for c, k in enumerate(spec.key_vocabulary) if k not in TAP_KEYS]
        assert not a.keys[:, untouched].any()
    assert checked >= len(TAP_KEYS)


def test_frames_equal_an_independent_decode_in_random_order(dataset: SessionDataset) -> None:
    k = dataset.frame_stack
    refs = {
        src.id: independent_decode(src.session.video_path, dataset.resolution)
        for src in dataset.sources
    }
    order = list(range(len(dataset)))
    random.Random(3).shuffle(order)
    for j in order:
        sample = dataset[j]
        frames = sample["frames"]
        assert frames.dtype == torch.uint8 and tuple(frames.shape) == (k, 3, 144, 256)
        ref = refs[sample["session_id"]]
        i = sample["frame_index"]
        want = np.stack([ref[max(0, f)] for f in range(i - k + 1, i + 1)])
        assert np.array_equal(frames.numpy(), want), (sample["session_id"], i)
    assert dataset.reader.seeks < len(order)  # GOP-aware: most samples need no seek


def test_the_clip_variant_gives_the_same_samples(timed: TimedRoot, dataset: SessionDataset) -> None:
    clips = SessionClipDataset.from_config(config(), split="all", root=timed.root, clip_frames=30)
    seen = {}
    for s in clips:
        seen[(s["session_id"], s["frame_index"])] = s
    assert len(seen) == len(dataset) == len(clips)
    for j in random.Random(5).sample(range(len(dataset)), 40):
        a = dataset[j]
        b = seen[(a["session_id"], a["frame_index"])]
        for key in ("frames", "action", "keys", "buttons", "mouse", "scroll"):
            assert torch.equal(a[key], b[key]), key
    again = [(s["session_id"], s["frame_index"]) for s in clips]
    clips.set_epoch(1)
    other = [(s["session_id"], s["frame_index"]) for s in clips]
    assert sorted(again) == sorted(other) and again != other  # reshuffled per epoch, same set


def test_dataloader_workers_batch_and_keep_their_own_decoders(dataset: SessionDataset) -> None:
    loader = DataLoader(dataset, batch_size=8, shuffle=True, num_workers=2,
                        generator=torch.Generator().manual_seed(0))  # fmt: skip
    n = 0
    for batch in loader:
        assert batch["frames"].dtype == torch.uint8 and batch["frames"].shape[1:] == (
            4,
            3,
            144,
            256,
        )
        assert batch["action"].dtype == torch.float32 and batch["action"].shape[1] == 8
        assert batch["mouse"].shape[1] == 2 and batch["keys"].shape[1] == len(
            dataset.spec.key_vocabulary
        )
        n += batch["frames"].shape[0]
    assert n == len(dataset)
    clips = SessionClipDataset(
        [s.session.path for s in dataset.sources], spec=dataset.spec, clip_frames=30
    )
    got = sorted((sid, int(i)) for b in DataLoader(clips, batch_size=16, num_workers=2)
                 for sid, i in zip(b["session_id"], b["frame_index"], strict=True))  # fmt: skip
    assert got == sorted((s.id, i) for s in dataset.sources for i in range(s.frame_count))


def test_split_is_by_session_deterministic_and_counted(timed: TimedRoot) -> None:
    ids = sorted(
        s.id for s in SessionDataset.from_config(config(), split="all", root=timed.root).sources
    )
    seed = next(s for s in range(100) if len({split_of(i, s, 0.5) for i in ids}) == 2)
    cfg = AIConfig.model_validate(
        {"meta": {"name": "t", "version": 1},
         "training": {"seed": seed, "dataset": {"min_session_s": 1, "train_split": 0.5}}}
    )  # fmt: skip
    train = SessionDataset.from_config(cfg, split="train", root=timed.root)
    val = SessionDataset.from_config(cfg, split="val", root=timed.root)
    assert {s.id for s in train.sources}.isdisjoint({s.id for s in val.sources})
    assert sorted([*(s.id for s in train.sources), *(s.id for s in val.sources)]) == ids
    again = SessionDataset.from_config(cfg, split="train", root=timed.root)
    assert [s.id for s in again.sources] == [s.id for s in train.sources]
    summary = train.summary()
    assert summary["sessions_found"] == 2 and summary["sessions_used"] == 1
    assert summary["sessions_in_other_split"] == 1 and summary["samples"] == len(train)
    # min_session_s from the config: 3-second sessions are too short for 10 s; counted, named.
    short = SessionDataset.from_config(
        AIConfig.model_validate({"meta": {"name": "t", "version": 1}}), split="all", root=timed.root
    )
    assert len(short) == 0
    assert short.summary()["skipped"] == {"too_short": 2}
    assert all("min_session_s" in s["reason"] for s in short.summary()["skipped_sessions"])


def test_a_custom_action_map_from_the_config(timed: TimedRoot) -> None:
    cfg = AIConfig.model_validate(
        {"meta": {"name": "t", "version": 1},
         "model": {"action_space": ["recall", "item1"], "action_map": {"b": "recall", 1: "item1"}},
         "training": {"dataset": {"min_session_s": 1}}}
    )  # fmt: skip
    ds = SessionDataset.from_config(cfg, split="all", root=timed.root)
    spec = ActionSpec.from_model(cfg.model)
    assert spec.action_map == {"b": "recall", "1": "item1"}
    for inj in timed.injected:
        src = next(s for s in ds.sources if s.id == open_session(inj.session).id)
        if "b" in inj.keys:
            assert np.nonzero(src.actions.action[:, 0])[0].tolist() == [inj.keys["b"]]
        if "1" in inj.keys:
            assert np.nonzero(src.actions.action[:, 1])[0].tolist() == [inj.keys["1"]]
