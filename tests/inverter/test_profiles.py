"""Every profile's frames, decoded with cantools from dbc/pylontech_lv.dbc, field by field."""

from __future__ import annotations

from typing import Any

import pytest
from pytest import approx

from gateway.contracts.decision import Alarm, Severity
from gateway.contracts.frame import Frame
from gateway.outputs.inverter import PROFILES, InverterSettings, make_profile, profile_class
from tests.inverter.helpers import (
    ALARMS,
    UNKNOWN_MEASUREMENTS,
    decode,
    last_frames,
    limits,
    profile,
    report,
    text,
)

PYLON_SET = {0x351, 0x355, 0x356, 0x359, 0x35C, 0x35E}
IDS = {
    "pylontech": PYLON_SET,
    "victron": PYLON_SET
    | {0x35A, 0x35F, 0x370, 0x371, 0x372, 0x373}
    | {0x374, 0x375, 0x376, 0x377, 0x378, 0x379},
    "sma-sunny-island": {0x351, 0x355, 0x356, 0x35A, 0x35B, 0x35E, 0x35F},
    "deye": PYLON_SET,
}
PADDED = {"sma-sunny-island"}
# Families whose layout differs from the Pylontech DBC: tested with their own decoders
# (tests/inverter/family_decoders.py, test_<family>.py).
FAMILIES = {"sol-ark", "luxpower", "growatt-lv", "pylontech-hv", "sofar"}
OK, ACTIVE, UNKNOWN = 2, 1, 0
# 0x356 temperature of report(): the average cell temperature (20.0 and 24.5 -> 22.25, in
# 0.1 degC) for V1.2 and Deye (issue 15 item 6), the highest cell for the others.
TEMP = {"pylontech": 22.2, "deye": 22.2, "victron": 24.5, "sma-sunny-island": 24.5}


def frames_of(pylon_db, name: str, *reports, **settings: Any) -> dict[int, dict[str, Any]]:
    """Decoded frames of the last of `reports`, sent in order through one profile instance."""
    return decode(pylon_db, last_frames(name, *reports, **settings), padded=name in PADDED)


def test_registry_has_exactly_the_known_profiles() -> None:
    assert set(PROFILES) == set(IDS) | FAMILIES
    for name in PROFILES:
        assert profile_class(name).name == name


def test_unknown_profile_is_refused_with_the_known_names() -> None:
    known = ", ".join(sorted(PROFILES))
    with pytest.raises(ValueError, match=rf"'fronius'.*{known}"):
        make_profile("fronius", InverterSettings())


def test_settings_for_another_profile_are_refused() -> None:
    with pytest.raises(ValueError, match="victron"):
        make_profile("deye", InverterSettings(profile="victron"))


@pytest.mark.parametrize("name", sorted(IDS))
def test_frame_ids_and_order(pylon_db, name: str) -> None:
    ids = [f.id for f in profile(name).frames(report())]
    assert set(ids) == IDS[name]
    assert ids == sorted(ids), "sent in id order, limits (0x351) first"


@pytest.mark.parametrize("name", sorted(IDS))
def test_padding_follows_the_profile_unless_overridden(pylon_db, name: str) -> None:
    padded = name in PADDED
    assert profile(name).pad_to_8 is padded
    decode(pylon_db, profile(name).frames(report()), padded=padded)
    decode(pylon_db, profile(name, pad_to_8=not padded).frames(report()), padded=not padded)


@pytest.mark.parametrize("name", sorted(IDS))
def test_normal_report(pylon_db, name: str) -> None:
    f = frames_of(pylon_db, name, report())
    assert f[0x351] == approx(
        {
            "ChargeVoltageLimit": 55.2,
            "ChargeCurrentLimit": 100.0,
            "DischargeCurrentLimit": 150.0,
            "DischargeVoltageLimit": 48.0,
        }
    )
    assert f[0x355] == approx({"Soc": 73, "Soh": 98, "SocHighRes": 73.46})
    assert f[0x356] == approx({"Voltage": 53.27, "Current": -12.3, "Temperature": TEMP[name]})
    # Victron must not take the battery for a Pylontech (see gateway/inverter/victron.py).
    pylontech_like = name != "victron"
    manufacturer = "PYLON   " if pylontech_like else "moat-bms"
    assert text(f[0x35E], "ManufacturerChar", 1, 8) == manufacturer
    if 0x359 in f:
        assert f[0x359] == {
            **{signal: 0 for signal in f[0x359]},
            "ModuleCount": 2,
            "MarkerP": ord("P") if pylontech_like else 0,
            "MarkerN": ord("N") if pylontech_like else 0,
        }
    if 0x35C in f:
        assert f[0x35C] == {
            "ChargeEnable": 1,
            "DischargeEnable": 1,
            "ForceChargeI": 0,
            "ForceChargeII": 0,
            "FullChargeRequest": 0,
        }
    if 0x35A in f:
        unsupported = {"ShortCircuit"}  # the "while charging" pairs are evaluated (item 1)
        for signal, value in f[0x35A].items():
            supported = signal.removeprefix("Alarm").removeprefix("Warning") not in unsupported
            assert value == (OK if supported else UNKNOWN), signal
    if 0x370 in f:
        name_bytes = text(f[0x370], "NameChar", 1, 8) + text(f[0x371], "NameChar", 9, 8)
        assert name_bytes == "moat-bms" + "\0" * 8
        assert f[0x372] == {
            "ModulesOnline": 2,
            "ModulesBlockingCharge": 0,
            "ModulesBlockingDischarge": 0,
            "ModulesOffline": 1,
        }
        assert f[0x373] == approx(
            {
                "MinCellVoltage": 3.321,
                "MaxCellVoltage": 3.334,
                "MinCellTemperature": 293,
                "MaxCellTemperature": 298,
            }
        )
    if 0x35F in f and name == "victron":  # model, firmware, capacity, hardware (item 4)
        assert f[0x35F] == {
            "BatteryModel": 0,
            "HardwareVersion": 0x0102,
            "Capacity": 280,
            "SoftwareVersion": 3,
        }
    elif 0x35F in f:  # SMA's layout: type n/a, BMS version, capacity, manufacturer id n/a
        assert f[0x35F] == {
            "BatteryModel": 0xFFFF,
            "HardwareVersion": 0x0102,
            "Capacity": 280,
            "SoftwareVersion": 0xFFFF,
        }
    if 0x35B in f:
        assert f[0x35B] == {"EventData": 0}


# Stop charging: the CVL each family needs to really stop, for a pack at 53.27 V.
# SMA: at the pack voltage rounded up, never below it (issue 15 item 3).
STOP_CHARGE_CVL = {"pylontech": 55.2, "victron": 53.2, "sma-sunny-island": 53.3, "deye": 53.2}


@pytest.mark.parametrize("name", sorted(IDS))
@pytest.mark.parametrize(
    "stop", [{"charge_enable": False}, {"ccl": 0.0}, {"ccl": float("nan")}], ids=str
)
def test_stop_charging(pylon_db, name: str, stop: dict[str, Any]) -> None:
    f = frames_of(pylon_db, name, report(limits=limits(**stop)))
    assert f[0x351]["ChargeVoltageLimit"] == approx(STOP_CHARGE_CVL[name])
    assert f[0x351]["ChargeCurrentLimit"] == 0
    assert f[0x351]["DischargeCurrentLimit"] == approx(150.0)
    if 0x35C in f:
        assert f[0x35C]["ChargeEnable"] == int(stop.get("charge_enable", True))
        assert f[0x35C]["DischargeEnable"] == 1


@pytest.mark.parametrize("name", ["victron", "deye"])  # SMA: never below the pack (item 3)
def test_stop_charging_never_raises_the_strategy_cvl(pylon_db, name: str) -> None:
    f = frames_of(pylon_db, name, report(limits=limits(cvl=53.1, ccl=0.0)))
    assert f[0x351]["ChargeVoltageLimit"] == approx(53.1)


@pytest.mark.parametrize("name", ["victron", "sma-sunny-island", "deye"])
def test_stop_charging_with_unknown_voltage_keeps_the_strategy_cvl(pylon_db, name: str) -> None:
    # The last known voltage is old news: lowering the CVL to it could be far off.
    f = frames_of(pylon_db, name, report(), report(voltage=float("nan"), limits=limits(ccl=0.0)))
    assert f[0x351]["ChargeVoltageLimit"] == approx(55.2)
    assert f[0x351]["ChargeCurrentLimit"] == 0


def test_deye_cvl_is_kept_within_the_margin_below_the_pack_voltage(pylon_db) -> None:
    # Strategy wants 52.6 V while the pack is at 53.27 V (more than 0.5 V below): W31 risk.
    f = frames_of(pylon_db, "deye", report(limits=limits(cvl=52.6)))
    assert f[0x351]["ChargeVoltageLimit"] == approx(52.8)  # 53.27 - 0.5, rounded up
    assert f[0x351]["ChargeCurrentLimit"] == 0  # the strategy wants the pack lower
    # However far below the strategy's CVL is (issue 15 item 5), with charging disabled.
    f = frames_of(pylon_db, "deye", report(limits=limits(cvl=52.0)))
    assert f[0x351]["ChargeVoltageLimit"] == approx(52.8)
    assert f[0x35C]["ChargeEnable"] == 0
    # Within the margin nothing changes, and other profiles never raise.
    f = frames_of(pylon_db, "deye", report(limits=limits(cvl=52.9)))
    assert f[0x351] == approx({**f[0x351], "ChargeVoltageLimit": 52.9, "ChargeCurrentLimit": 100})
    f = frames_of(pylon_db, "victron", report(limits=limits(cvl=52.0)))
    assert f[0x351]["ChargeVoltageLimit"] == approx(52.0)


def test_deye_margin_is_configurable(pylon_db) -> None:
    f = frames_of(pylon_db, "deye", report(limits=limits(cvl=52.0)), cvl_margin=1.0)
    assert f[0x351]["ChargeVoltageLimit"] == approx(52.3)


def test_deye_manufacturer_must_start_with_pylon(pylon_db) -> None:
    f = frames_of(pylon_db, "deye", report(manufacturer="MOAT"))
    assert text(f[0x35E], "ManufacturerChar", 1, 8) == "PYLON   "
    f = frames_of(pylon_db, "deye", report(manufacturer="PYLONDIY"))
    assert text(f[0x35E], "ManufacturerChar", 1, 8) == "PYLONDIY"
    f = frames_of(pylon_db, "victron", report(manufacturer="MOAT"))
    assert text(f[0x35E], "ManufacturerChar", 1, 8) == "MOAT    "


@pytest.mark.parametrize("manufacturer", ["PYLON", "pylonDIY"])
def test_victron_never_sees_a_pylontech_name(pylon_db, manufacturer: str) -> None:
    f = frames_of(pylon_db, "victron", report(manufacturer=manufacturer))
    assert text(f[0x35E], "ManufacturerChar", 1, 8) == "moat-bms"
    assert (f[0x359]["MarkerP"], f[0x359]["MarkerN"]) == (0, 0)


@pytest.mark.parametrize("name", sorted(IDS))
@pytest.mark.parametrize(
    "stop", [{"discharge_enable": False}, {"dcl": 0.0}, {"dcl": -5.0}], ids=str
)
def test_stop_discharging(pylon_db, name: str, stop: dict[str, Any]) -> None:
    f = frames_of(pylon_db, name, report(limits=limits(**stop)))
    assert f[0x351] == approx(
        {
            "ChargeVoltageLimit": 55.2,
            "ChargeCurrentLimit": 100.0,
            "DischargeCurrentLimit": 0.0,
            "DischargeVoltageLimit": 48.0,
        }
    )
    if 0x35C in f:
        assert f[0x35C]["DischargeEnable"] == int(stop.get("discharge_enable", True))
        assert f[0x35C]["ChargeEnable"] == 1


@pytest.mark.parametrize("name", sorted(IDS))
def test_invalid_dvl_stops_discharging(pylon_db, name: str) -> None:
    f = frames_of(pylon_db, name, report(limits=limits(dvl=float("nan"))))
    assert f[0x351]["DischargeCurrentLimit"] == 0
    assert f[0x351]["ChargeCurrentLimit"] == approx(100.0)
    if 0x35C in f:
        assert f[0x35C]["DischargeEnable"] == 0


@pytest.mark.parametrize("name", sorted(IDS))
def test_dvl_override(pylon_db, name: str) -> None:
    f = frames_of(pylon_db, name, report(limits=limits(dvl=float("nan"))), dvl=46.0)
    assert f[0x351]["DischargeVoltageLimit"] == approx(46.0)
    assert f[0x351]["DischargeCurrentLimit"] == approx(150.0)


@pytest.mark.parametrize("name", sorted(IDS))
@pytest.mark.parametrize("cvl", [0.0, float("nan"), -1.0, float("inf"), 0.04])
def test_invalid_cvl_stops_both_directions_and_never_sends_zero(
    pylon_db, name: str, cvl: float
) -> None:
    f = frames_of(pylon_db, name, report(limits=limits(cvl=cvl)))
    # Nothing valid was ever sent: the pack voltage rounded down stands in (SMA: up).
    assert f[0x351]["ChargeVoltageLimit"] == approx(53.3 if name == "sma-sunny-island" else 53.2)
    assert f[0x351]["ChargeCurrentLimit"] == 0
    assert f[0x351]["DischargeCurrentLimit"] == 0
    if 0x359 in f:
        assert f[0x359]["ProtectionSystemError"] == 1
    if 0x35A in f:
        assert f[0x35A]["AlarmBmsInternal"] == ACTIVE
    # After a valid CVL, that one is held (and charging is stopped the profile's way).
    f = frames_of(pylon_db, name, report(), report(limits=limits(cvl=cvl)))
    assert f[0x351]["ChargeVoltageLimit"] == approx(STOP_CHARGE_CVL[name])
    assert f[0x351]["ChargeCurrentLimit"] == 0


@pytest.mark.parametrize("name", sorted(IDS))
def test_fallback_cvl_when_nothing_is_known(pylon_db, name: str) -> None:
    r = report(limits=limits(cvl=float("nan")), voltage=float("nan"))
    f = frames_of(pylon_db, name, r, fallback_cvl=52.0)
    assert f[0x351]["ChargeVoltageLimit"] == approx(52.0)
    assert f[0x351]["ChargeCurrentLimit"] == 0


def test_requests_follow_the_limits(pylon_db) -> None:
    requests = limits(force_charge=True, full_charge_request=True)
    f = frames_of(pylon_db, "pylontech", report(limits=requests))
    assert f[0x35C] == {
        "ChargeEnable": 1,
        "DischargeEnable": 1,
        "ForceChargeI": 1,  # bit 5
        "ForceChargeII": 1,  # bit 4
        "FullChargeRequest": 1,
    }
    # No force-charge request while charging is disabled.
    f = frames_of(
        pylon_db, "pylontech", report(limits=limits(force_charge=True, charge_enable=False))
    )
    assert f[0x35C]["ForceChargeII"] == 0
    assert f[0x35C]["ForceChargeI"] == 0


@pytest.mark.parametrize("name", sorted(IDS))
def test_alarms(pylon_db, name: str) -> None:
    # Both directions stopped: HIGH_CELL_VOLTAGE stays an alarm (issue 15 item 1).
    stopped = limits(ccl=0.0, dcl=0.0, charge_enable=False, discharge_enable=False)
    f = frames_of(pylon_db, name, report(alarms=ALARMS, limits=stopped))
    if 0x359 in f:
        set_bits = {signal for signal, value in f[0x359].items() if value == 1}
        assert set_bits == {
            "ProtectionCellOverVoltage",  # HIGH_CELL_VOLTAGE is an ALARM...
            "AlarmHighVoltage",  # ...and so a warning too
            "AlarmHighTemperature",
        }
    if 0x35A in f:
        active = {signal for signal, value in f[0x35A].items() if value == ACTIVE}
        assert active == {
            "AlarmGeneral",
            "AlarmHighVoltage",
            "WarningGeneral",
            "WarningHighVoltage",
            "WarningHighTemperature",
            "WarningHighTemperatureCharge",  # charging is stopped
            "WarningCellImbalance",
        }
        assert f[0x35A]["AlarmHighTemperature"] == OK
        assert f[0x35A]["AlarmCellImbalance"] == OK


@pytest.mark.parametrize("name", sorted(IDS))
def test_inverter_missing_alone_is_not_reported_to_the_inverter(pylon_db, name: str) -> None:
    missing = {Alarm.INVERTER_MISSING: Severity.ALARM}
    assert profile(name).frames(report(alarms=missing)) == profile(name).frames(report())


GENERIC_UNKNOWN = {"Soc": 50, "Soh": 100, "SocHighRes": 50.0}


@pytest.mark.parametrize("name", ["pylontech", "victron", "deye"])
def test_unknown_measurements_never_known(pylon_db, name: str) -> None:
    f = frames_of(pylon_db, name, report(**UNKNOWN_MEASUREMENTS))
    assert f[0x355] == approx(GENERIC_UNKNOWN)
    # Unknown pack voltage: the CVL being sent; unknown current: 0 A; temperature: 25 degC.
    assert f[0x356] == approx({"Voltage": 55.2, "Current": 0.0, "Temperature": 25.0})
    assert f[0x351]["ChargeVoltageLimit"] == approx(55.2)
    if 0x373 in f:
        assert f[0x373] == approx(
            {
                "MinCellVoltage": 0.0,
                "MaxCellVoltage": 0.0,
                "MinCellTemperature": 298,
                "MaxCellTemperature": 298,
            }
        )


def test_sma_unknown_measurements_are_sent_as_not_available() -> None:
    frames = {
        f.id: f.data for f in profile("sma-sunny-island").frames(report(**UNKNOWN_MEASUREMENTS))
    }
    assert frames[0x355][:6] == (50).to_bytes(2, "little") + b"\xff\xff" + (5000).to_bytes(
        2, "little"
    )
    assert frames[0x356] == b"\x00\x80" + b"\x00\x00" + b"\x00\x80" + b"\x00\x00"
    assert frames[0x35F][4:6] == b"\xff\xff"


@pytest.mark.parametrize("name", sorted(IDS))
def test_unknown_measurements_hold_their_last_value(pylon_db, name: str) -> None:
    f = frames_of(pylon_db, name, report(), report(**UNKNOWN_MEASUREMENTS))
    assert f[0x355] == approx({"Soc": 73, "Soh": 98, "SocHighRes": 73.46})
    assert f[0x356] == approx({"Voltage": 53.27, "Current": 0.0, "Temperature": TEMP[name]})
    if 0x373 in f:
        assert f[0x373] == approx(
            {
                "MinCellVoltage": 3.321,
                "MaxCellVoltage": 3.334,
                "MinCellTemperature": 293,
                "MaxCellTemperature": 298,
            }
        )
    if 0x35F in f:
        assert f[0x35F]["Capacity"] == 280


def test_capacity_override(pylon_db) -> None:
    f = frames_of(pylon_db, "sma-sunny-island", report(), capacity_ah=300.0)
    assert f[0x35F]["Capacity"] == 300


@pytest.mark.parametrize(
    ("soc", "whole"), [(0.0, 0), (0.3, 1), (0.5, 1), (1.5, 2), (98.7, 99), (99.9, 99), (100.0, 100)]
)
def test_soc_is_0_only_when_empty_and_100_only_when_full(pylon_db, soc: float, whole: int) -> None:
    f = frames_of(pylon_db, "pylontech", report(soc=soc))
    assert f[0x355]["Soc"] == whole
    assert f[0x355]["SocHighRes"] == approx(soc)


def test_out_of_range_values_are_clamped(pylon_db) -> None:
    r = report(soc=140.0, soh=-3.0, current=1e9, temperature=-1e6, modules_online=1000)
    f = frames_of(pylon_db, "victron", r)
    assert f[0x355] == approx({"Soc": 100, "Soh": 0, "SocHighRes": 100.0})
    assert f[0x356]["Current"] == approx(3000.0)
    assert f[0x356]["Temperature"] == approx(-100.0)
    assert f[0x359]["ModuleCount"] == 255
    assert f[0x372]["ModulesOnline"] == 1000


def test_sma_voltage_windows(pylon_db) -> None:
    f = frames_of(pylon_db, "sma-sunny-island", report(limits=limits(cvl=64.0, dvl=40.0)))
    assert f[0x351]["ChargeVoltageLimit"] == approx(63.0)
    assert f[0x351]["DischargeVoltageLimit"] == approx(41.0)
    f = frames_of(pylon_db, "sma-sunny-island", report(limits=limits(dvl=50.0)))
    assert f[0x351]["DischargeVoltageLimit"] == approx(48.0)


def test_dvl_never_exceeds_cvl(pylon_db) -> None:
    f = frames_of(pylon_db, "pylontech", report(limits=limits(cvl=50.0, dvl=52.0)))
    assert f[0x351]["DischargeVoltageLimit"] == approx(50.0)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_requests_come_only_on_the_request_ids(name: str) -> None:
    """GatewayCore looks at a battery-bus frame as the inverter's only when its id is one of
    the profile's request_ids (or a keepalive, status or battery id): request() must answer
    None for every other id, and answer the requests it knows on its request_ids."""
    p = profile(name)
    for extended in (False, True):
        for frame_id in [*range(0x800), 0x4200, 0x4210, 0x1FFFFFFF]:
            if frame_id > 0x7FF and not extended:
                continue
            for data in (b"\x00" * 8, b"\x02" + b"\x00" * 7, b"\xff" * 8):
                frame = Frame(frame_id, data, extended)
                if frame_id not in p.request_ids:
                    assert p.request(frame) is None, (name, hex(frame_id), data)
    for frame_id in p.request_ids:
        assert p.request(Frame(frame_id, b"\x00" * 8, frame_id > 0x7FF)) is not None
