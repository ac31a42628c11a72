"""Alarms: node flags by kind and level, and the gateway's own checks."""

from __future__ import annotations

import pytest

from gateway.contracts.chemistry import LFP
from gateway.contracts.decision import Alarm, Severity
from gateway.contracts.snapshot import BatterySnapshot, NodeState, ProtectionKind
from gateway.strategy.alarms import KIND_ALARM, AlarmMonitor
from gateway.strategy.settings import AlarmSettings
from tests.strategy.battery import node, snapshot

K = ProtectionKind
W, A = Severity.WARNING, Severity.ALARM


def check(snap: BatterySnapshot, stale: bool = False) -> dict[Alarm, Severity]:
    return AlarmMonitor(AlarmSettings(), LFP).step(snap, stale, 3.45, 1.0)


def test_every_kind_maps_to_an_alarm() -> None:
    assert set(KIND_ALARM) == set(ProtectionKind)


def test_a_healthy_battery_has_no_alarms() -> None:
    assert check(snapshot()) == {}


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"warnings": frozenset({K.CELL_OVER_VOLTAGE})}, {Alarm.HIGH_CELL_VOLTAGE: A}),
        ({"infos": frozenset({K.CELL_OVER_VOLTAGE})}, {Alarm.HIGH_CELL_VOLTAGE: W}),
        ({"faults": frozenset({K.RELAY_FAULT})}, {Alarm.CONTACTOR: A}),
        ({"warnings": frozenset({K.BALANCER_OVER_TEMP})}, {Alarm.HIGH_TEMPERATURE: W}),
        ({"warnings": frozenset({K.COMM_LOSS})}, {Alarm.SYSTEM: W}),
        ({"warnings": frozenset({K.SENSOR_FAULT})}, {Alarm.SYSTEM: A}),
        (
            {
                "warnings": frozenset({K.DISCHARGE_OVER_CURRENT}),
                "infos": frozenset({K.CHARGE_OVER_CURRENT}),
            },
            {Alarm.HIGH_DISCHARGE_CURRENT: A, Alarm.HIGH_CHARGE_CURRENT: W},
        ),
        (
            {
                "warnings": frozenset({K.CHARGE_UNDER_TEMP}),
                "infos": frozenset({K.DISCHARGE_UNDER_TEMP}),
            },
            {Alarm.LOW_TEMPERATURE: A},  # the higher severity wins
        ),
    ],
)
def test_node_flags(
    flags: dict[str, frozenset[ProtectionKind]], expected: dict[Alarm, Severity]
) -> None:
    assert check(snapshot(**flags)) == expected  # type: ignore[arg-type]


def test_stale_data() -> None:
    assert check(snapshot(), stale=True) == {Alarm.BATTERY_DATA_STALE: A}


def test_missing_and_tripped_nodes_warn_while_others_carry_on() -> None:
    cells = [[3.3] * 16, [3.3] * 16]
    gone = snapshot(cells, nodes={1: node(1, cells[1], present=False)})
    assert check(gone) == {Alarm.NODE_MISSING: W}
    tripped = node(1, cells[1], state=NodeState.TRIPPED, relay_closed=False)
    # Tripped but present: named tripped, not missing (issue 13, item 12).
    assert check(snapshot(cells, nodes={1: tripped})) == {Alarm.NODE_TRIPPED: W}
    all_gone = snapshot([[3.3] * 16], nodes={0: node(0, [3.3] * 16, present=False)})
    assert check(all_gone, stale=True) == {Alarm.BATTERY_DATA_STALE: A, Alarm.NODE_MISSING: A}


def test_flags_of_an_isolated_node_are_warnings() -> None:
    cells = [[3.3] * 16, [3.3] * 16]
    tripped = node(
        1,
        cells[1],
        state=NodeState.TRIPPED,
        relay_closed=False,
        faults=frozenset({K.CELL_OVER_VOLTAGE}),
    )
    assert check(snapshot(cells, nodes={1: tripped})) == {
        Alarm.HIGH_CELL_VOLTAGE: W,
        Alarm.NODE_TRIPPED: W,
    }


def test_imbalance_warns_after_the_delay_and_clears_with_hysteresis() -> None:
    mon = AlarmMonitor(AlarmSettings(imbalance_delay_s=60.0), LFP)

    def spread(mv: float) -> bool:
        snap = snapshot([[3.3] * 15 + [3.3 + mv / 1000]])
        return Alarm.CELL_IMBALANCE in mon.step(snap, False, 3.45, 1.0)

    assert not any(spread(120) for _ in range(59))
    assert spread(120)
    assert spread(90)  # still above the release
    assert not spread(70)
    assert not spread(120)  # the delay again


def test_cells_outside_the_normal_window_warn() -> None:
    assert check(snapshot([[3.3] * 15 + [3.51]])) == {Alarm.HIGH_CELL_VOLTAGE: W}
    assert check(snapshot([[3.3] * 15 + [2.85]])) == {Alarm.LOW_CELL_VOLTAGE: W}


def test_settings_validation() -> None:
    with pytest.raises(ValueError):
        AlarmSettings(imbalance_v=0.05, imbalance_release_v=0.05)
