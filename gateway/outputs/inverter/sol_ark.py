"""`sol-ark`: Sol-Ark hybrid inverters (12K/15K and the like) in "Lithium" mode, BMS protocol 00.

Follows Sol-Ark's "LV battery CAN protocol" V1.3 (a V1.2 derivative; public copy in
Sleeper85/esphome-yambms `documents/BMS LV CAN Protocol/` and HotNoob/PythonProtocolGateway
`documentation/3rdparty/protocols/`), cross-checked with the emitters of
dalathegreat/Battery-Emulator (`Software/src/inverter/SOL-ARK-LV-CAN`) and
ai-republic/bms-to-inverter (`inverter-solark-can`). Frames, every one eight bytes long:

- 0x351 CVL 0.1 V, CCL 0.1 A, DCL 0.1 A, DVL 0.1 V (V1.3 defines bytes 6-7; V1.2 does not);
- 0x355 SoC 1 %, SoH 1 % (bytes 4-7 zero: V1.3 leaves them unused);
- 0x356 pack voltage in **0.1 V** (not V1.2's 0.01 V), current 0.1 A, temperature 0.1 degC;
- 0x359 protection/alarm flags, module count, 'PN' as V1.2;
- 0x35C request flags as V1.2 (force charge on bit 4, the bit V1.3 calls "force charge II"
  and Pylontech recommends; Sol-Ark names bits 4/5 the other way round from V1.2);
- 0x35E manufacturer name;
- 0x379 installed capacity, 1 Ah.

Quirks:
- Only 8-byte frames are read: every frame is padded with zeros (`pads_to_8`), whatever
  `pad_to_8` says (a shorter frame is ignored by the inverter, so it is never sent).
- 0x356 voltage in 0.1 V: encoded here with struct (the Pylontech DBC carries 0.01 V); a
  factor-10 error here reads as a 5 V battery.
- Sol-Ark builds on Deye hardware and, like Deye, may keep charging at CCL 0: "stop
  charging" also lowers the CVL to the present pack voltage rounded down to 0.1 V.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from gateway.codec import pylontech_lv as codec
from gateway.contracts.frame import Frame
from gateway.outputs.inverter import frames
from gateway.outputs.inverter.profile import FRAME_LENGTH, InverterProfile
from gateway.outputs.inverter.pylontech import NEUTRAL_TEMPERATURE, UNKNOWN_SOH
from gateway.outputs.inverter.shaping import Outgoing, Quirks

if TYPE_CHECKING:
    from gateway.outputs.inverter.settings import InverterSettings

MEASUREMENTS_ID = 0x356
CAPACITY_ID = 0x379
UNKNOWN_CAPACITY = 0  # Ah: 0x379 before any capacity is known ("not set")
_S16 = (-0x8000, 0x7FFF)


def _s16(value: float, scale: float) -> int:
    return min(max(round(value / scale), _S16[0]), _S16[1])


def measurements(voltage: float, current: float, temperature: float) -> Frame:
    """0x356 after V1.3: s16 voltage 0.1 V, s16 current 0.1 A, s16 temperature 0.1 degC."""
    data = struct.pack("<hhh", _s16(voltage, 0.1), _s16(current, 0.1), _s16(temperature, 0.1))
    return Frame(MEASUREMENTS_ID, data)


def installed_capacity(capacity_ah: float | None) -> Frame:
    """0x379: installed capacity, whole Ah."""
    ah = UNKNOWN_CAPACITY if capacity_ah is None else min(round(capacity_ah), 0xFFFF)
    data = codec.encode_installed_capacity(codec.InstalledCapacity(installed_capacity=ah))
    return Frame(CAPACITY_ID, data)


class SolArkProfile(InverterProfile):
    """Sol-Ark LV hybrids, battery CAN protocol V1.3."""

    name = "sol-ark"
    pads_to_8 = True
    quirks = Quirks(stop_charge_by_cvl=True)

    def __init__(self, settings: InverterSettings) -> None:
        super().__init__(settings)
        self.pad_to_8 = True  # the inverter reads nothing shorter

    def encode(self, out: Outgoing) -> list[Frame]:
        return [
            frames.battery_limits(out),
            frames.battery_soc(out, UNKNOWN_SOH if out.soh is None else out.soh),
            measurements(
                out.cvl if out.voltage is None else out.voltage,
                out.current,
                NEUTRAL_TEMPERATURE if out.temperature is None else out.temperature,
            ),
            frames.protection_alarms(out),
            frames.request_flags(out),
            frames.manufacturer_name(out.manufacturer),
            installed_capacity(out.capacity_ah),
        ]

    def frame_set(self, out: Outgoing) -> list[Frame]:
        return [Frame(f.id, f.data.ljust(FRAME_LENGTH, b"\0")) for f in self.encode(out)]
