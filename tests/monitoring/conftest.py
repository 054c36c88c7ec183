from __future__ import annotations

from collections.abc import Iterator

import pytest

from .otlp_receiver import OTLPReceiver


@pytest.fixture
def otlp() -> Iterator[OTLPReceiver]:
    receiver = OTLPReceiver()
    try:
        yield receiver
    finally:
        receiver.stop()
