"""`sofar`: Sofar low-voltage hybrids (ME3000SP, HYD-ES/EP) with the battery type
"Automatic" or Pylontech, which read the Pylontech LV CAN V1.2 set with two frames longer.

No Sofar document was at hand. The facts are from Sleeper85/esphome-yambms
(packages/yambms/yambms_canbus.yaml, its "PYLON 1.2" set, which its users run on Sofar
HYD 3600-ES and ME3000-SP; documents/README/Supported_devices.md), which marks these bytes
as Sofar's:
- 0x355 bytes 6-7: remaining capacity (after SoC, SoH and the 0.01 % SoC of bytes 4-5), u16.
  YamBMS's comment says 1 Ah, its code sends 0.1 Ah; 1 Ah is sent here (a display value).
- 0x356 bytes 6-7: the battery's cycle count, u16 (equivalent full cycles, whole).
Both frames are therefore eight bytes long; everything else is V1.2 as `pylontech` sends it
(0x356 temperature the average cell temperature, force charge on bits 4 and 5).

Not done: "Sofar ignores zeros, send 0.1 A to stop" (one project's report, no document):
a stop is CCL 0 and the enable bit cleared, as V1.2 says. Set the inverter's own battery
limits as a backstop.
"""

from __future__ import annotations

import struct

from gateway.contracts.frame import Frame
from gateway.outputs.inverter import frames
from gateway.outputs.inverter.profile import InverterProfile
from gateway.outputs.inverter.pylontech import (
    NEUTRAL_TEMPERATURE,
    UNKNOWN_SOH,
    pylon_frames,
)
from gateway.outputs.inverter.shaping import Outgoing

SOC_ID, MEASUREMENTS_ID = 0x355, 0x356
U16 = 0xFFFF


def _u16(value: float) -> int:
    return min(max(round(value), 0), U16)


def soc_and_remaining(out: Outgoing) -> Frame:
    """0x355: V1.2's SoC, SoH, SoC 0.01 %, then the remaining capacity, 1 Ah (0 unknown)."""
    v12 = frames.battery_soc(out, UNKNOWN_SOH if out.soh is None else out.soh).data
    remaining = 0.0 if out.capacity_ah is None else out.capacity_ah * out.soc / 100
    return Frame(SOC_ID, v12[:6] + struct.pack("<H", _u16(remaining)))


def measurements_and_cycles(out: Outgoing) -> Frame:
    """0x356: V1.2's voltage, current, temperature, then the cycle count."""
    v12 = frames.battery_measurements(
        out.cvl if out.voltage is None else out.voltage,
        out.current,
        NEUTRAL_TEMPERATURE if out.temperature is None else out.temperature,
    ).data
    return Frame(MEASUREMENTS_ID, v12[:6] + struct.pack("<H", min(out.cycles, U16)))


class SofarProfile(InverterProfile):
    """Sofar LV hybrids: V1.2 with remaining capacity and cycle count."""

    name = "sofar"
    average_temperature = True  # V1.2: 0x356 average cell temperature

    def encode(self, out: Outgoing) -> list[Frame]:
        v12 = pylon_frames(out, out.manufacturer, force_bits=self.force_charge_bits)
        replaced = {SOC_ID: soc_and_remaining(out), MEASUREMENTS_ID: measurements_and_cycles(out)}
        return [replaced.get(f.id, f) for f in v12]
