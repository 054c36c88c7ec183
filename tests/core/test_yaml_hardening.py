"""The hardened YAML profile refuses hostile input with one precise line."""

from __future__ import annotations

import pytest

from aiconfig import ConfigParseError
from aiconfig._yamlsafe import Limits, parse_yaml

BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]\n"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
).encode()


@pytest.mark.parametrize(
    ("data", "needle", "line"),
    [
        (b"a: 1\nb: 2\na: 3\n", "duplicate key 'a' (first on line 1, again on line 3)", 3),
        (b"a:\n  x: 1\n  x: 2\n", "duplicate key 'x' (first on line 2, again on line 3)", 3),
        (b"a: !!python/object/apply:os.system [ls]\n", "is not allowed", 1),
        (b"a: !custom 3\n", "tag '!custom' is not allowed", 1),
        (b"a: !!binary aGVsbG8=\n", "is not allowed", 1),
        (BOMB, "more than 100000 nodes", None),
        (b"a: " + b"[" * 5000 + b"]" * 5000, "nesting deeper than 32", 1),
        (b"", "the file is empty", None),
        (b"   \n\n", "the file is empty", None),
        (b"# just a comment\n", "the file is empty", None),
        (b"- a\n- b\n", "top level is a list", 1),
        (b"plain string\n", "top level is a str", 1),
        (b"a: 1\n\x00junk", "NUL byte", 2),
        (b"a: \xff\xfe\n", "invalid UTF-8", 1),
        (b"a: [1, 2\nb: 3\n", "YAML syntax error", 2),
        (b"a: 1\n---\nb: 2\n", "more than one YAML document", 2),
        (b"? [a, b]\n: 1\n", "mapping or list used as a key", 1),
        (b"a: *nope\n", "unknown alias *nope", 1),
    ],
)
def test_hostile_input_is_refused(data: bytes, needle: str, line: int | None) -> None:
    with pytest.raises(ConfigParseError) as info:
        parse_yaml(data, "bad.yaml")
    err = info.value
    assert needle in str(err)
    assert "\n" not in str(err)
    assert str(err).startswith("bad.yaml")
    if line is not None:
        assert err.problems[0].line == line


def test_size_cap() -> None:
    with pytest.raises(ConfigParseError, match="over the 100-byte limit"):
        parse_yaml(b"a: " + b"x" * 200, "big.yaml", Limits(max_bytes=100))


def test_alias_expansions_are_capped() -> None:
    data = b"a: &a 1\nb: [" + b", ".join([b"*a"] * 50) + b"]\n"
    with pytest.raises(ConfigParseError, match="too many alias expansions"):
        parse_yaml(data, "x.yaml", Limits(max_alias_expansions=10))


def test_yaml11_traps_are_recorded_and_floats_fixed() -> None:
    parsed = parse_yaml(b"lr: 1e-4\nneg: -2E+3\ncountry: NO\nflag: true\nq: 'no'\n", "x.yaml")
    assert parsed.data == {"lr": 1e-4, "neg": -2000.0, "country": False, "flag": True, "q": "no"}
    assert isinstance(parsed.data["lr"], float)
    assert parsed.yaml11_bools == {("country",): "NO"}
    assert parsed.lines[("q",)] == 5


def test_merge_keys_and_anchors_work_within_limits() -> None:
    parsed = parse_yaml(b"base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n", "x.yaml")
    assert parsed.data["d"] == {"x": 1, "y": 3}
    parsed.data["d"]["x"] = 5
    assert parsed.data["base"]["x"] == 1  # aliases are copies, not shared objects


def test_utf8_bom_is_accepted() -> None:
    assert parse_yaml("\ufeffa: 1\n".encode(), "x.yaml").data == {"a": 1}
