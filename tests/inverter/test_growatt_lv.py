"""The `growatt-lv` profile, decoded after Growatt's BMS CAN protocol Low Voltage Rev 04
(tests/inverter/family_decoders.py): big-endian, 0x311-0x321, 0x301 heartbeat."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest import approx

from gateway.contracts.decision import Alarm, Severity
from gateway.outputs.inverter import InverterSettings, profile_class
from tests.inverter.family_decoders import growatt_lv
from tests.inverter.helpers import UNKNOWN_MEASUREMENTS, last_frames, limits, profile, report

GROWATT_IDS = [0x311, 0x312, 0x313, 0x314, 0x319, 0x320, 0x321]


def decoded(*reports, **kw):
    return growatt_lv(last_frames("growatt-lv", *reports, **kw))


def test_frame_set_and_field_meaning() -> None:
    frames = profile("growatt-lv").frames(report())
    assert [f.id for f in frames] == GROWATT_IDS
    d = growatt_lv(frames)
    assert d[0x311] == approx(
        {"cvl": 55.2, "ccl": 100.0, "dcl": 150.0, "status": 3, "error": 0, "sp_status": 3}
    )
    # Big-endian: 53.27 V is 0x14CF, bytes 14 CF.
    assert frames[2].data[:2] == bytes.fromhex("14cf")
    assert d[0x313] == approx(
        {"voltage": 53.27, "current": -12.3, "temperature": 24.5, "soc": 73, "soh": 98, "unsafe": 0}
    )
    assert d[0x314] == approx(
        {"remaining_ah": 205.68, "full_ah": 280.0, "delta_mv": 13, "cycles": 0}, abs=0.01
    )
    assert d[0x319] == {
        "charge_enable": 1,
        "discharge_enable": 1,
        "force_charge": 0,
        "max_cell_mv": 3334,
        "min_cell_mv": 3321,
        "max_cell_number": 0,
        "min_cell_number": 0,
        "protect_pack": 0,
    }
    assert d[0x312]["packs"] == 2 and d[0x312]["manufacturer"] == b"PY"
    assert not any(d[0x312]["protection"].values())
    assert d[0x320]["manufacturer"] == b"PY" and 1 <= d[0x320]["sw"] <= 9


def test_status_follows_the_current() -> None:
    assert decoded(report(current=20.0))[0x311]["status"] == 0b10  # charging
    assert decoded(report(current=0.1))[0x311]["status"] == 0b01  # idle


def test_heartbeat_is_0x301_and_the_cvl_stays_within_growatt_range() -> None:
    cls = profile_class("growatt-lv")
    assert cls.keepalive_id == 0x301
    assert decoded(report(limits=limits(cvl=80.0)))[0x311]["cvl"] == 63.0


def test_force_charge_bit_5_of_0x319() -> None:
    assert decoded(report(limits=limits(force_charge=True)))[0x319]["force_charge"] == 1


def test_a_stopped_direction_is_a_warning_never_a_protection_bit() -> None:
    cold = report(
        limits=limits(ccl=0.0, charge_enable=False),
        alarms={Alarm.LOW_TEMPERATURE: Severity.WARNING},
    )
    d = decoded(cold)
    assert d[0x311]["ccl"] == 0 and d[0x311]["dcl"] == 150.0 and d[0x311]["error"] == 0
    assert d[0x319]["charge_enable"] == 0 and d[0x319]["discharge_enable"] == 1
    assert not any(d[0x312]["protection"].values())
    assert d[0x312]["warning"]["charge_ut"] == 1


def test_a_fault_is_a_protection_bit_and_the_error_flag() -> None:
    # Both directions stopped: a battery fault (issue 15 item 1).
    both = limits(ccl=0.0, dcl=0.0, charge_enable=False, discharge_enable=False)
    d = decoded(report(limits=both, alarms={Alarm.HIGH_CELL_VOLTAGE: Severity.ALARM}))
    assert d[0x312]["protection"]["cell_ov"] == 1 and d[0x312]["warning"]["cell_ov"] == 1
    assert d[0x311]["error"] == 1
    # Charging stopped, discharging still allowed: a warning, no protection, no error flag.
    d = decoded(report(alarms={Alarm.HIGH_CELL_VOLTAGE: Severity.ALARM}))
    assert d[0x312]["protection"]["cell_ov"] == 0 and d[0x312]["warning"]["cell_ov"] == 1
    assert d[0x311]["error"] == 0
    # The inverter missing concerns the inverter: no error flag.
    assert decoded(report(alarms={Alarm.INVERTER_MISSING: Severity.ALARM}))[0x311]["error"] == 0


def test_unknown_measurements() -> None:
    d = decoded(report(**UNKNOWN_MEASUREMENTS))
    assert d[0x313]["voltage"] == approx(55.2)  # the CVL sent, never 0 V
    assert d[0x314]["full_ah"] == 0 and d[0x319]["max_cell_mv"] == 0


def test_minimum_interval() -> None:
    assert profile_class("growatt-lv").min_interval == 0.1
    with pytest.raises(ValueError, match="minimum"):
        InverterSettings(profile="growatt-lv", period=0.05)


bad = st.sampled_from([0.0, -1.0, math.nan, math.inf, 0.04, 1e9, -1e9])


@settings(max_examples=60, deadline=None)
@given(cvl=bad, voltage=bad, current=bad, capacity=bad, enable=st.booleans())
def test_never_cvl_0_and_every_field_in_range(cvl, voltage, current, capacity, enable) -> None:
    r = report(
        voltage=voltage,
        current=current,
        capacity_ah=capacity,
        limits=limits(cvl=cvl, charge_enable=enable),
    )
    d = decoded(r)  # struct.pack would raise on a field out of range
    assert d[0x311]["cvl"] >= 1.0
    assert d[0x311]["ccl"] >= 0 and d[0x311]["dcl"] >= 0
