"""A battery that speaks Pylontech LV CAN, read as an inverter reads it.

Follows "Pylon LV CAN protocol" V1.2 (Pylontech, 500 kbit/s, 11-bit identifiers, little
endian): the battery sends 0x351 (charge voltage, charge and discharge current limits,
discharge voltage), 0x355 (SoC, SoH), 0x356 (voltage 0.01 V, current 0.1 A, temperature
0.1 degC), 0x359 (protection and alarm bits, module count, "PN"), 0x35C (charge/discharge
enable, force charge requests) and 0x35E (manufacturer name) about once a second, and expects
the inverter's 0x305 keepalive. Some batteries add the SMA/Victron extensions the same DBC
describes: 0x35A (alarm and warning pairs), 0x35F (capacity) and 0x373 (lowest and highest
cell voltage and temperature). Every frame is decoded with the generated codec of
dbc/pylontech_lv.dbc, the file the inverter output (gateway/outputs/inverter) encodes with.

Pure: frames in with the time they arrived, a PackReading out (or a PackError saying what is
missing). One battery per bus, or several on one bus at an id offset each (0x351 + offset ..,
keepalive at 0x305 + offset).
"""

from __future__ import annotations

import math

from gateway.codec import pylontech_lv as codec
from gateway.contracts.frame import Frame
from gateway.sources.packs.reading import PackError, PackLimits, PackReading

LIMITS = codec.FRAME_IDS["BatteryLimits"]  # 0x351
SOC = codec.FRAME_IDS["BatterySoc"]  # 0x355
MEASUREMENTS = codec.FRAME_IDS["BatteryMeasurements"]  # 0x356
PROTECTION = codec.FRAME_IDS["ProtectionAlarms"]  # 0x359
ALARM_PAIRS = codec.FRAME_IDS["AlarmsWarnings"]  # 0x35A
REQUESTS = codec.FRAME_IDS["RequestFlags"]  # 0x35C
NAME = codec.FRAME_IDS["ManufacturerName"]  # 0x35E
INFO = codec.FRAME_IDS["BatteryInfo"]  # 0x35F
CELL_EXTREMES = codec.FRAME_IDS["CellExtremes"]  # 0x373
KEEPALIVE = codec.FRAME_IDS["InverterKeepalive"]  # 0x305
# Without these four no reading is complete: limits, SoC, measurements, protection.
REQUIRED = (LIMITS, SOC, MEASUREMENTS, PROTECTION)
# The shortest frame V1.2 defines (the DBC's lengths are those of the longest variant: DVL in
# 0x351, SoC in 0.01 % in 0x355); a shorter one is cut and would decode zeros.
MIN_LENGTHS = {
    LIMITS: 6,
    SOC: 4,
    MEASUREMENTS: 6,
    PROTECTION: 4,
    ALARM_PAIRS: 8,
    REQUESTS: 1,
    NAME: 1,
    INFO: 8,
    CELL_EXTREMES: 8,
}
READ = tuple(MIN_LENGTHS)

# 0x359 bits, V1.2 names: protection (the battery stops) and alarm (warning).
PROTECTION_NAMES = {
    "protection_cell_over_voltage": "protection: cell over-voltage",
    "protection_cell_under_voltage": "protection: cell under-voltage",
    "protection_over_temperature": "protection: over temperature",
    "protection_under_temperature": "protection: under temperature",
    "protection_discharge_over_current": "protection: discharge over-current",
    "protection_charge_over_current": "protection: charge over-current",
    "protection_system_error": "protection: system error",
    "alarm_high_voltage": "alarm: high voltage",
    "alarm_low_voltage": "alarm: low voltage",
    "alarm_high_temperature": "alarm: high temperature",
    "alarm_low_temperature": "alarm: low temperature",
    "alarm_discharge_high_current": "alarm: discharge high current",
    "alarm_charge_high_current": "alarm: charge high current",
    "alarm_internal_communication": "alarm: internal communication failure",
}
# 0x35A: 2-bit pairs, 1 = active. The alarms only (the battery stops); its warnings repeat
# 0x359's alarm bits.
ALARM_PAIR_NAMES = {
    "alarm_general": "alarm: general",
    "alarm_high_voltage": "alarm: high voltage",
    "alarm_low_voltage": "alarm: low voltage",
    "alarm_high_temperature": "alarm: high temperature",
    "alarm_low_temperature": "alarm: low temperature",
    "alarm_high_temperature_charge": "alarm: charge high temperature",
    "alarm_low_temperature_charge": "alarm: charge low temperature",
    "alarm_high_discharge_current": "alarm: discharge high current",
    "alarm_high_charge_current": "alarm: charge high current",
    "alarm_contactor": "alarm: contactor",
    "alarm_short_circuit": "alarm: short circuit",
    "alarm_bms_internal": "alarm: bms internal",
    "alarm_cell_imbalance": "alarm: cell imbalance",
}
KELVIN = 273.15


class PylontechCanBattery:
    """The last of each frame one battery sent, with its time; a reading when complete."""

    def __init__(self, id_offset: int = 0, max_age: float = 5.0) -> None:
        """`max_age`: a frame older than this (s) no longer counts for a reading."""
        self.id_offset = id_offset
        self.max_age = max_age
        self._frames: dict[int, tuple[bytes, float]] = {}
        self.received = 0
        self.malformed = 0  # a frame of ours of the wrong length or content, ignored
        self.last_malformed = ""

    def on_frame(self, frame: Frame, now: float) -> bool:
        """A frame of the battery's bus; True when it was one of this battery's."""
        if frame.extended or frame.remote or frame.error:
            return False
        frame_id = frame.id - self.id_offset
        if frame_id not in READ:
            return False
        self.received += 1
        if not MIN_LENGTHS[frame_id] <= len(frame.data) <= 8:
            self.malformed += 1
            self.last_malformed = (
                f"0x{frame.id:03X} has {len(frame.data)} bytes, expected {MIN_LENGTHS[frame_id]}..8"
            )
            return True
        self._frames[frame_id] = (bytes(frame.data), now)
        return True

    def keepalive(self) -> Frame:
        """The inverter's keepalive the battery expects (0x305 + offset, eight zero bytes:
        V1.2 defines no content the battery reads)."""
        return Frame(KEEPALIVE + self.id_offset, bytes(8))

    def _fresh(self, frame_id: int, now: float) -> bytes | None:
        found = self._frames.get(frame_id)
        if found is None or not 0 <= now - found[1] <= self.max_age:
            return None
        return found[0]

    def reading(self, now: float) -> PackReading:
        """The battery now; PackError naming the frames missing or stale."""
        got = {i: self._fresh(i, now) for i in READ}
        missing = [f"0x{i + self.id_offset:03X}" for i in REQUIRED if got[i] is None]
        if missing:
            raise PackError(f"no recent {', '.join(missing)} from the battery")
        limits = codec.decode_battery_limits(_need(got[LIMITS]))
        soc = codec.decode_battery_soc(_need(got[SOC]))
        meas = codec.decode_battery_measurements(_need(got[MEASUREMENTS]))
        prot = codec.decode_protection_alarms(_need(got[PROTECTION]))
        if not all(math.isfinite(v) for v in (meas.voltage, meas.current, meas.temperature)):
            raise PackError("0x356 carries a value marked not available")
        alarms = {name for field, name in PROTECTION_NAMES.items() if getattr(prot, field)}
        pairs = got[ALARM_PAIRS]
        if pairs is not None:
            decoded = codec.decode_alarms_warnings(pairs)
            alarms |= {
                name for field, name in ALARM_PAIR_NAMES.items() if getattr(decoded, field) == 1
            }
        charge_on = discharge_on = None
        requests = got[REQUESTS]
        if requests is not None:
            flags = codec.decode_request_flags(requests)
            charge_on, discharge_on = bool(flags.charge_enable), bool(flags.discharge_enable)
        temperatures = [meas.temperature]
        cell_range = None
        extremes = got[CELL_EXTREMES]
        if extremes is not None:
            cells = codec.decode_cell_extremes(extremes)
            if 0 < cells.min_cell_voltage <= cells.max_cell_voltage:
                cell_range = (cells.min_cell_voltage, cells.max_cell_voltage)
            if 0 < cells.min_cell_temperature <= cells.max_cell_temperature:
                temperatures += [
                    cells.min_cell_temperature - KELVIN,
                    cells.max_cell_temperature - KELVIN,
                ]
        capacity = None
        info = got[INFO]
        if info is not None:
            capacity = float(codec.decode_battery_info(info).capacity) or None
        return PackReading(
            cells=(),
            temperatures=tuple(temperatures),
            voltage=meas.voltage,
            current=meas.current,
            charge_on=charge_on,
            discharge_on=discharge_on,
            alarms=frozenset(alarms),
            capacity_ah=capacity,
            soc=soc.soc_high_res if soc.soc_high_res > 0 else float(soc.soc),
            cell_range=cell_range,
            # A charge voltage of 0 is no limit a battery can mean (and never one to pass on).
            limits=PackLimits(
                limits.charge_voltage_limit,
                max(limits.charge_current_limit, 0.0),
                max(limits.discharge_current_limit, 0.0),
            )
            if limits.charge_voltage_limit > 0
            else None,
        )

    def name(self, now: float) -> str:
        """The manufacturer the battery names in 0x35E ("" before it did)."""
        data = self._fresh(NAME, now)
        if data is None:
            return ""
        return data.decode("ascii", "replace").rstrip(" \0")


def _need(data: bytes | None) -> bytes:
    assert data is not None  # reading() returned before when a required frame is missing
    return data
