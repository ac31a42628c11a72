"""Fixtures for the node firmware tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.firmware.harness import Bench


@pytest.fixture
def bench(moat_db: Any) -> Callable[..., Bench]:
    """Factory: bench(settings={...}, cells=16, ...) -> Bench on the DBC."""

    def make(**kwargs: Any) -> Bench:
        return Bench(moat_db, **kwargs)

    return make
