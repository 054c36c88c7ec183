"""model.key_vocabulary and model.action_map: defaults, validation, the signed baseline."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from aiconfig import AIConfig, load
from aiconfig._actions import LEAGUE_ACTION_MAP, check_input_name
from tests.conftest import REPO


def model(**fields: object) -> AIConfig:
    return AIConfig.model_validate({"meta": {"name": "t", "version": 1}, "model": fields})


def test_the_signed_baseline_validates_with_the_league_default(tmp_path: Path) -> None:
    cfg = load(REPO / "experiments" / "baseline.yaml", data_root=tmp_path)
    assert cfg.model.action_map is None
    assert dict(cfg.model.resolved_action_map()) == dict(LEAGUE_ACTION_MAP)
    assert cfg.model.resolved_action_map()["mouse_right"] == "move"
    assert {"q", "w", "e", "r", "d", "f"} <= set(cfg.model.key_vocabulary)


def test_the_default_map_follows_a_smaller_action_space() -> None:
    cfg = model(action_space=["move", "q"])
    assert dict(cfg.model.resolved_action_map()) == {"mouse_right": "move", "q": "q"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"action_space": ["move"], "action_map": {"mouse_right": "jump"}}, "'jump', which is not"),
        (
            {"action_space": ["move", "b"], "action_map": {"mouse_right": "move"}},
            "no input in model.action_map drives 'b'",
        ),
        ({"action_map": {"mouse_lft": "move"}}, "unknown mouse button 'mouse_lft'"),
        ({"action_map": {"spcae": "move"}}, "did you mean 'space'"),
        ({"key_vocabulary": ["q", "q"]}, "keys must be unique; q repeated"),
        ({"action_space": ["q", "q"]}, "action names must be unique"),
        ({"key_vocabulary": ["Q"]}, "unknown input 'Q'"),
    ],
)
def test_bad_maps_are_refused_with_the_fix(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        model(**fields)


def test_input_names() -> None:
    assert check_input_name("q") is None and check_input_name("f12") is None
    assert check_input_name("mouse_middle") is None and check_input_name("1") is None
    assert "mouse_left" in (check_input_name("mouse_x1") or "")
    cfg = model(action_space=["item1"], action_map={1: "item1"})  # YAML reads `1:` as an int
    assert dict(cfg.model.resolved_action_map()) == {"1": "item1"}
