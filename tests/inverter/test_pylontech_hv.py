"""The `pylontech-hv` profile, decoded after the Pylontech HV (Force H1/H2) layout
(tests/inverter/family_decoders.py): 29-bit ids, polled by 0x4200, offsets -3000 A and
-100 degC."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest import approx

from gateway.contracts.decision import Alarm, Severity
from gateway.contracts.frame import Frame
from gateway.outputs.inverter.emitter import Emitter
from gateway.outputs.inverter.profile import FRAME_SET
from tests.gateway.test_core import Rig
from tests.inverter.family_decoders import (
    PYLON_HV_ENSEMBLE,
    PYLON_HV_EQUIPMENT,
    pylontech_hv,
)
from tests.inverter.helpers import UNKNOWN_MEASUREMENTS, limits, profile, report

HV = "pylontech-hv"
POLL = Frame(0x4200, bytes(8), extended=True)
ASK_EQUIPMENT = Frame(0x4200, bytes([2]) + bytes(7), extended=True)


def hv_report(**changes):
    """A 3 x 16s LFP string at 159.8 V."""
    base = {
        "voltage": 159.81,
        "current": 12.3,
        "limits": limits(cvl=165.6, dvl=144.0, ccl=50.0, dcl=80.0),
        "cells_in_series": 48,
        "modules_in_series": 3,
        "module_voltages": ((0, 53.25), (1, 53.31), (2, 53.27)),
        "min_cell_number": 20,
        "max_cell_number": 7,
        "nominal_voltage": 153.6,
        "cycles": 12.7,
    }
    return report(**{**base, **changes})


def test_the_inverter_polls_and_the_answers_decode_as_the_document_says() -> None:
    p = profile(HV)
    assert p.request(POLL) == FRAME_SET
    assert p.request(ASK_EQUIPMENT) == "equipment"
    out = p.shape(hv_report())
    ensemble = p.answer(FRAME_SET, out)
    assert [f.id for f in ensemble] == sorted(PYLON_HV_ENSEMBLE)
    d = pylontech_hv(ensemble)
    assert d[0x4210] == approx(
        {"voltage": 159.8, "current": 12.3, "temperature": 22.2, "soc": 73, "soh": 98}
    )
    assert d[0x4220] == approx({"cvl": 165.6, "dvl": 144.0, "ccl": 50.0, "dcl": 80.0})
    assert d[0x4230] == {"max_cell_mv": 3334, "min_cell_mv": 3321, "max_no": 7, "min_no": 20}
    assert d[0x4240] == approx({"max_t": 24.5, "min_t": 20.0, "max_no": 0, "min_no": 0})
    assert d[0x4250] == {
        "status": "charge",
        "force_charge": 0,
        "balance_charge": 0,
        "cycles": 12,
        "errors": set(),
        "alarms": set(),
        "protections": set(),
    }
    assert d[0x4260] == {"max_module_mv": 53310, "min_module_mv": 53250, "max_no": 1, "min_no": 0}
    assert d[0x4280] == {"charge_forbidden": False, "discharge_forbidden": False}
    equipment = pylontech_hv(p.answer("equipment", out))
    assert set(equipment) == PYLON_HV_EQUIPMENT
    assert equipment[0x7320] == {
        "cells": 48,
        "modules": 3,
        "cells_per_module": 16,
        "voltage_level": 154,
        "capacity_ah": 280,
    }
    assert equipment[0x7330]["name"] + equipment[0x7340]["name"] == "moat-bms" + "\0" * 8


def test_only_a_29_bit_0x4200_is_a_poll() -> None:
    p = profile(HV)
    assert p.request(Frame(0x4200, bytes(8))) is None  # an 11-bit frame cannot be it
    assert p.request(Frame(0x4200, bytes([7]) + bytes(7), extended=True)) is None
    assert p.request(Frame(0x4200, b"", extended=True, remote=True)) is None
    assert profile("pylontech").request(POLL) is None


def test_a_stopped_direction_is_a_forbidden_mark_and_a_warning_not_a_protection() -> None:
    stop = hv_report(
        limits=limits(cvl=165.6, dvl=144.0, ccl=0.0, dcl=80.0, charge_enable=False),
        alarms={Alarm.HIGH_CELL_VOLTAGE: Severity.ALARM},
    )
    d = pylontech_hv(profile(HV).frames(stop))
    assert d[0x4280] == {"charge_forbidden": True, "discharge_forbidden": False}
    assert d[0x4220]["ccl"] == 0.0 and d[0x4220]["dcl"] == 80.0
    assert d[0x4250]["alarms"] == {"cell_high_v"} and d[0x4250]["protections"] == set()
    # Both directions stopped with a stale battery: a fault.
    stale = hv_report(
        limits=limits(ccl=0.0, dcl=0.0, charge_enable=False, discharge_enable=False),
        alarms={Alarm.BATTERY_DATA_STALE: Severity.ALARM},
    )
    d = pylontech_hv(profile(HV).frames(stale))
    assert d[0x4280] == {"charge_forbidden": True, "discharge_forbidden": True}
    assert d[0x4250]["errors"] == {"internal_comm"}


def test_unknown_measurements_never_give_cvl_0_or_nonsense() -> None:
    d = pylontech_hv(profile(HV).frames(hv_report(**UNKNOWN_MEASUREMENTS)))
    assert d[0x4220]["cvl"] == 165.6
    assert d[0x4210]["voltage"] == 165.6  # the CVL stands in for an unknown pack voltage
    assert d[0x4210]["current"] == 0.0 and d[0x4210]["temperature"] == 25.0  # neutral


def test_a_stop_goes_out_unasked_but_nothing_else_does() -> None:
    emitter = Emitter.for_profile(profile(HV))
    assert not emitter.due(0.0, hv_report())  # nothing before the first poll
    emitter.sent(0.0, hv_report())
    assert not emitter.due(5.0, hv_report())  # no period: the inverter polls
    stop = hv_report(limits=limits(cvl=165.6, dvl=144.0, ccl=0.0, dcl=80.0))
    assert emitter.due(0.05, stop)


def test_the_core_answers_each_poll_at_once() -> None:
    rig = Rig(inverter={"profile": HV, "startup_grace": 5, "keepalive_timeout": 3})
    rig.run(3.0)
    assert rig.sent_inverter == []  # never asked
    assert rig.core.on_inverter_frame(POLL, rig.t)  # tick at once
    rig.tick(0.0)
    assert {f.id for f in rig.sent_inverter} == PYLON_HV_ENSEMBLE
    assert all(f.extended for f in rig.sent_inverter)
    assert rig.core.keepalive.status(rig.t) == "ok"  # the poll is the inverter's keepalive
    rig.sent_inverter.clear()
    rig.t += 0.2  # a second request, after the minimum interval
    rig.core.on_inverter_frame(ASK_EQUIPMENT, rig.t)
    rig.tick(0.0)
    assert {f.id for f in rig.sent_inverter} == PYLON_HV_EQUIPMENT


@settings(max_examples=150, deadline=None)
@given(
    voltage=st.floats(allow_nan=True, allow_infinity=True),
    current=st.floats(allow_nan=True, allow_infinity=True),
    cvl=st.floats(allow_nan=True, allow_infinity=True),
    ccl=st.floats(allow_nan=True, allow_infinity=True),
    temperature=st.floats(allow_nan=True, allow_infinity=True),
)
def test_any_report_decodes_and_never_sends_cvl_0(
    voltage: float, current: float, cvl: float, ccl: float, temperature: float
) -> None:
    r = hv_report(
        voltage=voltage,
        current=current,
        limits=limits(cvl=cvl, ccl=ccl),
        max_cell_temperature=temperature,
    )
    d = pylontech_hv(profile(HV).frames(r))
    assert d[0x4220]["cvl"] > 0
    assert math.isfinite(d[0x4210]["voltage"])


@pytest.mark.parametrize("name", [HV])
def test_frames_are_eight_bytes_whatever_pad_to_8_says(name: str) -> None:
    for pad in (True, False, None):
        frames = profile(name, pad_to_8=pad).frames(hv_report())
        assert {len(f.data) for f in frames} == {8} and all(f.extended for f in frames)


def test_a_poll_storm_is_answered_at_most_every_minimum_interval() -> None:
    rig = Rig(inverter={"profile": HV, "startup_grace": 5, "keepalive_timeout": 3})
    rig.run(2.0)
    answers = 0
    for _ in range(100):  # a poll every millisecond for 0.1 s
        rig.core.on_inverter_frame(POLL, rig.t)
        answers += sum(f.id == 0x4220 for f in rig.tick(0.001).inverter)
    assert answers <= 2
