"""The `luxpower` profile, decoded after Luxpower's battery CAN protocol V04.2 (tests/
inverter/family_decoders.py), not after our DBC; the 0x300 shutdown request."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest import approx

from gateway.contracts.decision import Alarm, Severity
from gateway.contracts.frame import Frame
from gateway.outputs.inverter import InverterSettings, profile_class
from tests.inverter.family_decoders import luxpower
from tests.inverter.helpers import UNKNOWN_MEASUREMENTS, last_frames, limits, profile, report

LUXPOWER_IDS = [0x351, 0x355, 0x356, 0x359, 0x35C, 0x35E, 0x379]


def decoded(*reports, **kw):
    return luxpower(last_frames("luxpower", *reports, **kw))


def test_frame_set_and_field_meaning() -> None:
    frames = profile("luxpower").frames(report())
    assert [f.id for f in frames] == LUXPOWER_IDS
    d = luxpower(frames)
    assert d[0x351] == approx({"cvl": 55.2, "ccl": 100.0, "dcl": 150.0, "dvl": 48.0})
    # Bytes 4-7: highest then lowest cell, mV (not the 0.01 % SoC of SMA/Victron).
    assert d[0x355] == {"soc": 73, "soh": 98, "max_cell_mv": 3334, "min_cell_mv": 3321}
    assert d[0x356] == approx({"voltage": 53.27, "current": -12.3, "temperature": 24.5})
    # Bytes 5-6: capacity in Ah, where V1.2 has 'PN'.
    assert d[0x359]["capacity_ah"] == 280 and d[0x359]["modules"] == 2
    assert d[0x379] == {"capacity_ah": 280}
    assert d[0x35C]["charge_enable"] == d[0x35C]["discharge_enable"] == 1


def test_frame_lengths() -> None:
    frames = profile("luxpower").frames(report())
    assert {f.id: len(f.data) for f in frames} == {
        0x351: 8,
        0x355: 8,
        0x356: 6,
        0x359: 7,
        0x35C: 2,
        0x35E: 8,
        0x379: 8,
    }


def test_force_charge_on_bit_4() -> None:
    assert decoded(report(limits=limits(force_charge=True)))[0x35C]["force_bit4"] == 1


def test_unknown_cells_and_capacity_are_0() -> None:
    d = decoded(report(**UNKNOWN_MEASUREMENTS))
    assert d[0x355]["max_cell_mv"] == d[0x355]["min_cell_mv"] == 0
    assert d[0x359]["capacity_ah"] == 0 and d[0x379]["capacity_ah"] == 0
    assert d[0x356]["voltage"] == approx(55.2)  # the CVL sent, never 0 V


def test_a_stopped_direction_is_a_warning_never_a_protection_bit() -> None:
    cold = report(
        limits=limits(ccl=0.0, charge_enable=False),
        alarms={Alarm.LOW_TEMPERATURE: Severity.WARNING},
    )
    d = decoded(cold)
    assert d[0x351]["ccl"] == 0 and d[0x351]["dcl"] == 150.0
    assert d[0x35C]["charge_enable"] == 0 and d[0x35C]["discharge_enable"] == 1
    assert not any(v for k, v in d[0x359].items() if k.startswith("protection_"))
    assert d[0x359]["alarm_low_t"] == 1


def test_minimum_interval() -> None:
    assert profile_class("luxpower").min_interval == 0.1
    with pytest.raises(ValueError, match="minimum"):
        InverterSettings(profile="luxpower", period=0.05)


bad = st.sampled_from([0.0, -1.0, math.nan, math.inf, 0.04, 1e9])


@settings(max_examples=60, deadline=None)
@given(cvl=bad, voltage=bad, cell=bad, enable=st.booleans())
def test_never_cvl_0_and_fields_in_range(cvl, voltage, cell, enable) -> None:
    r = report(
        voltage=voltage,
        max_cell_voltage=cell,
        capacity_ah=cell,
        limits=limits(cvl=cvl, charge_enable=enable),
    )
    d = decoded(r)
    assert d[0x351]["cvl"] >= 1.0
    assert 0 <= d[0x355]["max_cell_mv"] <= 0xFFFF


@pytest.mark.parametrize(
    ("data", "shutdown"), [(b"\x01" + bytes(7), True), (bytes(8), False), (b"\xfe", False)]
)
def test_0x300_bit_0_is_a_shutdown_request(data: bytes, shutdown: bool) -> None:
    request = profile("luxpower").inverter_request(Frame(0x300, data))
    assert request is not None and request.shutdown is shutdown


def test_other_frames_and_profiles_are_no_request() -> None:
    assert profile("luxpower").inverter_request(Frame(0x305, bytes(8))) is None
    assert profile("luxpower").inverter_request(Frame(0x300, b"\x01", extended=True)) is None
    assert profile("pylontech").inverter_request(Frame(0x300, b"\x01")) is None
