"""`luxpower`: Luxpower and EG4 low-voltage hybrids (LXP, EG4 6000XP/12000XP/18kPV and the
like) with the battery protocol set to the Luxpower CAN protocol.

Follows Luxpower's "battery CAN protocol" V04.2 (public copies in Sleeper85/esphome-yambms
`documents/BMS LV CAN Protocol/` and HotNoob/PythonProtocolGateway
`documentation/3rdparty/protocols/`), facts summarised in the project brief
inverter-protocols.md. It is V1.2 with these differences:

- 0x351 bytes 6-7 are the discharge voltage limit (0.1 V), as SMA and Sol-Ark define them.
- 0x355 is eight bytes: SoC (1 %), SoH (1 %), then bytes 4-5 the highest and bytes 6-7 the
  lowest cell voltage in mV (where SMA/Victron put the 0.01 % SoC). 0 mV = not known yet.
- 0x359 bytes 5-6 carry the battery capacity (u16, 1 Ah) where V1.2 has the 'PN' marker.
- 0x379: installed capacity (u16, 1 Ah).
- 0x35C force charge on bit 4 (V04 watches bit 4, not bit 3 or 5).
- The inverter sends 0x300 besides the 0x305 keepalive: byte 0 bit 0 set asks the battery to
  shut down (`inverter_request`; the core records it as an ALARM event).

0x355 and 0x359 are encoded here with struct: the Pylontech DBC has V1.2's layout there.
"""

from __future__ import annotations

import struct

from gateway.contracts.frame import Frame
from gateway.outputs.inverter import frames
from gateway.outputs.inverter.profile import InverterProfile, InverterRequest
from gateway.outputs.inverter.pylontech import NEUTRAL_TEMPERATURE, UNKNOWN_SOH
from gateway.outputs.inverter.shaping import Outgoing

SOC_ID = 0x355
PROTECTION_ID = 0x359
CAPACITY_ID = 0x379
REQUEST_ID = 0x300  # from the inverter
SHUTDOWN_BIT = 0x01  # 0x300 byte 0
U16_MAX = 0xFFFF


def _u16(value: float | None, scale: float = 1.0) -> int:
    """A non-negative field of 16 bits; unknown (None) is 0."""
    return 0 if value is None else min(max(round(value / scale), 0), U16_MAX)


def soc_and_cells(out: Outgoing) -> Frame:
    """0x355 after V04.2: SoC 1 %, SoH 1 %, highest cell mV, lowest cell mV."""
    soh = UNKNOWN_SOH if out.soh is None else out.soh
    data = struct.pack(
        "<HHHH",
        frames.soc_percent(out.soc),
        _u16(soh),
        _u16(out.max_cell_voltage, 0.001),
        _u16(out.min_cell_voltage, 0.001),
    )
    return Frame(SOC_ID, data)


def protection_and_capacity(out: Outgoing) -> Frame:
    """0x359 after V04.2: the V1.2 flag bytes 0-3 and module count (byte 4), then the
    capacity in Ah (bytes 5-6) where V1.2 has 'PN'."""
    flags = frames.protection_alarms(out, pylon_marker=False).data
    data = flags[:5] + struct.pack("<H", _u16(out.capacity_ah))
    return Frame(PROTECTION_ID, data)


def installed_capacity(out: Outgoing) -> Frame:
    """0x379: installed capacity, whole Ah (0 before it is known)."""
    return Frame(CAPACITY_ID, struct.pack("<H", _u16(out.capacity_ah)).ljust(8, b"\0"))


class LuxpowerProfile(InverterProfile):
    """Luxpower / EG4 low-voltage hybrids, battery CAN protocol V04.2."""

    name = "luxpower"

    def encode(self, out: Outgoing) -> list[Frame]:
        return [
            frames.battery_limits(out),
            soc_and_cells(out),
            frames.battery_measurements(
                out.cvl if out.voltage is None else out.voltage,
                out.current,
                NEUTRAL_TEMPERATURE if out.temperature is None else out.temperature,
            ),
            protection_and_capacity(out),
            frames.request_flags(out),
            frames.manufacturer_name(out.manufacturer),
            installed_capacity(out),
        ]

    def inverter_request(self, frame: Frame) -> InverterRequest | None:
        if frame.id != REQUEST_ID or not frame.plain or not frame.data:
            return None
        shutdown = bool(frame.data[0] & SHUTDOWN_BIT)
        text = "0x300 shutdown request" if shutdown else "0x300 no request"
        return InverterRequest(REQUEST_ID, shutdown, text)
