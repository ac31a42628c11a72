"""`pylontech`: the Pylontech LV CAN V1.2 frame set, as a real Pylontech battery sends it.

0x351 limits, 0x355 SoC/SoH, 0x356 measurements, 0x359 protection/alarm flags, 0x35C
requests (force charge in bits 4 and 5), 0x35E manufacturer name. "Stop charging" is
CCL 0 with the charge-enable bit cleared and the strategy's CVL unchanged, which is what
inverters that implement V1.2 expect; inverters known to keep charging at 0 A have their
own profile.
"""

from __future__ import annotations

from gateway.contracts.frame import Frame
from gateway.outputs.inverter import frames
from gateway.outputs.inverter.profile import InverterProfile
from gateway.outputs.inverter.shaping import Outgoing

# Sent for a measurement that has never been known: values an inverter does not act on.
NEUTRAL_TEMPERATURE = 25.0  # degC
UNKNOWN_SOH = 100.0  # %
UNKNOWN_CELL_VOLTAGE = 0.0  # V (display only)
# 0x35C force charge: bit 4 (V1.2 "force charge II", the one Pylontech recommends reading)
# and bit 5 (V1.2 "force charge I", US2000B era; the only one OpenDTU-OnBattery reads,
# Battery-Emulator sends 0xA0). Setting both reaches both camps.
FORCE_CHARGE_BITS = frozenset({4, 5})  # the default; profiles pass their own


def pylon_frames(
    out: Outgoing,
    manufacturer: str,
    pylon_marker: bool = True,
    force_bits: frozenset[int] = FORCE_CHARGE_BITS,
) -> list[Frame]:
    """The V1.2 set for `out`; an unknown pack voltage is reported as the CVL being sent.

    `pylon_marker` puts 'PN' in 0x359, which makes inverters treat the battery as a
    Pylontech one; `force_bits` are the 0x35C bits a force charge sets."""
    return [
        frames.battery_limits(out),
        frames.battery_soc(out, UNKNOWN_SOH if out.soh is None else out.soh),
        frames.battery_measurements(
            out.cvl if out.voltage is None else out.voltage,
            out.current,
            NEUTRAL_TEMPERATURE if out.temperature is None else out.temperature,
        ),
        frames.protection_alarms(out, pylon_marker),
        frames.request_flags(out, force_bits),
        frames.manufacturer_name(manufacturer),
    ]


class PylontechProfile(InverterProfile):
    """Generic Pylontech LV V1.2."""

    name = "pylontech"
    average_temperature = True  # V1.2 / Deye V1.2: 0x356 average cell temperature

    def encode(self, out: Outgoing) -> list[Frame]:
        return pylon_frames(out, out.manufacturer, force_bits=self.force_charge_bits)
