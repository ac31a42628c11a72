"""Shared fixtures. Tests run against the source tree (installed editable)."""

from __future__ import annotations

from typing import Any

import cantools
import pytest
from xdist.scheduler import LoadFileScheduling

from tests.common import DBC_DIR


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The long tests first, so that with two workers the rest runs beside them.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`make test`'s `--dist loadfile`, with the files handed out in collection order (slow
    first) and at most one file waiting behind the one a worker runs.

    xdist's own loadfile orders the files by their number of tests, which put the one-test
    week file near the end, and queues files behind a worker's current one until fewer than
    three tests wait: files queued behind the week waited ten minutes. A worker holds back
    its last test until it knows the next (for fixture teardown), so one file has to wait
    behind the week; here it is only one."""
    if config.getoption("dist", None) != "loadfile":
        return None
    return _OneFileBehind(config, log)


class _OneFileBehind(LoadFileScheduling):
    # Overrides two internals of xdist's LoadScopeScheduling (3.8 has them): the
    # reorder option read by schedule() and the _reschedule() threshold.
    def schedule(self) -> None:
        self.config.option.loadscopereorder = False
        super().schedule()

    def _reschedule(self, node: Any) -> None:
        if self._pending_of(self.assigned_work[node]) <= 1:
            super()._reschedule(node)


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
