"""The asyncio runner and the board entry point, on CPython with a simulated clock."""

from __future__ import annotations

import asyncio
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from bms import main as board_main
from bms.can.loopback import LoopbackBus
from bms.config import load_config
from bms.hw.sim import SimHardware
from bms.lifecycle import CONFIG_ERROR, STANDBY
from bms.node import Node
from bms.runner import run


class Clock:
    """Simulated milliseconds; each cycle costs work_ms of 'CPU time'."""

    def __init__(self, work_ms: int = 3) -> None:
        self.now = 1000
        self.work_ms = work_ms
        self.sleeps: list[int] = []

    def __call__(self) -> int:
        return self.now

    async def sleep_ms(self, ms: int) -> None:
        self.sleeps.append(ms)
        self.now += ms


class SteppedNode:
    """Records the times it is stepped and costs the clock some work."""

    def __init__(self, clock: Clock, cycle_ms: int = 50, slow: dict[int, int] | None = None):
        self.config = load_config({"cycle_ms": cycle_ms})
        self.clock = clock
        self.slow = slow or {}
        self.steps: list[int] = []

    def step(self, now_ms: int) -> None:
        self.steps.append(now_ms)
        self.clock.now += self.slow.get(len(self.steps), self.clock.work_ms)


class Watchdog:
    def __init__(self) -> None:
        self.feeds = 0

    def feed(self) -> None:
        self.feeds += 1


def test_cycles_follow_a_fixed_grid_and_feed_the_watchdog() -> None:
    clock = Clock()
    node = SteppedNode(clock)
    dog = Watchdog()
    asyncio.run(run(node, dog, cycles=10, clock=clock, sleep_ms=clock.sleep_ms))
    assert [t - node.steps[0] for t in node.steps] == [50 * k for k in range(10)]
    assert set(clock.sleeps) == {47}
    assert dog.feeds == 10


def test_an_overrun_moves_the_grid_instead_of_bursting() -> None:
    clock = Clock()
    node = SteppedNode(clock, slow={3: 180})  # the third cycle takes 180 ms
    asyncio.run(run(node, cycles=6, clock=clock, sleep_ms=clock.sleep_ms))
    gaps = [b - a for a, b in zip(node.steps, node.steps[1:], strict=False)]
    assert gaps == [50, 50, 180, 50, 50]


def test_runner_drives_a_real_node() -> None:
    clock = Clock()
    hw = SimHardware()
    node = Node(load_config({}), hw, LoopbackBus())
    asyncio.run(run(node, cycles=60, clock=clock, sleep_ms=clock.sleep_ms))
    assert node.state == STANDBY  # settled after 2 s of simulated time


@pytest.fixture
def board(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("fake_board")
    module.hw = SimHardware()  # type: ignore[attr-defined]

    def hardware(config: Any) -> SimHardware:
        return module.hw  # type: ignore[no-any-return]

    def can_backend(config: Any) -> LoopbackBus:
        raise OSError(19)  # no MCP2515 answering

    module.hardware = hardware  # type: ignore[attr-defined]
    module.can_backend = can_backend  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_board", module)
    return module


def test_start_runs_without_a_can_controller_and_opens_the_relay_when_stopped(
    board: types.ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bms.json"
    path.write_text(json.dumps({"cycle_ms": 10, "watchdog_ms": 0}))
    board.hw.relay_drive = True
    node = board_main.start(str(path), "fake_board", cycles=3)
    assert node.config.error is None
    assert node.cycles == 3
    assert not board.hw.relay_drive
    out = capsys.readouterr().out
    assert "CAN controller failed" in out
    assert "relay opened" in out


def test_start_with_a_missing_configuration_is_a_config_error(
    board: types.ModuleType, tmp_path: Path
) -> None:
    node = board_main.start(str(tmp_path / "missing.json"), "fake_board", cycles=2)
    assert node.state == CONFIG_ERROR
    assert "cannot read" in str(node.config_error)
