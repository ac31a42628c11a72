"""Shared fixtures. Tests run against the source tree (installed editable)."""

from __future__ import annotations

import cantools
import pytest

from tests.common import DBC_DIR


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The long tests first, so that with two workers the rest runs beside them.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def moat_db() -> cantools.database.can.Database:
    return cantools.database.load_file(str(DBC_DIR / "moat_bms.dbc"), strict=True)


@pytest.fixture(scope="session")
def pylon_db() -> cantools.database.can.Database:
    return cantools.database.load_file(str(DBC_DIR / "pylontech_lv.dbc"), strict=True)


@pytest.fixture
def anyio_backend() -> str:
    # The gateway runs on anyio's asyncio backend (python-can hands frames over through the
    # asyncio loop).
    return "asyncio"
