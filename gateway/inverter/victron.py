"""`victron`: Victron GX devices with the "BMS-Can" (Pylontech-compatible) battery profile.

The V1.2 set plus 0x35A (alarm/warning pairs, which Victron acts on) and 0x370-0x373
(BMS name, module counts, cell extremes) for its user interface. Quirks:
- CVL 0 is read as over-voltage and the system discharges hard: never sent (shaping.py).
- A Multi may keep charging at 0.4-0.6 A with CCL 0, and MPPTs with DC feed-in ignore CCL:
  "stop charging" also lowers the CVL to the present pack voltage rounded down to 0.1 V.
- DCL 0 makes a Multi in island mode switch off its AC output. It is sent all the same when
  discharging must stop: the alternative is the node relay opening at its hard limit, which
  also switches the Multi off and leaves it without DC. With grid present the Multi passes
  the grid through and can charge the battery again.
"""

from __future__ import annotations

from gateway.inverter import frames
from gateway.inverter.frames import Frame
from gateway.inverter.profile import InverterProfile
from gateway.inverter.pylontech import NEUTRAL_TEMPERATURE, UNKNOWN_CELL_VOLTAGE, pylon_frames
from gateway.inverter.shaping import Outgoing, Quirks


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


class VictronProfile(InverterProfile):
    """Victron VE.Can, BMS-Can profile."""

    name = "victron"
    quirks = Quirks(stop_charge_by_cvl=True)

    def encode(self, out: Outgoing) -> list[Frame]:
        pylon = pylon_frames(out, out.manufacturer)
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
