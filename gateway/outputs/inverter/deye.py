"""`deye`: Deye and its OEM brands (Sunsynk LV and similar) in "Lithium" mode, PYLON protocol.

The V1.2 set. Quirks:
- Requests of 0 A may be ignored: "stop charging" is CCL 0 and the charge-enable bit cleared
  and the CVL lowered to the present pack voltage rounded down to 0.1 V.
- A CVL far below the pack voltage raises W31 and charging continues (reported with a CVL
  of 0.1 V): the CVL is never sent more than settings.cvl_margin below the pack voltage
  (issue 15 item 5), however far below the strategy's CVL is; a CVL raised so comes with
  CCL 0 and charging disabled, and never exceeds the 60 V Deye LV models accept.
- The manufacturer name must start with "PYLON" ("PYLONDIY" is accepted, "DIYPYLON" is
  not): any other configured name is replaced by "PYLON".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.contracts.frame import Frame
from gateway.outputs.inverter.profile import InverterProfile
from gateway.outputs.inverter.pylontech import pylon_frames
from gateway.outputs.inverter.shaping import Outgoing, Quirks

if TYPE_CHECKING:
    from gateway.outputs.inverter.settings import InverterSettings

REQUIRED_PREFIX = "PYLON"
# Deye LV hybrid datasheets (SUN-xK-SG0xLP1/LP3): battery voltage range 40-60 V. Bounds a
# CVL raised towards a pack voltage that reads wrong high (item 5 below).
CVL_MAX = 60.0  # V


class DeyeProfile(InverterProfile):
    """Deye / Sunsynk low-voltage hybrid inverters."""

    name = "deye"
    average_temperature = True  # V1.2 / Deye V1.2: 0x356 average cell temperature
    quirks = Quirks(stop_charge_by_cvl=True, keep_cvl_near_voltage=True, cvl_max=CVL_MAX)

    @classmethod
    def check_settings(cls, settings: InverterSettings) -> None:
        super().check_settings(settings)
        name = settings.manufacturer_name
        if not name.startswith(REQUIRED_PREFIX):
            raise ValueError(
                f"Deye accepts only manufacturer names starting with {REQUIRED_PREFIX}, "
                f"got {name!r}"
            )

    def encode(self, out: Outgoing) -> list[Frame]:
        name = out.manufacturer
        name = name if name.startswith(REQUIRED_PREFIX) else REQUIRED_PREFIX
        return pylon_frames(out, name, force_bits=self.force_charge_bits)
