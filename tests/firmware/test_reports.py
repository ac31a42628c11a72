"""Frames the node sends, decoded with cantools from dbc/moat_bms.dbc."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from bms.hw import NOT_AVAILABLE
from tests.firmware.harness import Bench

CYCLE = 50


def gaps(times: list[int]) -> list[int]:
    return [b - a for a, b in itertools.pairwise(times)]


@pytest.mark.parametrize(
    ("name", "period"),
    [
        ("PackStatus", 100),
        ("CellExtremes", 200),
        ("TemperatureExtremes", 1000),
        ("BalanceState", 1000),
        ("NodeInfo", 5000),
    ],
)
def test_periodic_frames_at_their_dbc_period(
    bench: Callable[..., Bench], moat_db: Any, name: str, period: int
) -> None:
    assert moat_db.get_message_by_name(name).cycle_time == period
    b = bench(request="Close")
    b.settle()
    since = b.now
    b.run(20_000)
    times = [t for t, _ in b.decoded(name, since)]
    assert set(gaps(times)) == {period}


def test_node_state_at_least_every_100_ms_and_at_once_on_change(
    bench: Callable[..., Bench],
) -> None:
    b = bench(request="Close", cycle_ms=10)
    b.settle()
    since = b.now
    b.run(3000)
    times = [t for t, _ in b.decoded("NodeState", since)]
    assert max(gaps(times)) <= 100
    b.run(30)  # not due for another 60 ms or so
    b.set_cell(0, 3620)  # info and warning after the 200 ms debounce
    onset = b.now
    t_warn = b.run_until(lambda: b.node.warnings != 0, 1000)
    sent = [t for t, s in b.decoded("NodeState", onset) if s["WarnCellOverVoltage"] == "Active"]
    assert sent[0] == t_warn  # in the very cycle the warning set


def test_alive_counter_increments_per_node_state_frame(bench: Callable[..., Bench]) -> None:
    b = bench(request="Close")
    b.run(5000)
    counters = [s["AliveCounter"] for _, s in b.decoded("NodeState")]
    assert len(counters) > 40
    assert counters[0] == 1
    assert all((b_ - a) % 16 == 1 for a, b_ in itertools.pairwise(counters))


def test_cell_voltage_groups_are_spread_over_the_period(bench: Callable[..., Bench]) -> None:
    b = bench(cells=16)
    b.run(1000)
    since = b.now
    b.run(4000)
    frames = b.decoded("CellVoltages", since)
    assert set(gaps([t for t, _ in frames])) == {250}  # 4 groups per second, evenly
    groups = [s["CellGroup"] for _, s in frames]
    assert groups[:8] == [groups[0], *[(groups[0] + k) % 4 for k in range(1, 8)]]


def test_64_cells_send_every_group_once_per_second(bench: Callable[..., Bench]) -> None:
    b = bench(cells=64)
    b.run(1000)
    since = b.now
    b.run(3000)
    frames = b.decoded("CellVoltages", since)
    assert len(frames) == 3 * 16
    per_cycle = [sum(1 for t, _ in frames if t == c) for c in range(since, since + 3000, CYCLE)]
    assert max(per_cycle) <= 2  # spread: at most two groups in one 50 ms cycle


def test_cell_voltages_and_temperatures_decode_to_the_readings(
    bench: Callable[..., Bench],
) -> None:
    b = bench(cells=14, temps=5)
    for i in range(14):
        b.hw.cell_mv[i] = 3200 + i
    b.hw.cell_mv[9] = NOT_AVAILABLE
    b.hw.temp_dc = [215, -52, NOT_AVAILABLE, 301, 250]
    b.run(4000)
    volts: dict[int, float | str] = {}
    for _, s in b.decoded("CellVoltages"):
        volts.update({k: v for k, v in s.items() if k.startswith("Cell") and k != "CellGroup"})
    assert volts["Cell01Voltage"] == pytest.approx(3.200)
    assert volts["Cell14Voltage"] == pytest.approx(3.213)
    assert volts["Cell10Voltage"] == "NotAvailable"
    assert volts["Cell15Voltage"] == "NotAvailable"  # group 3 beyond the cell count
    temps: dict[int, float | str] = {}
    for _, s in b.decoded("CellTemperatures"):
        temps.update({k: v for k, v in s.items() if k.startswith("Temperature")})
    assert temps["Temperature01"] == pytest.approx(21.5)
    assert temps["Temperature02"] == pytest.approx(-5.2)
    assert temps["Temperature03"] == "NotAvailable"
    assert temps["Temperature05"] == pytest.approx(25.0)
    assert temps["Temperature06"] == "NotAvailable"


def test_extremes_pack_status_and_node_info(bench: Callable[..., Bench]) -> None:
    b = bench(settings={"node_id": 9, "capacity_ah": 280, "chemistry": "NMC"})
    b.set_cells(3700)
    b.set_cell(3, 3650)
    b.set_cell(11, 3790)
    b.hw.current_ma = -12_345
    b.hw.temp_dc = [150, 310, 220, 200]
    b.hw.balancer_temp_dc = 333
    b.run(6000)
    ext = b.last("CellExtremes")
    assert ext["MinCellVoltage"] == pytest.approx(3.650)
    assert ext["MinCellNumber"] == 4
    assert ext["MaxCellVoltage"] == pytest.approx(3.790)
    assert ext["MaxCellNumber"] == 12
    assert ext["MeanCellVoltage"] == pytest.approx((14 * 3700 + 3650 + 3790) // 16 / 1000)
    temp = b.last("TemperatureExtremes")
    assert (temp["MinTemperature"], temp["MinTemperatureSensor"]) == (pytest.approx(15.0), 1)
    assert (temp["MaxTemperature"], temp["MaxTemperatureSensor"]) == (pytest.approx(31.0), 2)
    assert temp["BalancerTemperature"] == pytest.approx(33.3)
    pack = b.last("PackStatus")
    assert pack["PackVoltage"] == pytest.approx(sum(b.hw.cell_mv) / 1000)
    assert pack["PackCurrent"] == pytest.approx(-12.345)
    info = b.last("NodeInfo")
    assert info["CellCount"] == 16
    assert info["TemperatureSensorCount"] == 4
    assert info["Chemistry"] == "NMC"
    assert info["Capacity"] == pytest.approx(280.0)
    assert all(s.frame_id & 0xF == 9 for s in b.sent)


def test_missing_balancer_temperature_is_sent_as_not_available(
    bench: Callable[..., Bench],
) -> None:
    b = bench()
    b.hw.balancer_temp_dc = NOT_AVAILABLE
    b.run(2000)
    assert b.last("TemperatureExtremes")["BalancerTemperature"] == "NotAvailable"


def test_nodes_on_one_bus_do_not_send_in_lock_step(bench: Callable[..., Bench]) -> None:
    first = [bench(settings={"node_id": n}, cycle_ms=10) for n in (0, 8)]
    for b in first:
        b.run(3000)
    times = [{t % 1000 for t, _ in b.decoded("TemperatureExtremes")} for b in first]
    assert times[0] != times[1]


def test_full_transmit_queue_drops_and_counts_but_protection_goes_on(
    bench: Callable[..., Bench],
) -> None:
    b = bench(request="Close")
    b.settle()
    b.bus.tx_full = True
    sent_before = b.node.port.tx_frames
    b.set_cell(0, 3700)
    b.run(1000)  # more frames than the software queue holds
    assert not b.hw.relay_drive  # the fault opened the relay regardless
    assert b.node.port.tx_dropped > 0
    assert b.node.port.tx_frames == sent_before
    b.bus.tx_full = False
    b.run(100)
    assert b.last("NodeState")["FaultCellOverVoltage"] == "Active"
