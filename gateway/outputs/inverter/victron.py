"""`victron`: Victron GX devices with the "BMS-Can" (Pylontech-compatible) battery profile.

The V1.2 set plus 0x35A (alarm/warning pairs, which Victron acts on), 0x35F and 0x379
(capacity), 0x370-0x377 (BMS name, module counts, cell extremes and cell names) and 0x378
(energy) for its user interface. Quirks:
- The battery must not look like a Pylontech: a GX recognises one by the 'PN' marker in
  0x359 and then applies its Pylontech quirk (dbus-systemcalc-py, delegates/dvcc.py,
  _pylontech_quirk): a CVL in (30, 54] V is replaced by its own (3.48 V per cell plus a
  little), and for a CVL in (20, 55] V it floors the CCL at capacity/4, even when the
  battery sends CCL 0. So 0x359 goes without the marker and the manufacturer name is never
  "PYLON...".
- 0x35F (model 0, firmware version in bytes 2-3, capacity in Ah in bytes 4-5, as diyBMS v4
  victron_canbus.cpp sends it; the hardware version in 6-7) and 0x379 (installed capacity,
  1 Ah) carry the capacity the GX displays and derives its charge-current floor from.
- 0x374-0x377 name the cells with the lowest / highest voltage ("N0C3": node 0, cell 3)
  and temperature (unknown to the gateway: sent empty).
- 0x378: energy charged (bytes 0-3) and discharged (bytes 4-7) since installation, u32 in
  100 Wh each, the "History" frame a GX reads from a BYD Battery-Box (dfch/BydCanProtocol
  README; TinyBMS_Web_Gateway docs/pgn_conversions.md encodes it the same way).
- 0x35A byte 7 bits 2-3: "system status (online/offline)", 01 online, 10 offline, as
  shining-man/bsc_fw (src/Canbus.cpp) and TinyBMS_Web_Gateway (conversion_table.c) send it
  to a GX. Online while a string carries current, offline when none does (every string's
  relay open, or no node present). SMA's document reserves these bits ("not to be used by
  the external BMS", FSS-ConnectingBat-TI-en-10, External Warning 14): only this profile
  sets them.
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

from gateway.codec import pylontech_lv as codec
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
ENERGY_UNIT_WH = 100.0  # 0x378 counts in 100 Wh (0.1 kWh)
ONLINE_BYTE, ONLINE_SHIFT = 7, 2  # 0x35A byte 7 bits 2-3
ONLINE, OFFLINE = 0b01, 0b10


def energy(out: Outgoing) -> Frame:
    """0x378: charged and discharged energy, u32 each in 100 Wh, rounded down (the display
    never shows more than went through; shaping bounds both to the field)."""
    data = codec.encode_energy_counters(
        codec.EnergyCounters(
            charged_energy=(out.charged_wh // ENERGY_UNIT_WH) / 10,
            discharged_energy=(out.discharged_wh // ENERGY_UNIT_WH) / 10,
        )
    )
    return Frame(codec.FRAME_IDS["EnergyCounters"], data)


def with_online_pair(alarms: Frame, out: Outgoing) -> Frame:
    """0x35A with byte 7 bits 2-3 set to online (a string carries current) or offline."""
    data = bytearray(alarms.data)
    state = ONLINE if out.modules_online > 0 else OFFLINE
    data[ONLINE_BYTE] = data[ONLINE_BYTE] & ~(0b11 << ONLINE_SHIFT) | state << ONLINE_SHIFT
    return Frame(alarms.id, bytes(data))


def battery_info(out: Outgoing, capacity_ah: float) -> Frame:
    """0x35F the way the GX reads it (diyBMS v4 victron_canbus.cpp): model, firmware
    version, capacity (1 Ah); bytes 6-7 the hardware version. Encoded with the generated
    codec, whose bytes 2-3 field is named hardware_version."""
    data = codec.encode_battery_info(
        codec.BatteryInfo(
            battery_model=0,
            hardware_version=out.firmware_version,  # Victron: firmware version
            capacity=round(capacity_ah),
            software_version=out.hardware_version,  # bytes 6-7, not read by the GX
        )
    )
    return Frame(codec.FRAME_IDS["BatteryInfo"], data)


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
        capacity = _or(out.capacity_ah, 0.0)
        return [
            *pylon[:4],  # 0x351 0x355 0x356 0x359
            with_online_pair(frames.alarms_warnings(out), out),
            *pylon[4:],  # 0x35C 0x35E
            battery_info(out, capacity),
            *frames.bms_name(out.bms_name),
            frames.module_counts(out),
            frames.cell_extremes(
                _or(out.min_cell_voltage, UNKNOWN_CELL_VOLTAGE),
                _or(out.max_cell_voltage, UNKNOWN_CELL_VOLTAGE),
                _or(out.min_cell_temperature, NEUTRAL_TEMPERATURE),
                _or(out.max_cell_temperature, NEUTRAL_TEMPERATURE),
            ),
            *frames.cell_ids(out.min_cell_id, out.max_cell_id, "", ""),
            energy(out),
            frames.installed_capacity(capacity),
        ]
