"""`victron`: Victron GX devices with the "BMS-Can" (Pylontech-compatible) battery profile.

The V1.2 set plus 0x35A (alarm/warning pairs, which Victron acts on) and 0x370-0x373
(BMS name, module counts, cell extremes) for its user interface. Quirks:
- The battery must not look like a Pylontech: a GX recognises one by the 'PN' marker in
  0x359 and then applies its own Pylontech rules (dbus-systemcalc-py, delegates/dvcc.py,
  _pylontech_quirk): it replaces any CVL of 55 V or less by its own (about 52.5 V, i.e.
  3.5 V per cell for 15 cells) and, for 24 V batteries, charges at capacity/4 even when
  CCL is 0. So 0x359 goes without the marker and the manufacturer name is never "PYLON...".
- CVL 0 is read as over-voltage and the system discharges hard: never sent (shaping.py).
- A Multi may keep charging at 0.4-0.6 A with CCL 0, and MPPTs with DC feed-in ignore CCL:
  "stop charging" also lowers the CVL to the present pack voltage rounded down to 0.1 V.
- DCL 0 makes a Multi in island mode switch off its AC output. It is sent all the same when
  discharging must stop: the alternative is the node relay opening at its hard limit, which
  also switches the Multi off and leaves it without DC. With grid present the Multi passes
  the grid through and can charge the battery again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.contracts.frame import Frame
from gateway.outputs.inverter import frames
from gateway.outputs.inverter.profile import InverterProfile
from gateway.outputs.inverter.pylontech import (
    NEUTRAL_TEMPERATURE,
    UNKNOWN_CELL_VOLTAGE,
    pylon_frames,
)
from gateway.outputs.inverter.shaping import Outgoing, Quirks

if TYPE_CHECKING:
    from gateway.outputs.inverter.settings import InverterSettings

FORBIDDEN_PREFIX = "PYLON"


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


class VictronProfile(InverterProfile):
    """Victron VE.Can, BMS-Can profile."""

    name = "victron"
    quirks = Quirks(stop_charge_by_cvl=True)
    default_manufacturer = "moat-bms"

    @classmethod
    def check_settings(cls, settings: InverterSettings) -> None:
        super().check_settings(settings)
        name = settings.manufacturer_name
        if name.upper().startswith(FORBIDDEN_PREFIX):
            raise ValueError(
                f"a Victron GX treats a battery named {name!r} as a Pylontech and overrides "
                "its charge voltage; choose another manufacturer name"
            )

    def encode(self, out: Outgoing) -> list[Frame]:
        name = out.manufacturer
        if name.upper().startswith(FORBIDDEN_PREFIX):
            name = self.default_manufacturer
        pylon = pylon_frames(out, name, pylon_marker=False, force_bits=self.force_charge_bits)
        return [
            *pylon[:4],  # 0x351 0x355 0x356 0x359
            frames.alarms_warnings(out),
            *pylon[4:],  # 0x35C 0x35E
            *frames.bms_name(out.bms_name),
            frames.module_counts(out),
            frames.cell_extremes(
                _or(out.min_cell_voltage, UNKNOWN_CELL_VOLTAGE),
                _or(out.max_cell_voltage, UNKNOWN_CELL_VOLTAGE),
                _or(out.min_cell_temperature, NEUTRAL_TEMPERATURE),
                _or(out.max_cell_temperature, NEUTRAL_TEMPERATURE),
            ),
        ]
