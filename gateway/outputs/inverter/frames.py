"""Frame builders: Outgoing values -> Frames, always through the generated codec.

Every builder returns the frame at its DBC length; profiles pad where their inverter wants
eight bytes. Values are already finite and within their fields (gateway/inverter/shaping.py).
"""

from __future__ import annotations

import functools

from gateway.codec import pylontech_lv as codec
from gateway.contracts.decision import Alarm, Severity
from gateway.contracts.frame import Frame
from gateway.outputs.inverter.alarms import alarm_pairs, protection_flags
from gateway.outputs.inverter.shaping import Outgoing

MODULE_COUNT_MAX = 0xFF  # 0x359 carries the module count in one byte
# A frame set goes out every second, and most seconds its limits, flags and alarms are the
# last second's: the frames carrying them are kept by the values they encode (a Frame is
# immutable, so one can go out twice) instead of being encoded again. This many each.
KEPT_FRAMES = 16


def ascii_codes(text: str, length: int, fill: str) -> list[int]:
    """`text` as `length` ASCII codes, padded with `fill`."""
    return list(text.ljust(length, fill).encode("ascii"))


def _id(message: str) -> int:
    return codec.FRAME_IDS[message]


def battery_limits(out: Outgoing) -> Frame:
    """0x351: CVL, CCL, DCL, DVL."""
    return _battery_limits(out.cvl, out.ccl, out.dcl, out.dvl)


@functools.lru_cache(maxsize=KEPT_FRAMES)
def _battery_limits(cvl: float, ccl: float, dcl: float, dvl: float) -> Frame:
    data = codec.encode_battery_limits(
        codec.BatteryLimits(
            charge_voltage_limit=cvl,
            charge_current_limit=ccl,
            discharge_current_limit=dcl,
            discharge_voltage_limit=dvl,
        )
    )
    return Frame(_id("BatteryLimits"), data)


def soc_percent(soc: float) -> int:
    """SoC in whole percent: 0 only when empty and 100 only when full, so that an inverter
    acting on 0 % or 100 % never does so on a rounding."""
    if soc <= 0:
        return 0
    if soc >= 100:
        return 100
    return min(max(round(soc), 1), 99)


def battery_soc(out: Outgoing, soh: float) -> Frame:
    """0x355: SoC (1 %), SoH (1 %, as given: the profile resolves an unknown SoH) and the
    0.01 % SoC."""
    data = codec.encode_battery_soc(
        codec.BatterySoc(soc=soc_percent(out.soc), soh=round(soh), soc_high_res=out.soc)
    )
    return Frame(_id("BatterySoc"), data)


def battery_measurements(voltage: float, current: float, temperature: float) -> Frame:
    """0x356: pack voltage (V), current (A, + = charging), temperature (degC)."""
    data = codec.encode_battery_measurements(
        codec.BatteryMeasurements(voltage=voltage, current=current, temperature=temperature)
    )
    return Frame(_id("BatteryMeasurements"), data)


def protection_alarms(out: Outgoing, pylon_marker: bool = True) -> Frame:
    """0x359: protection and alarm flags, module count and, if `pylon_marker`, the 'PN'
    marker by which inverters recognise a Pylontech battery (zeros otherwise)."""
    modules = min(out.modules_online, MODULE_COUNT_MAX)
    return _protection_alarms(tuple(out.alarms.items()), modules, pylon_marker)


@functools.lru_cache(maxsize=KEPT_FRAMES)
def _protection_alarms(
    alarms: tuple[tuple[Alarm, Severity], ...], modules: int, pylon_marker: bool
) -> Frame:
    data = codec.encode_protection_alarms(
        codec.ProtectionAlarms(
            **protection_flags(dict(alarms)),
            module_count=modules,
            marker_p=codec.ProtectionAlarmsMarkerP.P if pylon_marker else 0,
            marker_n=codec.ProtectionAlarmsMarkerN.N if pylon_marker else 0,
        )
    )
    return Frame(_id("ProtectionAlarms"), data)


def alarms_warnings(out: Outgoing) -> Frame:
    """0x35A: alarm and warning 2-bit pairs."""
    return _alarms_warnings(tuple(out.alarms.items()), out.charge_enable and out.ccl > 0)


@functools.lru_cache(maxsize=KEPT_FRAMES)
def _alarms_warnings(alarms: tuple[tuple[Alarm, Severity], ...], charging: bool) -> Frame:
    pairs = alarm_pairs(dict(alarms), charging=charging)
    return Frame(_id("AlarmsWarnings"), codec.encode_alarms_warnings(pairs))


def sma_events() -> Frame:
    """0x35B: no event."""
    return Frame(_id("SmaEvents"), codec.encode_sma_events(codec.SmaEvents(event_data=0)))


def request_flags(out: Outgoing, force_bits: frozenset[int] = frozenset({4, 5})) -> Frame:
    """0x35C: charge/discharge enable, force charge and full-charge request.

    Force charge sets the bits in `force_bits` (the profile's choice). Bit 4 ("force charge
    II" in Pylontech LV CAN V1.2) is the one Pylontech recommends inverters read and the one
    Luxpower/EG4 watch; bit 5 ("force charge I", US2000B era) is the only one OpenDTU-
    OnBattery reads (src/battery/pylontech/Provider.cpp) and the one Battery-Emulator sends
    (0xA0 = bits 7 and 5).
    """
    force = out.force_charge
    return _request_flags(
        int(out.full_charge_request),
        int(force and 4 in force_bits),
        int(force and 5 in force_bits),
        int(out.discharge_enable),
        int(out.charge_enable),
    )


@functools.lru_cache(maxsize=KEPT_FRAMES)
def _request_flags(full: int, force_ii: int, force_i: int, discharge: int, charge: int) -> Frame:
    data = codec.encode_request_flags(
        codec.RequestFlags(
            full_charge_request=full,
            force_charge_ii=force_ii,
            force_charge_i=force_i,
            discharge_enable=discharge,
            charge_enable=charge,
        )
    )
    return Frame(_id("RequestFlags"), data)


@functools.lru_cache(maxsize=16)  # one name per profile, the same frame every second
def manufacturer_name(name: str) -> Frame:
    """0x35E: eight ASCII characters, padded with spaces ("PYLON   ")."""
    data = codec.encode_manufacturer_name(codec.ManufacturerName(*ascii_codes(name, 8, " ")))
    return Frame(_id("ManufacturerName"), data)


def battery_info(out: Outgoing, model: int, capacity_ah: float) -> Frame:
    """0x35F: model code, hardware version, capacity (whole Ah), software version."""
    data = codec.encode_battery_info(
        codec.BatteryInfo(
            battery_model=model,
            hardware_version=out.hardware_version,
            capacity=round(capacity_ah),
            software_version=out.firmware_version,
        )
    )
    return Frame(_id("BatteryInfo"), data)


def bms_name(name: str) -> list[Frame]:
    """0x370 and 0x371: the BMS name, 16 characters padded with NUL (a C string)."""
    codes = ascii_codes(name, 16, "\0")
    return [
        Frame(_id("BmsName1"), codec.encode_bms_name1(codec.BmsName1(*codes[:8]))),
        Frame(_id("BmsName2"), codec.encode_bms_name2(codec.BmsName2(*codes[8:]))),
    ]


def module_counts(out: Outgoing) -> Frame:
    """0x372: modules online, blocking charge, blocking discharge, offline."""
    return _module_counts(
        out.modules_online,
        out.modules_blocking_charge,
        out.modules_blocking_discharge,
        out.modules_offline,
    )


@functools.lru_cache(maxsize=KEPT_FRAMES)
def _module_counts(
    online: int, blocking_charge: int, blocking_discharge: int, offline: int
) -> Frame:
    data = codec.encode_module_counts(
        codec.ModuleCounts(
            modules_online=online,
            modules_blocking_charge=blocking_charge,
            modules_blocking_discharge=blocking_discharge,
            modules_offline=offline,
        )
    )
    return Frame(_id("ModuleCounts"), data)


def kelvin(celsius: float) -> int:
    """Whole kelvin for a temperature in degC."""
    return round(celsius + 273.15)


def cell_extremes(min_v: float, max_v: float, min_t: float, max_t: float) -> Frame:
    """0x373: lowest/highest cell voltage (V) and temperature (degC, sent in K)."""
    data = codec.encode_cell_extremes(
        codec.CellExtremes(
            min_cell_voltage=min_v,
            max_cell_voltage=max_v,
            min_cell_temperature=kelvin(min_t),
            max_cell_temperature=kelvin(max_t),
        )
    )
    return Frame(_id("CellExtremes"), data)


def cell_ids(min_v: str, max_v: str, min_t: str, max_t: str) -> list[Frame]:
    """0x374-0x377: names of the cells with the lowest / highest voltage and temperature,
    8 ASCII characters each, padded with NUL (Victron; diyBMS v4 victron_canbus.cpp)."""
    return [
        Frame(
            _id("MinCellVoltageId"),
            codec.encode_min_cell_voltage_id(codec.MinCellVoltageId(*ascii_codes(min_v, 8, "\0"))),
        ),
        Frame(
            _id("MaxCellVoltageId"),
            codec.encode_max_cell_voltage_id(codec.MaxCellVoltageId(*ascii_codes(max_v, 8, "\0"))),
        ),
        Frame(
            _id("MinCellTemperatureId"),
            codec.encode_min_cell_temperature_id(
                codec.MinCellTemperatureId(*ascii_codes(min_t, 8, "\0"))
            ),
        ),
        Frame(
            _id("MaxCellTemperatureId"),
            codec.encode_max_cell_temperature_id(
                codec.MaxCellTemperatureId(*ascii_codes(max_t, 8, "\0"))
            ),
        ),
    ]


def installed_capacity(capacity_ah: float) -> Frame:
    """0x379: installed capacity, whole Ah."""
    data = codec.encode_installed_capacity(
        codec.InstalledCapacity(installed_capacity=round(capacity_ah))
    )
    return Frame(_id("InstalledCapacity"), data)
