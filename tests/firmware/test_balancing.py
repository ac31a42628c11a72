"""Balancing: the gateway's request executed, and every local veto."""

from __future__ import annotations

from collections.abc import Callable

from bms.lifecycle import TRIPPED
from tests.firmware.harness import Bench

CELL_2 = 1 << 1
CELL_5 = 1 << 4
CELL_17 = 1 << 16


def balancing(bench: Callable[..., Bench], bleed: int = CELL_2 | CELL_5, **kwargs: object) -> Bench:
    """Cells at 3.40 V, the gateway asking to bleed cells with a 3.20 V floor."""
    b = bench(request="Close", balance_cells=bleed, balance_floor_v=3.2, **kwargs)
    b.set_cells(3400)
    b.settle()
    b.run(1000)
    return b


def test_requested_cells_are_bled_and_reported(bench: Callable[..., Bench]) -> None:
    b = balancing(bench, CELL_2 | CELL_5 | CELL_17, cells=32)
    assert b.hw.balance_mask == CELL_2 | CELL_5 | CELL_17
    state = b.last("BalanceState")
    assert state["BleedingCells01To16"] == CELL_2 | CELL_5
    assert state["BleedingCells17To32"] == 1
    assert b.last("NodeState")["Balancing"] == "Yes"


def test_second_cell_group_of_a_64_cell_node(bench: Callable[..., Bench]) -> None:
    b = bench(request="Close", cells=64)
    b.set_cells(3400)
    b.settle()
    b.gateway.balance(1 << 3 | 1 << 31, 3.2, group=1)  # cells 36 and 64
    b.run(100)
    assert b.hw.balance_mask == (1 << 35) | (1 << 63)
    b.run(1000)
    state = b.last("BalanceState")
    assert state["BleedingCells33To48"] == 1 << 3
    assert state["BleedingCells49To64"] == 1 << 15


def test_bits_beyond_the_cell_count_are_ignored(bench: Callable[..., Bench]) -> None:
    b = balancing(bench, CELL_2 | 1 << 20, cells=16)
    assert b.hw.balance_mask == CELL_2


def test_node_floor_vetoes_bleeding(bench: Callable[..., Bench]) -> None:
    b = bench(request="Close", balance_cells=CELL_2 | CELL_5, balance_floor_v=2.5)
    b.set_cells(3400)
    b.set_cell(1, 3100)  # cell 2 at the node's own floor (LFP 3100 mV)
    b.settle()
    b.run(1000)
    assert b.hw.balance_mask == CELL_5


def test_command_floor_above_the_node_floor_wins(bench: Callable[..., Bench]) -> None:
    b = balancing(bench)
    b.balance_floor_v = 3.45
    b.run(1100)
    assert b.hw.balance_mask == 0


def test_floor_has_hysteresis(bench: Callable[..., Bench]) -> None:
    b = balancing(bench)
    b.set_cell(1, 3200)  # cell 2 falls to the command's floor: it stops
    b.run(100)
    assert b.hw.balance_mask == CELL_5
    b.set_cell(1, 3205)  # above the floor, not by the 10 mV hysteresis
    b.run(500)
    assert b.hw.balance_mask == CELL_5
    b.set_cell(1, 3215)
    b.run(100)
    assert b.hw.balance_mask == CELL_2 | CELL_5


def test_hot_balancer_vetoes_bleeding(bench: Callable[..., Bench]) -> None:
    b = balancing(bench)
    b.hw.balancer_temp_dc = 720  # warning level (70 degC)
    b.run(1100)
    assert b.hw.balance_mask == 0
    assert b.last("NodeState")["Balancing"] == "No"
    b.hw.balancer_temp_dc = 400
    b.run(4200)  # the warning releases 4 x its debounce after the first good sample
    assert b.hw.balance_mask == CELL_2 | CELL_5


def test_comm_loss_vetoes_bleeding(bench: Callable[..., Bench]) -> None:
    b = balancing(bench, settings={"balance_timeout_ms": 10_000})
    b.heartbeat = False  # balance commands keep coming, the heartbeat does not
    b.run(4000)
    assert b.hw.balance_mask == CELL_2 | CELL_5
    b.run(2000)
    assert b.hw.balance_mask == 0


def test_command_expires_without_refresh(bench: Callable[..., Bench]) -> None:
    b = balancing(bench)
    b.balance_cells = None
    last = (b.now - 1) // 1000 * 1000  # the bench sent the last command at this time
    expired = b.run_until(lambda: b.hw.balance_mask == 0, 5000)
    assert expired - last == 3000 + 50  # first cycle past the 3 s timeout


def test_tripped_node_does_not_bleed(bench: Callable[..., Bench]) -> None:
    b = balancing(bench)
    b.hw.current_ma = 120_000
    b.run(200)
    assert b.node.state == TRIPPED
    assert b.hw.balance_mask == 0


def test_missing_cell_reading_is_not_bled(bench: Callable[..., Bench]) -> None:
    b = balancing(bench, settings={"debounce_sensor_ms": 2000, "settle_ms": 2000})
    b.hw.cell_mv[4] = -1
    b.run(100)
    assert b.hw.balance_mask == CELL_2  # cell 5 has no usable reading
    b.run(2000)
    assert b.hw.balance_mask == 0  # the debounced sensor fault stops all bleeding
