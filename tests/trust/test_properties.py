"""Hypothesis properties: sign-then-verify holds; any single byte flip is rejected."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiconfig import AiconfigError, TrustError, load
from aiconfig._trust import sig_path, verify_signatures
from tests.conftest import Keyring

CONFIG = b"meta:\n  name: prop\n  version: 1\ntraining:\n  lr: 3e-4\n  epochs: 7\n"
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def signed(keyring: Keyring) -> tuple[Keyring, Path]:
    keyring.add("alice@x")
    cfg = keyring.root / "c.yaml"
    cfg.write_bytes(CONFIG)
    keyring.sign(cfg, "alice@x")
    return keyring, cfg


@SETTINGS
@given(
    position=st.integers(min_value=0, max_value=len(CONFIG) - 1),
    flip=st.integers(min_value=1, max_value=255),
)
def test_any_byte_flip_of_config_is_rejected(
    signed: tuple[Keyring, Path], position: int, flip: int
) -> None:
    _, cfg = signed
    data = bytearray(CONFIG)
    data[position] ^= flip
    with pytest.raises(TrustError):
        verify_signatures(cfg, bytes(data))


@SETTINGS
@given(data=st.data())
def test_any_byte_flip_of_signature_is_rejected(
    signed: tuple[Keyring, Path], data: st.DataObject
) -> None:
    _, cfg = signed
    original = sig_path(cfg).read_bytes()
    position = data.draw(st.integers(min_value=0, max_value=len(original) - 1))
    flip = data.draw(st.integers(min_value=1, max_value=255))
    mutated = bytearray(original)
    mutated[position] ^= flip
    sig_path(cfg).write_bytes(bytes(mutated))
    try:
        with pytest.raises(AiconfigError):
            verify_signatures(cfg, CONFIG)
    finally:
        sig_path(cfg).write_bytes(original)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(min_size=1, max_size=300))
def test_sign_then_verify_any_bytes(keyring: Keyring, body: bytes) -> None:
    if "alice@x" not in keyring.keys:
        keyring.add("alice@x")
    cfg = keyring.root / "any.yaml"
    cfg.write_bytes(body)
    sig_path(cfg).unlink(missing_ok=True)
    keyring.sign(cfg, "alice@x")
    assert verify_signatures(cfg, body).principals == ("alice@x",)


def test_exhaustive_byte_flips_of_small_signed_config(
    signed: tuple[Keyring, Path], tmp_path: Path
) -> None:
    """Every byte position, the tamper corpus in full (not sampled)."""
    _, cfg = signed
    load(cfg, data_root=tmp_path)
    for i in range(len(CONFIG)):
        data = bytearray(CONFIG)
        data[i] ^= 0x01
        with pytest.raises(TrustError):
            verify_signatures(cfg, bytes(data))
