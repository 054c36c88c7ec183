"""One key-path value type (parse/format, one rendering) and one schema walker."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiconfig import AIConfig, ConfigValidationError, ForkError, KeyPath, load
from aiconfig._schema import path_exists, walk_schema
from aiconfig.cli import main
from tests.conftest import MINIMAL, Writer

_keys = st.text(st.characters(codec="utf-8"), max_size=8)
_parts = st.lists(st.one_of(_keys, st.integers(0, 10_000)), max_size=6).filter(
    lambda ps: not ps or isinstance(ps[0], str)  # a path starts with a key
)


@given(_parts)
def test_format_then_parse_is_identity(parts: list[str | int]) -> None:
    path = KeyPath(parts)
    if not parts:
        assert str(path) == "" and path.display() == "<top level>"
        return
    assert KeyPath.parse(str(path)) == path


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("training.lr", ("training", "lr")),
        ("model.action_space[2]", ("model", "action_space", 2)),
        ("a[0][1].b", ("a", 0, 1, "b")),
        (
            'monitoring.latency_thresholds_ms."Qwen/Qwen2.5"',
            ("monitoring", "latency_thresholds_ms", "Qwen/Qwen2.5"),
        ),
        ("a.0", ("a", "0")),  # a bare number is a map key; only [N] is a list index
    ],
)
def test_parse_and_render(text: str, parts: tuple[str | int, ...]) -> None:
    path = KeyPath.parse(text)
    assert path == parts and tuple(path) == parts and str(path) == text
    assert hash(path) == hash(parts)  # looks up maps keyed by plain tuples


@pytest.mark.parametrize("bad", ["", "a..b", "a.", ".a", 'a."b', "a[x]", "a[0", 'a."b"c'])
def test_malformed_paths_are_value_errors(bad: str) -> None:
    with pytest.raises(ValueError, match="path"):
        KeyPath.parse(bad)


def test_value_semantics() -> None:
    path = KeyPath.parse("inference.vllm.api_key")
    assert isinstance(path[:2], KeyPath) and str(path[:2]) == "inference.vllm"
    assert path.parent == ("inference", "vllm") and path.name == "api_key"
    assert path.child("x") == KeyPath.parse("inference.vllm.api_key.x")
    assert path.startswith(("inference",)) and not path.startswith(("training",))
    assert repr(path) == "KeyPath('inference.vllm.api_key')"
    with pytest.raises(AttributeError):
        path.extra = 1  # type: ignore[attr-defined]


def test_one_schema_walker() -> None:
    steps = list(walk_schema(KeyPath.parse("training.optimizer.eps")))
    assert [str(s.path) for s in steps] == [
        "training",
        "training.optimizer",
        "training.optimizer.eps",
    ]
    assert steps[1].submodel is not None and steps[2].submodel is None
    stops = list(walk_schema(KeyPath.parse("training.lr.deeper")))
    assert len(stops) == 2  # a value has no keys below it
    unknown = list(walk_schema(KeyPath.parse("training.optimzer.lr")))
    assert unknown[-1].field is None and "optimizer" in unknown[-1].model.model_fields
    assert path_exists(AIConfig, "capture.webcam.fps") and not path_exists(AIConfig, "capture.x")
    assert not path_exists(AIConfig, 'capture."unterminated')


def test_list_items_render_with_brackets_in_messages(write_config: Writer) -> None:
    path = write_config(MINIMAL + "model:\n  action_space: [move, 7, q]\n")
    with pytest.raises(ConfigValidationError) as info:
        load(path, allow_unsigned=True)
    (problem,) = info.value.problems
    assert problem.path == "model.action_space[1]" and problem.line == 5


def test_override_paths_use_the_same_type(
    write_config: Writer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    base = write_config(MINIMAL)
    code = main(["fork", str(base), "--name", "x", "--allow-unsigned", "--set", "training.lr[0]=1"])
    err = capsys.readouterr().err
    assert code == 1 and "training.lr[0]" in err and "is not a list" in err
    from aiconfig._overrides import target_of

    assert target_of("model.action_space[0]").is_item  # list items are override paths
    with pytest.raises(ForkError, match=r"did you mean 'training\.optimizer'"):
        target_of("training.optimzer.lr")
    with pytest.raises(ForkError, match="not a list"):
        target_of("training[0]")
    assert target_of('monitoring.latency_thresholds_ms."a.b"').map_key
