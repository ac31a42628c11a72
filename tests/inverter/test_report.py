"""InverterReport validation and build_report from a snapshot and a decision."""

from __future__ import annotations

import pytest

from gateway.contracts.decision import Alarm, Decision, Phase, Severity
from gateway.contracts.snapshot import (
    BatterySnapshot,
    CellRef,
    NodeSnapshot,
    NodeState,
    ProtectionKind,
    StringSnapshot,
)
from gateway.outputs.inverter import InverterSettings, build_report
from tests.inverter.helpers import NORMAL_LIMITS, report


def node(n: int, **kw) -> NodeSnapshot:
    fields = {
        "node": n,
        "present": True,
        "age": 0.5,
        "state": NodeState.ACTIVE,
        "relay_closed": True,
        "trip_cleared": False,
        "voltage": 53.3,
        "current": -6.0,
    }
    return NodeSnapshot(**{**fields, **kw})


def string(index: int, nodes: tuple[int, ...], online: bool) -> StringSnapshot:
    return StringSnapshot(
        index=index,
        nodes=nodes,
        online=online,
        blocked=not online,
        reason="" if online else "node missing",
        voltage=53.3,
        current=-6.0,
        capacity_ah=280.0,
        relay_closed=online,
    )


SNAPSHOT = BatterySnapshot(
    time=1000.0,
    valid=True,
    data_age=0.5,
    cells_in_series=16,
    voltage=53.3,
    current=-12.0,
    min_cell=3.31,
    max_cell=3.34,
    min_cell_at=CellRef(1, 4),
    max_cell_at=CellRef(2, 9),
    min_temp=18.5,
    max_temp=23.0,
    capacity_ah=560.0,
    strings=(string(0, (1,), True), string(1, (2,), True), string(2, (3, 4), False)),
    nodes={
        1: node(1, warnings=frozenset({ProtectionKind.CELL_OVER_VOLTAGE})),
        2: node(2, warnings=frozenset({ProtectionKind.DISCHARGE_UNDER_TEMP})),
        3: node(3, present=False, age=float("inf")),
        4: node(4, state=NodeState.TRIPPED, faults=frozenset({ProtectionKind.RELAY_FAULT})),
    },
)


def test_build_report() -> None:
    decision = Decision(
        limits=NORMAL_LIMITS,
        phase=Phase.BULK,
        alarms={Alarm.NODE_MISSING: Severity.WARNING},
    )
    settings = InverterSettings(manufacturer="PYLONDIY", bms_name="garage battery")
    default_victron = InverterSettings(profile="victron")
    r = build_report(
        SNAPSHOT, decision, 64.5, 97.0, settings, firmware_version=0x0203, hardware_version=1
    )
    assert r.limits == NORMAL_LIMITS
    assert r.alarms == {Alarm.NODE_MISSING: Severity.WARNING}
    assert (r.soc, r.soh) == (64.5, 97.0)
    assert (r.voltage, r.current, r.temperature) == (53.3, -12.0, 23.0)
    assert (r.min_cell_voltage, r.max_cell_voltage) == (3.31, 3.34)
    assert (r.min_cell_temperature, r.max_cell_temperature) == (18.5, 23.0)
    assert r.capacity_ah == 560.0
    assert r.modules_online == 2
    assert r.modules_offline == 2
    assert r.modules_blocking_charge == 2  # node 1 (over-voltage warning), node 4 (fault)
    assert r.modules_blocking_discharge == 2  # node 2 (cold for discharge), node 4 (fault)
    assert (r.manufacturer, r.bms_name) == ("PYLONDIY", "garage battery")
    assert (r.firmware_version, r.hardware_version) == (0x0203, 1)
    assert (r.min_cell_id, r.max_cell_id) == ("N1C4", "N2C9")  # Victron 0x374/0x375 (item 4)
    assert build_report(SNAPSHOT, decision, 64.5, 97.0, default_victron).manufacturer == "moat-bms"


@pytest.mark.parametrize(
    "bad",
    [
        {"manufacturer": "PYLONTECH"},  # 9 characters
        {"manufacturer": "PYLÖN"},
        {"bms_name": "a" * 17},
        {"bms_name": "tab\there"},
        {"firmware_version": 0x10000},
        {"hardware_version": -1},
        {"modules_offline": -1},
    ],
    ids=str,
)
def test_report_refuses_what_no_frame_can_carry(bad) -> None:
    with pytest.raises(ValueError):
        report(**bad)
