"""Hypothesis properties: fork-then-diff shows exactly the overrides; locked and stale refused."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiconfig import AIConfig, ForkError, diff_configs
from aiconfig._fork import fork_for_experiment, render_fork
from aiconfig._overrides import format_path
from tests.fork.conftest import Project, make_project

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
map_key = st.text(alphabet="abcxyz.-/ _", min_size=1, max_size=6)

LEAVES: dict[str, st.SearchStrategy[Any]] = {
    "training.lr": st.floats(min_value=1e-6, max_value=10.0),
    "training.batch_size": st.integers(1, 4096),
    "training.epochs": st.integers(1, 1000),
    "training.mixed_precision": st.booleans(),
    "training.scheduler": st.sampled_from(["cosine", "linear", "constant"]),
    "training.optimizer.betas": st.tuples(st.floats(0, 1), st.floats(0, 1)).map(list),
    "training.dataset.num_workers": st.integers(0, 256),
    "model.name": text,
    "model.dropout": st.floats(0.0, 1.0),
    "model.architecture": st.sampled_from(["cnn_lstm", "transformer", "resnet_mlp"]),
    "model.action_space": st.lists(
        st.text("qwerdf", min_size=1, max_size=3), max_size=10, unique=True
    ),
    "model.checkpoint": st.none() | text,
    "inference.vllm.temperature": st.floats(0.0, 2.0),
    "capture.preset": st.sampled_from(["ultrafast", "superfast", "veryfast", "medium"]),
    "capture.duration_s": st.none() | st.floats(0.1, 1e5),
}


@st.composite
def override_sets(draw: st.DrawFn) -> dict[str, Any]:
    paths = draw(st.lists(st.sampled_from(sorted(LEAVES)), unique=True, max_size=8))
    out = {p: draw(LEAVES[p]) for p in paths}
    for key in draw(st.lists(map_key, unique=True, max_size=3)):
        path = format_path(("monitoring", "latency_thresholds_ms", key))
        out[path] = draw(st.floats(0.001, 1e6))
    return out


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return make_project(tmp_path_factory.mktemp("props"))


@pytest.fixture(scope="module")
def base(shared: Project) -> AIConfig:
    return shared.load(shared.baseline)


def _value(config: AIConfig, dotted: str) -> Any:
    node: Any = config.model_dump(mode="json")
    for seg in re.findall(r'"([^"]*)"|([^."]+)', dotted):
        key = seg[0] or seg[1]
        if not isinstance(node, dict) or key not in node:
            return ("<absent>",)
        node = node[key]
    return node


def _differs(a: Any, b: Any) -> bool:
    return type(a) is not type(b) or a != b


@SETTINGS
@given(overrides=override_sets())
def test_diff_reports_exactly_the_overridden_paths(
    base: AIConfig, overrides: dict[str, Any]
) -> None:
    fork = fork_for_experiment(base, "prop", overrides)
    changes, meta = diff_configs(base, fork)
    reported = {re.sub(r"\[\d+\]$", "", c.path) for c in changes}
    expected = {p for p in overrides if _differs(_value(base, p), _value(fork, p))}
    assert reported == expected
    assert {c.path for c in meta} <= {"meta.name", "meta.description", "meta.version"}
    assert diff_configs(fork, fork) == ([], [])


@SETTINGS
@given(
    path=st.sampled_from(
        ["capture.window_title", "capture.fps", "capture.audio.sample_rate", "training.seed"]
    ),
    value=st.integers() | st.text(max_size=5) | st.none(),
)
def test_locked_paths_always_refused(base: AIConfig, path: str, value: Any) -> None:
    assert path in base.meta.locked
    with pytest.raises(ForkError, match="locked"):
        fork_for_experiment(base, "x", {path: value})


@settings(max_examples=25, deadline=None)
@given(edit=st.binary(min_size=1, max_size=16), where=st.integers(0, 10_000))
def test_any_base_change_makes_the_fork_stale(shared: Project, edit: bytes, where: int) -> None:
    original = shared.baseline.read_bytes()
    fork_path = shared.exp / "stale-prop.yaml"
    if not fork_path.exists():
        fork_path.write_bytes(
            render_fork(
                base_rel="baseline.yaml",
                base_sha256=hashlib.sha256(original).hexdigest(),
                name="stale-prop",
                version=1,
                description="",
                overrides={"training.lr": 0.001},
            )
        )
        shared.sign(fork_path)
    where %= len(original) + 1
    changed = original[:where] + edit + original[where:]
    try:
        shared.baseline.write_bytes(changed)
        with pytest.raises(ForkError, match="stale fork"):
            shared.load(fork_path)
    finally:
        shared.baseline.write_bytes(original)
    assert Path(shared.baseline).read_bytes() == original
