"""`pylontech-hv`: high-voltage hybrids with the battery set to "Pylontech HV" / "Pylon"
(Force H1/H2 protocol): Deye and Sunsynk HV (SG01HP3, SG04LP3-HV), Solax, Goodwe ET/EH,
Sofar HYD, Growatt HV and the like, for series strings of nodes (a few hundred volts).

A different protocol from Pylontech LV: 29-bit identifiers, 500 kbit/s, little-endian, every
frame eight bytes, and **the inverter polls**. It sends 0x4200 about once a second; byte 0
says what it wants:
- 0x00, "ensemble information": the battery answers 0x4210-0x4290 (`frame_set`);
- 0x02, "system equipment information": 0x7310, 0x7320, 0x7330 and 0x7340 (`answer`).
A real Pylontech battery sends nothing unasked. The gateway answers each poll at once (the
core ticks on it) and also sends the ensemble frames unasked when a limit drops or an alarm
rises (`periodic = False`, gateway/outputs/inverter/emitter.py), so a stop never waits up to a
second for the next poll.

Facts from the Pylontech-derived HV documents as their public implementations cite and
follow them: "CAN-Bus Protocol Sermatec high voltage V1.1810kW" and Deye's "CAN-Bus protocol
high voltage V1.17" (stuartpittaway/diyBMSv4ESP32 ESPController/src/pylonforce_canbus.cpp),
dalathegreat/Battery-Emulator Software/src/inverter/PYLON-CAN.cpp (whose initial frame
contents are a real battery's) and ai-republic/bms-to-inverter inverter-pylon-hv-can. The
document itself was not at hand: what the implementations disagree on is said.

Frames (u16 little-endian unless said):
- 0x4210 pack voltage 0.1 V; current 0.1 A offset -3000 A (+ = charging); temperature
  0.1 degC offset -100 degC (the average cell temperature); u8 SoC %; u8 SoH %.
- 0x4220 charge cutoff voltage (CVL) 0.1 V; discharge cutoff voltage (DVL) 0.1 V; max charge
  and max discharge current, 0.1 A offset -3000 A, both positive magnitudes (a real
  battery's frame carries 31050 and 31050 for 105 A each; ai-republic sends the same;
  diyBMS sends the discharge limit negative).
- 0x4230 highest and lowest cell mV; their numbers (position in the string, 0 unknown).
- 0x4240 highest and lowest cell temperature 0.1 degC offset -100 degC; numbers (0).
- 0x4250 u8 status (bits 0-2: 0 sleep, 1 charging, 2 discharging, 3 idle; bit 3 force
  charge request; bit 4 balance charge request); cycle count; u8 error bits; alarm bits;
  protection bits.
- 0x4260 highest and lowest module (node) voltage mV; their node ids.
- 0x4270 highest and lowest module temperature 0.1 degC offset -100 degC; ids (0).
- 0x4280 u8 charge forbidden (0xAA, else 0); u8 discharge forbidden (0xAA, else 0).
- 0x4290 fault extension bits: none.
- 0x7310 hardware version, reserved, hardware major, minor, software major, minor, 0, 0.
- 0x7320 cells in series; u8 modules in series; u8 cells per module; voltage level 1 V
  (nominal); capacity 1 Ah.
- 0x7330, 0x7340 BMS name, 16 ASCII characters padded with NUL.

0x4250 bits, alarm (any severity) and protection (ALARM) words alike: 0 cell low voltage,
1 cell high voltage, 4/6 low temperature (charging/discharging), 5/7 high temperature, 8
charge over-current, 9 discharge over-current; the error byte: bit 2 internal communication
(stale data, a node missing), bit 5 relay (contactor), bit 7 other (system error, a node
tripped). A stopped direction is a warning, not a protection (shaping.py, issue 15 item 1):
the stop is CCL/DCL 0 and the 0x4280 forbidden mark.

Not sent: the per-address copies (0x4211 ...: one battery, address 0), 0x42A0 and the
"name" frames 0x42E0/0x42F0 of Deye V1.17 (the name goes in 0x7330/0x7340), answers to the
inverter's commands 0x8200 (sleep), 0x8210 (close the relay) and 0x8240 (mask the
communication alarm): the gateway's relays follow its own rules only.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from gateway.contracts.decision import Alarm, Severity
from gateway.contracts.frame import Frame
from gateway.outputs.inverter.frames import ascii_codes, soc_percent
from gateway.outputs.inverter.profile import FRAME_SET, InverterProfile
from gateway.outputs.inverter.pylontech import NEUTRAL_TEMPERATURE, UNKNOWN_SOH
from gateway.outputs.inverter.shaping import Outgoing, Quirks

REQUEST_ID = 0x4200  # from the inverter, 29-bit
ENSEMBLE, EQUIPMENT = 0x00, 0x02  # 0x4200 byte 0
EQUIPMENT_REQUEST = "equipment"
CURRENT_OFFSET = 3000.0  # A
TEMPERATURE_OFFSET = 100.0  # degC
FORBIDDEN = 0xAA
SLEEP, CHARGING, DISCHARGING, IDLE = 0, 1, 2, 3
IDLE_CURRENT = 0.5  # A: below this the battery is idle in 0x4250
VOLTAGE_MAX = 1000.0  # V: the highest battery voltage HV hybrids take
U8, U16 = 0xFF, 0xFFFF

# 0x4250 alarm / protection bits.
BITS: Mapping[int, frozenset[Alarm]] = {
    0: frozenset({Alarm.LOW_CELL_VOLTAGE}),
    1: frozenset({Alarm.HIGH_CELL_VOLTAGE}),
    4: frozenset({Alarm.LOW_TEMPERATURE}),
    5: frozenset({Alarm.HIGH_TEMPERATURE}),
    6: frozenset({Alarm.LOW_TEMPERATURE}),
    7: frozenset({Alarm.HIGH_TEMPERATURE}),
    8: frozenset({Alarm.HIGH_CHARGE_CURRENT}),
    9: frozenset({Alarm.HIGH_DISCHARGE_CURRENT}),
}
# 0x4250 error byte, set for Severity.ALARM.
ERRORS: Mapping[int, frozenset[Alarm]] = {
    2: frozenset({Alarm.BATTERY_DATA_STALE, Alarm.NODE_MISSING}),
    5: frozenset({Alarm.CONTACTOR}),
    7: frozenset({Alarm.SYSTEM, Alarm.NODE_TRIPPED}),
}


def _u16(value: float | None, scale: float = 1.0, offset: float = 0.0) -> int:
    """value / scale + offset / scale in 16 bits, clamped; unknown (None) is 0."""
    if value is None:
        return 0
    return min(max(round((value + offset) / scale), 0), U16)


def _active(alarms: Mapping[Alarm, Severity], which: frozenset[Alarm], least: Severity) -> bool:
    return any(alarms.get(a, 0) >= least for a in which)


def _bits(
    table: Mapping[int, frozenset[Alarm]], alarms: Mapping[Alarm, Severity], least: Severity
) -> int:
    return sum(1 << bit for bit, which in table.items() if _active(alarms, which, least))


def state(out: Outgoing) -> int:
    """0x4250 basic status: what the battery does, by its current."""
    if out.current > IDLE_CURRENT:
        return CHARGING
    if out.current < -IDLE_CURRENT:
        return DISCHARGING
    return IDLE


def _temperature(value: float | None) -> int:
    return _u16(NEUTRAL_TEMPERATURE if value is None else value, 0.1, TEMPERATURE_OFFSET)


def ensemble(out: Outgoing) -> list[Frame]:
    """The answer to 0x4200 byte 0 = 0x00: 0x4210-0x4290."""
    soh = UNKNOWN_SOH if out.soh is None else out.soh
    voltage = out.cvl if out.voltage is None else out.voltage
    temperature = out.temperature
    lo_t, hi_t = out.min_cell_temperature, out.max_cell_temperature
    if lo_t is not None and hi_t is not None:
        temperature = (lo_t + hi_t) / 2  # the average cell temperature
    modules = out.module_voltages
    high = max(modules, key=lambda m: m[1], default=None)
    low = min(modules, key=lambda m: m[1], default=None)
    status = (
        state(out)
        | (1 << 3 if out.force_charge else 0)
        | (1 << 4 if out.full_charge_request else 0)
    )
    alarms = out.alarms
    return [
        Frame(
            0x4210,
            struct.pack(
                "<HHHBB",
                _u16(voltage, 0.1),
                _u16(out.current, 0.1, CURRENT_OFFSET),
                _temperature(temperature),
                soc_percent(out.soc),
                min(max(round(soh), 0), 100),
            ),
            extended=True,
        ),
        Frame(
            0x4220,
            struct.pack(
                "<HHHH",
                _u16(out.cvl, 0.1),
                _u16(out.dvl, 0.1),
                _u16(out.ccl, 0.1, CURRENT_OFFSET),
                _u16(out.dcl, 0.1, CURRENT_OFFSET),
            ),
            extended=True,
        ),
        Frame(
            0x4230,
            struct.pack(
                "<HHHH",
                _u16(out.max_cell_voltage, 0.001),
                _u16(out.min_cell_voltage, 0.001),
                out.max_cell_number,
                out.min_cell_number,
            ),
            extended=True,
        ),
        Frame(
            0x4240,
            struct.pack("<HHHH", _temperature(hi_t), _temperature(lo_t), 0, 0),
            extended=True,
        ),
        Frame(
            0x4250,
            struct.pack(
                "<BHBHH",
                status,
                min(out.cycles, U16),
                _bits(ERRORS, alarms, Severity.ALARM),
                _bits(BITS, alarms, Severity.WARNING),
                _bits(BITS, alarms, Severity.ALARM),
            ),
            extended=True,
        ),
        Frame(
            0x4260,
            struct.pack(
                "<HHHH",
                _u16(None if high is None else high[1], 0.001),
                _u16(None if low is None else low[1], 0.001),
                0 if high is None else min(high[0], U16),
                0 if low is None else min(low[0], U16),
            ),
            extended=True,
        ),
        Frame(
            0x4270,
            struct.pack("<HHHH", _temperature(hi_t), _temperature(lo_t), 0, 0),
            extended=True,
        ),
        Frame(
            0x4280,
            bytes(
                [
                    0 if out.charge_enable and out.ccl > 0 else FORBIDDEN,
                    0 if out.discharge_enable and out.dcl > 0 else FORBIDDEN,
                ]
            ).ljust(8, b"\0"),
            extended=True,
        ),
        Frame(0x4290, bytes(8), extended=True),
    ]


def equipment(out: Outgoing) -> list[Frame]:
    """The answer to 0x4200 byte 0 = 0x02: versions, the battery's build, its name."""
    hw, fw = out.hardware_version, out.firmware_version
    series = max(out.modules_in_series, 1)
    name = ascii_codes(out.bms_name, 16, "\0")
    return [
        Frame(
            0x7310,
            bytes([min(hw, U8), 0, hw >> 8 & U8, hw & U8, fw >> 8 & U8, fw & U8, 0, 0]),
            extended=True,
        ),
        Frame(
            0x7320,
            struct.pack(
                "<HBBHH",
                out.cells_in_series,
                min(out.modules_in_series, U8),
                min(out.cells_in_series // series, U8),
                _u16(out.nominal_voltage),
                _u16(out.capacity_ah),
            ),
            extended=True,
        ),
        Frame(0x7330, bytes(name[:8]), extended=True),
        Frame(0x7340, bytes(name[8:]), extended=True),
    ]


class PylontechHvProfile(InverterProfile):
    """Pylontech HV (Force H1/H2) protocol, polled by the inverter with 0x4200."""

    name = "pylontech-hv"
    periodic = False
    pads_to_8 = True
    keepalive_id = REQUEST_ID  # the poll is the inverter's sign of life
    request_ids = frozenset({REQUEST_ID})
    quirks = Quirks(voltage_max=VOLTAGE_MAX)

    def request(self, frame: Frame) -> str | None:
        if frame.id != REQUEST_ID or not frame.extended or frame.remote or not frame.data:
            return None
        if frame.data[0] == ENSEMBLE:
            return FRAME_SET
        if frame.data[0] == EQUIPMENT:
            return EQUIPMENT_REQUEST
        return None

    def answer(self, request: str, out: Outgoing) -> list[Frame]:
        if request == EQUIPMENT_REQUEST:
            return equipment(out)
        return super().answer(request, out)

    def encode(self, out: Outgoing) -> list[Frame]:
        return ensemble(out)
