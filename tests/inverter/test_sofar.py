"""The `sofar` profile, decoded after V1.2 plus Sofar's bytes (tests/inverter/family_decoders.py):
0x355 bytes 6-7 remaining capacity, 0x356 bytes 6-7 cycle count."""

from __future__ import annotations

from pytest import approx

from gateway.contracts.decision import Alarm, Severity
from tests.inverter.family_decoders import sofar
from tests.inverter.helpers import UNKNOWN_MEASUREMENTS, limits, profile, report


def test_frame_set_and_sofars_extra_bytes() -> None:
    frames = profile("sofar").frames(report(cycles=41.6))
    assert [f.id for f in frames] == [0x351, 0x355, 0x356, 0x359, 0x35C, 0x35E]
    d = sofar(frames)
    assert d[0x351] == approx({"cvl": 55.2, "ccl": 100.0, "dcl": 150.0, "dvl": 48.0})
    # 73.456 % of 280 Ah remaining: 205.68 -> 206 Ah.
    assert d[0x355] == approx({"soc": 73, "soh": 98, "soc_hr": 73.46, "remaining_ah": 206})
    # Average cell temperature (V1.2) and 41 whole cycles.
    assert d[0x356] == approx(
        {"voltage": 53.27, "current": -12.3, "temperature": 22.2, "cycles": 41}
    )
    assert d[0x359]["marker"] == b"PN" and d[0x359]["protection"] == 0
    assert d[0x35C]["charge_enable"] == 1 and d[0x35E]["name"] == "PYLON"


def test_a_stop_is_v12s_and_never_an_alarm() -> None:
    stop = report(
        limits=limits(ccl=0.0, charge_enable=False),
        alarms={Alarm.HIGH_CELL_VOLTAGE: Severity.ALARM},
    )
    d = sofar(profile("sofar").frames(stop))
    assert d[0x351]["ccl"] == 0.0 and d[0x35C]["charge_enable"] == 0
    assert d[0x359]["protection"] == 0 and d[0x359]["alarm"] != 0


def test_unknown_measurements() -> None:
    d = sofar(profile("sofar").frames(report(**UNKNOWN_MEASUREMENTS)))
    assert d[0x355]["remaining_ah"] == 0 and d[0x356]["cycles"] == 0
    assert d[0x351]["cvl"] == 55.2 and d[0x356]["voltage"] == 55.2
