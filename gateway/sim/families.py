"""Inverter families the simulated inverter behaves as, beyond reading V1.2 frames.

gateway/sim/inverter.py keeps its electrical behaviour and the V1.2 reading; what a family
does differently lives here, written from that family's document (not from our profiles):

- `PylontechHv`: an HV hybrid polling the battery with the 29-bit 0x4200 (byte 0 = 0 every
  second, byte 0 = 2 now and then) and reading the answers 0x4210 (measurements), 0x4220
  (limits), 0x4250 (protection and error bits) and 0x4280 (charge / discharge forbidden),
  eight bytes each, currents 0.1 A offset -3000 A, temperatures 0.1 degC offset -100 degC
  (the Pylontech HV layout as the Sermatec / Deye HV documents give it; see
  gateway/outputs/inverter/pylontech_hv.py for the sources).
- `SunnyIsland`: SMA's reactions (FSS-ConnectingBat-TI-en-10): on any 0x35A alarm it
  "immediately stops and changes to fault state until alarm is cleared" (sections 5, 7.3):
  both directions stop, and it restarts by itself (Autostart) once the battery sends every
  alarm as cleared; 60 s without 0x355 is F952 ExtBMSTimeout: the SoC is reset to 0 % and it
  shuts down completely, which only a restart by the user clears.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from gateway.codec.pylontech_lv import AlarmsWarnings, AlarmsWarningsChoice

# -- Pylontech HV ----------------------------------------------------------------------

HV_REQUEST = 0x4200
HV_POLL = bytes(8)  # byte 0 = 0: ensemble information
HV_ASK_EQUIPMENT = bytes([2]) + bytes(7)  # byte 0 = 2: system equipment information
HV_EQUIPMENT_EVERY = 10  # polls between two equipment requests
HV_IDS = frozenset(
    {0x4210, 0x4220, 0x4230, 0x4240, 0x4250, 0x4260, 0x4270, 0x4280, 0x4290}
    | {0x7310, 0x7320, 0x7330, 0x7340}
)
HV_MEASUREMENTS, HV_LIMITS, HV_STATUS, HV_FORBIDDEN = 0x4210, 0x4220, 0x4250, 0x4280
HV_FRAME_LENGTH = 8
FORBIDDEN = 0xAA
# 0x4250 protection bits -> (stops charging, stops discharging).
HV_PROTECTION_BLOCKS: Mapping[int, tuple[bool, bool]] = {
    0: (False, True),  # cell low voltage
    1: (True, False),  # cell high voltage
    2: (False, True),  # discharge system low voltage
    3: (True, False),  # charge system high voltage
    4: (True, False),  # charge low temperature
    5: (True, False),  # charge high temperature
    6: (False, True),  # discharge low temperature
    7: (False, True),  # discharge high temperature
    8: (True, False),  # charge over-current
    9: (False, True),  # discharge over-current
    10: (False, True),  # module low voltage
    11: (True, False),  # module high voltage
}


def _amps(raw: int) -> float:
    return raw / 10 - 3000.0


class PylontechHv:
    """What an HV hybrid last read from the battery's answers."""

    def __init__(self) -> None:
        self.polls = 0
        self.voltage: float | None = None  # V
        self.current: float | None = None  # A, + = charging
        self.temperature: float | None = None  # degC
        self.soc: int | None = None  # %
        self.soh: int | None = None  # %
        self.limits: tuple[float, float, float, float] | None = None  # cvl, ccl, dcl, dvl
        self.blocks = (False, False)  # 0x4250 protections / errors: charge, discharge
        self.forbidden = (False, False)  # 0x4280: charge, discharge
        self.force_charge = False  # 0x4250 status bit 3
        self.equipment: dict[int, bytes] = {}  # 0x7310-0x7340 as received

    def polls_due(self) -> list[tuple[int, bytes]]:
        """This second's 0x4200 frames: the poll, and the equipment request every tenth."""
        frames = [(HV_REQUEST, HV_POLL)]
        if self.polls % HV_EQUIPMENT_EVERY == 0:
            frames.append((HV_REQUEST, HV_ASK_EQUIPMENT))
        self.polls += 1
        return frames

    def read(self, frame_id: int, payload: bytes) -> str:
        """Take one frame: "ok", "garbage" (an answer of the wrong length) or "unknown"."""
        if frame_id not in HV_IDS:
            return "unknown"
        if len(payload) != HV_FRAME_LENGTH:
            return "garbage"
        if frame_id == HV_MEASUREMENTS:
            volts, amps, temp, soc, soh = struct.unpack("<HHHBB", payload)
            self.voltage, self.current = volts / 10, _amps(amps)
            self.temperature, self.soc, self.soh = temp / 10 - 100.0, soc, soh
        elif frame_id == HV_LIMITS:
            cvl, dvl, ccl, dcl = struct.unpack("<HHHH", payload)
            self.limits = (cvl / 10, max(_amps(ccl), 0.0), max(_amps(dcl), 0.0), dvl / 10)
        elif frame_id == HV_STATUS:
            status, _, errors, _, protections = struct.unpack("<BHBHH", payload)
            charge = discharge = errors != 0
            for bit, (stops_charge, stops_discharge) in HV_PROTECTION_BLOCKS.items():
                if protections >> bit & 1:
                    charge = charge or stops_charge
                    discharge = discharge or stops_discharge
            self.blocks = (charge, discharge)
            self.force_charge = bool(status >> 3 & 1)
        elif frame_id == HV_FORBIDDEN:
            self.forbidden = (payload[0] == FORBIDDEN, payload[1] == FORBIDDEN)
        else:
            self.equipment[frame_id] = payload
        return "ok"

    def allowed(self) -> tuple[bool, bool]:
        """May it charge, may it discharge, by the forbidden marks and protections."""
        return (
            not (self.forbidden[0] or self.blocks[0]),
            not (self.forbidden[1] or self.blocks[1]),
        )


# -- SMA Sunny Island -----------------------------------------------------------------

F952_TIMEOUT_S = 60.0  # s without 0x355
F952 = "F952 ExtBMSTimeout"
ALARM_FIELDS = tuple(name for name in AlarmsWarnings._fields if name.startswith("alarm_"))


class SunnyIsland:
    """A Sunny Island's fault state (see the module docstring)."""

    def __init__(self) -> None:
        self.fault: str | None = None
        self.faults = 0  # times it went to fault
        self.soc_reset = False  # F952 reset its SoC to 0 %

    def on_alarms(self, frame: AlarmsWarnings) -> None:
        """A 0x35A frame: any alarm raised (01) is a fault; all cleared ends an alarm fault."""
        active = [
            name.removeprefix("alarm_")
            for name in ALARM_FIELDS
            if getattr(frame, name) == AlarmsWarningsChoice.ACTIVE
        ]
        if active and self.fault is None:
            self.fault = "BMS alarm: " + ", ".join(active)
            self.faults += 1
        elif not active and self.fault is not None and self.fault != F952:
            self.fault = None  # Autostart once the battery has cleared the alarm

    def watch(self, last_soc_frame: float | None, now: float) -> None:
        """F952 when 0x355 has been missing for 60 s (once it was seen)."""
        if self.fault == F952 or last_soc_frame is None:
            return
        if now - last_soc_frame > F952_TIMEOUT_S:
            self.fault = F952
            self.faults += 1
            self.soc_reset = True

    def restart(self) -> None:
        """The user restarts it: every fault is confirmed; a pending alarm comes back with
        the battery's next 0x35A."""
        self.fault = None
        self.soc_reset = False
