"""Gateway alarms -> 0x359 bits and 0x35A pairs, alarm by alarm."""

from __future__ import annotations

import pytest

from gateway.codec.pylontech_lv import AlarmsWarnings, ProtectionAlarms
from gateway.contracts.decision import Alarm, Severity
from gateway.outputs.inverter.alarms import (
    CHARGE_TEMPERATURE_PAIRS,
    PAIRS,
    PROTECTION_BITS,
    WARNING_BITS,
    alarm_pairs,
    protection_flags,
)

# alarm -> (0x359 protection bit, 0x359 warning bit, 0x35A pair); None where there is none.
EXPECTED = {
    Alarm.HIGH_CELL_VOLTAGE: (
        "protection_cell_over_voltage",
        "alarm_high_voltage",
        "high_voltage",
    ),
    Alarm.LOW_CELL_VOLTAGE: ("protection_cell_under_voltage", "alarm_low_voltage", "low_voltage"),
    Alarm.HIGH_TEMPERATURE: (
        "protection_over_temperature",
        "alarm_high_temperature",
        "high_temperature",
    ),
    Alarm.LOW_TEMPERATURE: (
        "protection_under_temperature",
        "alarm_low_temperature",
        "low_temperature",
    ),
    Alarm.HIGH_CHARGE_CURRENT: (
        "protection_charge_over_current",
        "alarm_charge_high_current",
        "high_charge_current",
    ),
    Alarm.HIGH_DISCHARGE_CURRENT: (
        "protection_discharge_over_current",
        "alarm_discharge_high_current",
        "high_discharge_current",
    ),
    Alarm.CELL_IMBALANCE: (None, None, "cell_imbalance"),
    Alarm.BATTERY_DATA_STALE: (
        "protection_system_error",
        "alarm_internal_communication",
        "bms_internal",
    ),
    Alarm.NODE_MISSING: ("protection_system_error", "alarm_internal_communication", "bms_internal"),
    Alarm.NODE_TRIPPED: ("protection_system_error", None, "bms_internal"),
    Alarm.CONTACTOR: ("protection_system_error", None, "contactor"),
    Alarm.SYSTEM: ("protection_system_error", None, "bms_internal"),
}


def test_every_alarm_but_inverter_missing_is_mapped() -> None:
    assert set(EXPECTED) == set(Alarm) - {Alarm.INVERTER_MISSING}


def test_table_field_names_exist_in_the_codec() -> None:
    assert set(PROTECTION_BITS) | set(WARNING_BITS) <= set(ProtectionAlarms._fields)
    for condition in PAIRS:
        assert f"alarm_{condition}" in AlarmsWarnings._fields
        assert f"warning_{condition}" in AlarmsWarnings._fields


@pytest.mark.parametrize("alarm", sorted(EXPECTED))
@pytest.mark.parametrize("severity", list(Severity))
def test_one_alarm(alarm: Alarm, severity: Severity) -> None:
    protection, warning, pair = EXPECTED[alarm]
    flags = protection_flags({alarm: severity})
    expected_flags = set()
    if severity is Severity.ALARM and protection:
        expected_flags.add(protection)
    if warning:
        expected_flags.add(warning)
    assert {name for name, value in flags.items() if value} == expected_flags

    pairs = alarm_pairs({alarm: severity})._asdict()
    active = {name for name, value in pairs.items() if value == 1}
    expected_pairs = {"warning_general", f"warning_{pair}"}
    if severity is Severity.ALARM:
        expected_pairs |= {"alarm_general", f"alarm_{pair}"}
    assert active == expected_pairs
    # Everything else we evaluate is OK (2); the rest is unknown (0).
    for name, value in pairs.items():
        if name not in active:
            condition = name.removeprefix("alarm_").removeprefix("warning_")
            assert value == (
                2 if condition in PAIRS or condition in CHARGE_TEMPERATURE_PAIRS else 0
            ), name


def test_inverter_missing_is_not_reported() -> None:
    missing = {Alarm.INVERTER_MISSING: Severity.ALARM}
    assert protection_flags(missing) == protection_flags({})
    assert alarm_pairs(missing) == alarm_pairs({})


def test_no_alarm_is_all_clear() -> None:
    assert not any(protection_flags({}).values())
    assert 1 not in alarm_pairs({})
