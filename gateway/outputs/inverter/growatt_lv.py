"""`growatt-lv`: Growatt low-voltage (48 V) storage inverters (SPH, SPF ES/ESS, MIN TL-XH LV
and the like) with the battery type set to lithium, Growatt's own CAN protocol.

Follows "Growatt BMS CAN-Bus protocol Low Voltage" (Rev 04 / V1.04; public copy in
HotNoob/PythonProtocolGateway `documentation/3rdparty/protocols/`), cross-checked with the
emitters of dalathegreat/Battery-Emulator (`Software/src/inverter/GROWATT-LV-CAN.cpp`) and
ai-republic/bms-to-inverter (`inverter-growatt-can`). Not the Pylontech protocol: 11-bit ids
0x311-0x321, every frame eight bytes, every multi-byte field **big-endian** (encoded here
with struct; the Pylontech DBC does not apply):

- 0x311 u16 charge voltage 0.1 V (Growatt accepts 41-63 V), s16 charge current limit 0.1 A,
  s16 discharge current limit 0.1 A, u16 status: bits 0-1 and 10-11 01 idle / 10 charging /
  11 discharging, bit 2 error (a battery fault at alarm level).
- 0x312 protection (bytes 0-1) and warning (bytes 2-3) bits, pack number, two manufacturer
  code bytes, total cell number (0: not known to the gateway's report).
- 0x313 u16 pack voltage 0.01 V, s16 current 0.1 A, s16 temperature 0.1 degC (the highest
  cell temperature), u8 SoC %, u8 SoH % (bit 7 would flag unsafe use: never set).
- 0x314 u16 remaining and u16 full capacity in 10 mAh (at most 655.35 Ah), u16 cell
  difference mV, u16 cycle count (0: not counted).
- 0x319 request flags (bit 7 charge enable, bit 6 discharge enable, bit 5 force charge),
  u16 highest and u16 lowest cell mV, the cells' numbers (0: not known), protect pack id.
- 0x320 manufacturer abbreviation (two ASCII capitals), hardware and software version
  (1-9), date and time (zero: the profile has no clock).
- 0x321 update status: zero, "no update".
The per-cell frames 0x315-0x318 are not sent (the report carries the extremes only).

The inverter sends 0x301 about every second: its heartbeat (`keepalive_id`), which the
document has the battery answer with its frames. We send every period (1 s by default, and
at once on a stop) whether polled or not.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from gateway.contracts.decision import Alarm, Severity
from gateway.contracts.frame import Frame
from gateway.outputs.inverter import alarms as pylon_alarms
from gateway.outputs.inverter.frames import soc_percent
from gateway.outputs.inverter.profile import InverterProfile
from gateway.outputs.inverter.pylontech import NEUTRAL_TEMPERATURE, UNKNOWN_SOH
from gateway.outputs.inverter.shaping import Outgoing, Quirks

HEARTBEAT_ID = 0x301  # from the inverter
CVL_MAX = 63.0  # V
IDLE, CHARGING, DISCHARGING = 0b01, 0b10, 0b11
IDLE_CURRENT = 0.5  # A: below this the battery is idle in 0x311's status
STATUS_ERROR = 1 << 2
U8, U16, S16 = 0xFF, 0xFFFF, (-0x8000, 0x7FFF)

_SYSTEM = pylon_alarms.PROTECTION_BITS["protection_system_error"]
_COMMUNICATION = pylon_alarms.WARNING_BITS["alarm_internal_communication"]
# 0x312 bits: (byte, bit) -> the alarms that set them. Bytes 0-1 protection (at ALARM
# level), bytes 2-3 the same conditions as warnings (any level).
BITS: Mapping[tuple[int, int], frozenset[Alarm]] = {
    (0, 3): frozenset({Alarm.LOW_CELL_VOLTAGE}),
    (0, 4): frozenset({Alarm.HIGH_CELL_VOLTAGE}),
    (0, 6): frozenset({Alarm.HIGH_CHARGE_CURRENT}),
    (0, 7): frozenset({Alarm.HIGH_DISCHARGE_CURRENT}),
    (1, 2): frozenset({Alarm.CELL_IMBALANCE}),
    (1, 3): _SYSTEM,
    (1, 4): frozenset({Alarm.LOW_TEMPERATURE}),  # charging under-temperature
    (1, 5): frozenset({Alarm.LOW_TEMPERATURE}),  # discharging under-temperature
    (1, 6): frozenset({Alarm.HIGH_TEMPERATURE}),  # charging over-temperature
    (1, 7): frozenset({Alarm.HIGH_TEMPERATURE}),  # discharging over-temperature
}
COMMUNICATION_WARNING = (3, 0)


def _u(value: float | None, scale: float = 1.0, top: int = U16) -> int:
    return 0 if value is None else min(max(round(value / scale), 0), top)


def _s16(value: float, scale: float) -> int:
    return min(max(round(value / scale), S16[0]), S16[1])


def _active(alarms: Mapping[Alarm, Severity], which: frozenset[Alarm], least: Severity) -> bool:
    return any(alarms.get(a, 0) >= least for a in which)


def fault_bytes(alarms: Mapping[Alarm, Severity]) -> bytes:
    """0x312 bytes 0-3: protection bits for ALARM severity, warning bits for any."""
    out = bytearray(4)
    for (byte, bit), which in BITS.items():
        if _active(alarms, which, Severity.ALARM):
            out[byte] |= 1 << bit
        if _active(alarms, which, Severity.WARNING):
            out[byte + 2] |= 1 << bit
    if _active(alarms, _COMMUNICATION, Severity.WARNING):
        out[COMMUNICATION_WARNING[0]] |= 1 << COMMUNICATION_WARNING[1]
    return bytes(out)


def state(current: float) -> int:
    if current > IDLE_CURRENT:
        return CHARGING
    if current < -IDLE_CURRENT:
        return DISCHARGING
    return IDLE


def _version(value: int) -> int:
    return min(max(value, 1), 9)


class GrowattLvProfile(InverterProfile):
    """Growatt low-voltage storage inverters, Growatt BMS CAN protocol LV Rev 04."""

    name = "growatt-lv"
    pads_to_8 = True
    keepalive_id = HEARTBEAT_ID
    quirks = Quirks(cvl_max=CVL_MAX)

    def encode(self, out: Outgoing) -> list[Frame]:
        fault = any(
            severity >= Severity.ALARM and alarm in pylon_alarms.REPORTED
            for alarm, severity in out.alarms.items()
        )
        s = state(out.current)
        status = s | (s << 10) | (STATUS_ERROR if fault else 0)
        limits = struct.pack(
            ">HhhH", _u(out.cvl, 0.1), _s16(out.ccl, 0.1), _s16(out.dcl, 0.1), status
        )
        code = out.manufacturer.upper().encode("ascii", "replace")[:2].ljust(2, b" ")
        faults = fault_bytes(out.alarms) + bytes([min(out.modules_online, U8)]) + code + b"\0"
        voltage = out.cvl if out.voltage is None else out.voltage
        temperature = out.max_cell_temperature
        if temperature is None:
            temperature = NEUTRAL_TEMPERATURE if out.temperature is None else out.temperature
        soh = UNKNOWN_SOH if out.soh is None else out.soh
        measurements = struct.pack(
            ">HhhBB",
            _u(voltage, 0.01),
            _s16(out.current, 0.1),
            _s16(temperature, 0.1),
            soc_percent(out.soc),
            _u(soh, top=100),
        )
        full = out.capacity_ah
        remaining = None if full is None else full * out.soc / 100
        high, low = out.max_cell_voltage, out.min_cell_voltage
        spread = None if high is None or low is None else max(high - low, 0.0)
        capacity = struct.pack(">HHHH", _u(remaining, 0.01), _u(full, 0.01), _u(spread, 0.001), 0)
        flags = (
            (0x80 if out.charge_enable else 0)
            | (0x40 if out.discharge_enable else 0)
            | (0x20 if out.force_charge else 0)
        )
        cells = struct.pack(">BHHBBB", flags, _u(high, 0.001), _u(low, 0.001), 0, 0, 0)
        info = code + bytes([_version(out.hardware_version), _version(out.firmware_version >> 8)])
        return [
            Frame(0x311, limits),
            Frame(0x312, faults),
            Frame(0x313, measurements),
            Frame(0x314, capacity),
            Frame(0x319, cells),
            Frame(0x320, info.ljust(8, b"\0")),
            Frame(0x321, bytes(8)),
        ]
