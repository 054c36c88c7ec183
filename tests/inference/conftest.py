from __future__ import annotations

from collections.abc import Iterator

import pytest

from .fake_vllm import Behaviour, FakeVLLM
from .otel_helpers import OTel


@pytest.fixture
def fake_vllm() -> Iterator[FakeVLLM]:
    server = FakeVLLM(Behaviour()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def otel() -> Iterator[OTel]:
    o = OTel()
    try:
        yield o
    finally:
        o.shutdown()
