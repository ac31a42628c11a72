"""The commercial packs' source alone: a BMS's switches and alarms as a node's state and flag
levels, freshness on the caller's clock, and the switch rules."""

from __future__ import annotations

import math

import pytest

from gateway.contracts.decision import Decision, Limits, Phase, RelayAction, RelayRequest
from gateway.contracts.snapshot import NodeState
from gateway.contracts.snapshot import ProtectionKind as K
from gateway.contracts.topology import TopologySettings
from gateway.sources.packs.reading import PackError, PackReading
from gateway.sources.packs.source import SWITCH_RETRY_S, CommercialPacks, PackSwitch, alarm_kinds

TOPOLOGY = TopologySettings(strings=[[0], [1]], cells_per_node=4)


def packs(controllable: tuple[int, ...] = (0, 1)) -> CommercialPacks:
    return CommercialPacks(TOPOLOGY, {0: 5.0, 1: 5.0}, controllable)


def reading(
    charge: bool | None = True, discharge: bool | None = True, alarms: frozenset[str] = frozenset()
) -> PackReading:
    return PackReading(
        cells=(3.30, 3.35, 3.28, 3.31),
        temperatures=(20.0, 26.0, 22.0),
        voltage=13.24,
        current=-4.0,
        charge_on=charge,
        discharge_on=discharge,
        alarms=alarms,
    )


def decision(*requests: tuple[int, RelayAction]) -> Decision:
    limits = Limits(
        cvl=14.0, ccl=0.0, dcl=0.0, dvl=12.0, charge_enable=False, discharge_enable=False
    )
    relay = tuple(RelayRequest(n, action) for n, action in requests)
    return Decision(limits, Phase.BULK, relay=relay)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Cell Overvoltage", {K.CELL_OVER_VOLTAGE}),
        ("cell_under_voltage", {K.CELL_UNDER_VOLTAGE}),
        ("Pack over-voltage", {K.PACK_OVER_VOLTAGE}),
        ("discharge over-temperature", {K.DISCHARGE_OVER_TEMP}),
        ("Charge low temperature", {K.CHARGE_UNDER_TEMP}),
        ("MOSFET over temperature", {K.CHARGE_OVER_TEMP, K.DISCHARGE_OVER_TEMP}),
        ("Short circuit", {K.DISCHARGE_OVER_CURRENT}),
        ("charge over-current", {K.CHARGE_OVER_CURRENT}),
        ("front-end IC error", {K.SENSOR_FAULT}),
        ("chg overcurrent level 1", {K.CHARGE_OVER_CURRENT}),
        ("discharging low temperature", {K.DISCHARGE_UNDER_TEMP}),
    ],
)
def test_alarm_names_become_protection_kinds(name: str, expected: set[K]) -> None:
    assert alarm_kinds([name]) == expected


def test_a_reading_makes_the_pack_a_node_with_its_extremes_and_ages() -> None:
    p = packs()
    assert p.on_reading(0, reading(), 100.0)  # first reading: a change
    rec = p.packs[0]
    snap = p.node_snapshot(rec, 101.0)
    assert snap.present and snap.state == NodeState.ACTIVE and snap.relay_closed
    assert snap.voltage == pytest.approx(13.24) and snap.age == pytest.approx(1.0)
    assert (rec.max_cell, rec.max_cell_no, rec.min_cell, rec.min_cell_no) == (3.35, 2, 3.28, 3)
    assert (rec.max_temp, rec.max_temp_no) == (26.0, 2)
    assert p.temps_fresh(101.0) == {0}
    assert not p.on_reading(0, reading(), 101.0)  # nothing changed: not urgent
    stale = p.node_snapshot(rec, 106.5)
    assert not stale.present and not stale.relay_closed
    assert math.isnan(stale.voltage) and math.isnan(stale.current)
    assert all(math.isnan(v) for v in p.fresh_cells(rec, 106.5))
    assert p.temps_fresh(106.5) == set()


def test_an_error_never_refreshes_a_pack() -> None:
    p = packs()
    p.on_reading(0, reading(), 100.0)
    assert not p.on_reading(0, PackError("port gone"), 104.0)
    assert p.packs[0].age(104.0) == pytest.approx(4.0)
    assert not p.node_snapshot(p.packs[0], 105.5).present
    assert p.errors(105.5) == ["pack 0: port gone"]


def test_switch_and_alarm_combinations() -> None:
    p = packs()
    rec = p.packs[0]
    p.on_reading(0, reading(alarms=frozenset({"cell overvoltage"})), 1.0)
    snap = p.node_snapshot(rec, 1.0)
    assert snap.state == NodeState.ACTIVE and snap.warnings == {K.CELL_OVER_VOLTAGE}
    assert not snap.faults
    p.on_reading(0, reading(charge=False, alarms=frozenset({"cell overvoltage"})), 2.0)
    snap = p.node_snapshot(rec, 2.0)
    assert snap.relay_closed and snap.warnings == {K.CELL_OVER_VOLTAGE}  # explains itself
    p.on_reading(0, reading(discharge=False), 3.0)
    assert p.node_snapshot(rec, 3.0).warnings == {K.PACK_UNDER_VOLTAGE}
    assert p.on_reading(0, reading(False, False, frozenset({"short circuit"})), 4.0)
    snap = p.node_snapshot(rec, 4.0)
    assert snap.state == NodeState.TRIPPED and not snap.relay_closed
    assert snap.faults == {K.DISCHARGE_OVER_CURRENT} and not snap.trip_cleared
    p.on_reading(0, reading(False, False), 5.0)
    snap = p.node_snapshot(rec, 5.0)
    assert snap.state == NodeState.TRIPPED and snap.trip_cleared  # off, nothing raised now
    p.on_reading(0, reading(None, None), 6.0)  # a BMS that does not say: taken as on
    assert p.node_snapshot(rec, 6.0).state == NodeState.ACTIVE


def test_open_switches_off_close_switches_on_only_without_alarms_and_repeats_slowly() -> None:
    p = packs()
    p.on_reading(0, reading(), 0.0)
    assert p.pack_commands(decision((0, RelayAction.CLOSE)), 0.0) == []  # already on
    assert p.pack_commands(decision((0, RelayAction.OPEN)), 1.0) == [PackSwitch(0, False, False)]
    assert p.pack_commands(decision((0, RelayAction.OPEN)), 2.0) == []  # asked, not yet seen
    again = p.pack_commands(decision((0, RelayAction.OPEN)), 1.0 + SWITCH_RETRY_S)
    assert again == [PackSwitch(0, False, False)]
    p.on_reading(0, reading(False, False), 12.0)
    assert p.node_snapshot(p.packs[0], 12.0).state == NodeState.STANDBY
    assert p.pack_commands(decision((0, RelayAction.OPEN)), 13.0) == []
    p.on_reading(0, reading(False, False, frozenset({"cell undervoltage"})), 14.0)
    assert p.pack_commands(decision((0, RelayAction.CLOSE)), 14.0) == []  # never into a fault
    p.on_reading(0, reading(False, False), 15.0)
    assert p.pack_commands(decision((0, RelayAction.CLOSE)), 15.0) == [PackSwitch(0, True, True)]
    assert p.pack_commands(decision((0, RelayAction.CLOSE)), 25.0) == []  # stale: not either
    p.on_reading(1, reading(None, None), 30.0)  # reports no switches: on, nothing to ask
    assert p.pack_commands(decision((1, RelayAction.CLOSE)), 30.0) == []


def test_packs_without_control_and_nodes_get_no_switches() -> None:
    p = packs(controllable=(1,))
    p.on_reading(0, reading(), 0.0)
    p.on_reading(1, reading(), 0.0)
    got = p.pack_commands(
        decision((0, RelayAction.OPEN), (1, RelayAction.OPEN), (7, RelayAction.OPEN)), 0.0
    )
    assert got == [PackSwitch(1, False, False)]


def test_a_pack_reporting_other_cells_than_configured_is_a_problem() -> None:
    p = packs()
    p.on_reading(1, PackReading((3.3,) * 5, (20.0,), 16.5, 0.0, True, True), 0.0)
    assert p.problems() == ["pack 1 reports 5 cells, configured 4"]
