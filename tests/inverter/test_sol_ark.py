"""The `sol-ark` profile, decoded after Sol-Ark's LV CAN protocol V1.3 (tests/inverter/
family_decoders.py), not after our DBC."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest import approx

from gateway.contracts.decision import Alarm, Severity
from gateway.outputs.inverter import InverterSettings, profile_class
from tests.inverter.family_decoders import sol_ark
from tests.inverter.helpers import UNKNOWN_MEASUREMENTS, last_frames, limits, profile, report

SOL_ARK_IDS = [0x351, 0x355, 0x356, 0x359, 0x35C, 0x35E, 0x379]


def decoded(*reports, **kw):
    return sol_ark(last_frames("sol-ark", *reports, **kw))


def test_frame_set_and_field_meaning() -> None:
    p = profile("sol-ark")
    frames = p.frames(report())
    assert [f.id for f in frames] == SOL_ARK_IDS
    d = sol_ark(frames)
    assert d[0x351] == approx({"cvl": 55.2, "ccl": 100.0, "dcl": 150.0, "dvl": 48.0})
    assert d[0x355] == {"soc": 73, "soh": 98}
    # 0x356 in 0.1 V: 53.27 V is 533, not 5327 (which would read as 532.7 V).
    assert d[0x356] == approx({"voltage": 53.3, "current": -12.3, "temperature": 24.5})
    assert d[0x359]["modules"] == 2 and d[0x359]["marker"] == b"PN"
    assert d[0x35C]["charge_enable"] == d[0x35C]["discharge_enable"] == 1
    assert d[0x35E] == {"name": "PYLON"}
    assert d[0x379] == {"capacity_ah": 280}


def test_every_frame_is_eight_bytes_even_when_padding_is_turned_off() -> None:
    frames = profile("sol-ark", pad_to_8=False).frames(report())
    assert {len(f.data) for f in frames} == {8}


def test_force_charge_on_bit_4() -> None:
    d = decoded(report(limits=limits(force_charge=True)))
    assert d[0x35C]["force_bit4"] == 1


def test_unknown_capacity_and_measurements_are_neutral() -> None:
    d = decoded(report(**UNKNOWN_MEASUREMENTS))
    assert d[0x379] == {"capacity_ah": 0}
    assert d[0x356]["voltage"] == approx(55.2)  # the CVL sent, never 0 V
    assert d[0x356]["current"] == 0


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
    # Sol-Ark, like Deye, may charge on at CCL 0: the CVL comes down to the pack voltage.
    assert d[0x351]["cvl"] <= 53.27


def test_minimum_interval_is_the_default_and_checked() -> None:
    cls = profile_class("sol-ark")
    assert cls.min_interval == 0.1
    with pytest.raises(ValueError, match="minimum"):
        InverterSettings(profile="sol-ark", period=0.05)


bad = st.sampled_from([0.0, -1.0, math.nan, math.inf, 0.04, 1e9])


@settings(max_examples=60, deadline=None)
@given(cvl=bad, voltage=bad, ccl=bad, enable=st.booleans())
def test_never_cvl_0_and_always_eight_bytes(cvl, voltage, ccl, enable) -> None:
    r = report(voltage=voltage, limits=limits(cvl=cvl, ccl=ccl, charge_enable=enable))
    d = decoded(r)
    assert d[0x351]["cvl"] >= 1.0
    assert d[0x351]["ccl"] >= 0


def test_config_selects_it() -> None:
    from gateway.config.root import validate  # noqa: PLC0415

    s = validate(
        {
            "battery": {"topology": {"strings": [[0]], "capacity_ah": 100}},
            "buses": {"battery": {"interface": "virtual", "channel": "x"}},
            "inverter": {"profile": "sol-ark"},
        },
        "test",
    )
    assert s.inverter.profile == "sol-ark"
