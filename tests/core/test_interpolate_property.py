"""The OmegaConf-free fast path resolves exactly as OmegaConf does, wherever it applies."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from aiconfig._interpolate import _SLOW, fast_resolve

names = st.sampled_from(["A", "B", "NUM_WORKERS"])
defaults = st.one_of(
    st.none(),
    st.from_regex(r"[A-Za-z0-9_./@:+~-]{1,10}", fullmatch=True),
    st.sampled_from(["null", "true", "4", "04", "1e-4", "./data", ".5", "1_000", "-1", "x y"]),
)
literal = st.from_regex(r"[A-Za-z0-9_./ -]{0,6}", fullmatch=True)
env_values = st.dictionaries(names, st.from_regex(r"[A-Za-z0-9_${}:./-]{0,8}", fullmatch=True))


@st.composite
def expressions(draw: st.DrawFn) -> str:
    parts = [draw(literal)]
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        default = draw(defaults)
        name = draw(names)
        expr = f"${{oc.env:{name}}}" if default is None else f"${{oc.env:{name},{default}}}"
        parts += [expr, draw(literal)]
    return "".join(parts)


@settings(max_examples=120, deadline=None)
@given(text=expressions(), env=env_values)
def test_fast_path_matches_omegaconf(text: str, env: dict[str, str]) -> None:
    fast = fast_resolve(text, env)
    if fast is _SLOW:
        return
    import os

    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        container = OmegaConf.to_container(OmegaConf.create({"v": text}), resolve=True)
        assert isinstance(container, dict)
        expected = container["v"]
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert fast == expected
