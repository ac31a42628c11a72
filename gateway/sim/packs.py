"""Commercial packs in the simulator: a battery with its own BMS on a simulated pack of the
physics, and the gateway's side that reads it as the runtime would.

A `SimPack` is one such battery: `step(t)` lets its BMS look at its cells (protecting them by
opening its own switch) and talk on its line; `poll(now)` is the gateway's read of it (a
PackReading or a PackError, as a PackLink's read gives); `switch()` the gateway's command.
`SIM_PACKS` makes one by its `battery.packs.<id>.source`. The Pylontech CAN battery below
sends V1.2 frames on a simulated bus of its own (the DBC's codec encodes them) and the gateway
side decodes them with the same PylontechCanBattery the runtime's link uses.

The serial BMSes (jbd, jk, jk-modbus, daly) are SimSerialBms (gateway/sim/serial_packs.py):
the gateway side sends its protocol's requests to the emulator's `respond(request) -> bytes`
(gateway/sim/bms/) in process and decodes the answers with the protocol's codec
(gateway/sources/packs/), registered in SIM_PACKS under their source names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import can

from gateway.codec import pylontech_lv as codec
from gateway.contracts.chemistry import ChemistrySpec
from gateway.contracts.frame import Frame
from gateway.runtime.canport import frame_of
from gateway.sim.physics import Pack
from gateway.sim.serial_packs import CELL_FLAGS, SimSerialBms
from gateway.sources.packs.pylontech_can import PylontechCanBattery
from gateway.sources.packs.reading import PackError, PackReading
from gateway.sources.packs.settings import PackSettings

# A Pylontech BMS sends its set about once a second (V1.2).
FRAME_PERIOD_S = 1.0
# Its own protection: charge stops above the chemistry's cut-off, discharge below its
# damage margin; the charge current it allows is this C-rate of its capacity.
CHARGE_C = 0.5
DISCHARGE_C = 1.0


class SimPack(Protocol):
    """A battery with its own BMS in the simulator (see the module docstring)."""

    name: str
    relay_closed: bool  # its power path as the physics sees it

    def step(self, t: float) -> None: ...

    def poll(self, now: float) -> PackReading | PackError: ...

    def switch(self, charge: bool, discharge: bool) -> bool:
        """The gateway's command; False when this BMS takes none."""
        ...

    def close(self) -> None: ...


class SimPylontechBattery:
    """A rack battery speaking Pylontech LV CAN V1.2 on a bus of its own, and the gateway's
    reading of that bus."""

    def __init__(
        self,
        pack: Pack,
        chemistry: ChemistrySpec,
        open_bus: Callable[[str], can.BusABC],
        channel: str,
        id_offset: int = 0,
        max_age: float = 5.0,
    ) -> None:
        self.name = f"simulated pylontech-can {channel}"
        self.pack = pack
        self.chemistry = chemistry
        self.id_offset = id_offset
        self.battery_bus = open_bus(channel)
        self.gateway_bus = open_bus(channel)
        self.decoder = PylontechCanBattery(id_offset, max_age)
        self.relay_closed = True
        self.charge_on = self.discharge_on = True
        self.protection: set[str] = set()
        # Where its BMS stops charging / discharging (a scenario may set its own).
        self.charge_stop_v = chemistry.charge_target_v
        self.discharge_stop_v = chemistry.empty_cell_v
        self.keepalives = 0  # 0x305 frames the battery heard from the gateway
        self.silent = False  # a scenario cuts its cable
        self._next_frames = 0.0

    # ------------------------------------------------------------------ the battery

    def step(self, t: float) -> None:
        """Its BMS: protect the cells, then send the frame set when it is due."""
        chem, pack = self.chemistry, self.pack
        cells = pack.cell_voltages()
        high, low = max(cells), min(cells)
        self.protection = set()
        if high >= chem.max_charge_v:
            self.protection.add("cell_ov")
        if low <= chem.hard_min_v:
            self.protection.add("cell_uv")
        self.charge_on = high < self.charge_stop_v and "cell_ov" not in self.protection
        self.discharge_on = low > self.discharge_stop_v and "cell_uv" not in self.protection
        # Its switch opens on a protection (cut off); one direction off only stops that way.
        self.relay_closed = not self.protection
        while (msg := self.battery_bus.recv(0)) is not None:
            if msg.arbitration_id == codec.FRAME_IDS["InverterKeepalive"] + self.id_offset:
                self.keepalives += 1
        if t + 1e-9 >= self._next_frames:
            self._next_frames = t + FRAME_PERIOD_S
            if not self.silent:
                for frame in self.frames():
                    self.battery_bus.send(
                        can.Message(arbitration_id=frame.id, data=frame.data, is_extended_id=False)
                    )

    def frames(self) -> list[Frame]:
        """0x351, 0x355, 0x356, 0x359, 0x35C, 0x35E and 0x373 from the pack's state."""
        chem, pack = self.chemistry, self.pack
        cells = pack.cell_voltages()
        temps = [t for t in pack.temperatures() if t is not None] or [pack.ambient_c]
        capacity = pack.capacity_ah
        soc = 100 * pack.remaining_ah / capacity if capacity > 0 else 0.0
        off = self.id_offset
        data = {
            "BatteryLimits": codec.encode_battery_limits(
                codec.BatteryLimits(
                    charge_voltage_limit=round(len(cells) * chem.charge_target_v, 1),
                    charge_current_limit=round(CHARGE_C * capacity, 1) if self.charge_on else 0.0,
                    discharge_current_limit=round(DISCHARGE_C * capacity, 1)
                    if self.discharge_on
                    else 0.0,
                    discharge_voltage_limit=round(len(cells) * chem.min_cell_v, 1),
                )
            ),
            "BatterySoc": codec.encode_battery_soc(
                codec.BatterySoc(
                    soc=round(min(max(soc, 0.0), 100.0)),
                    soh=100,
                    soc_high_res=round(min(max(soc, 0.0), 100.0), 2),
                )
            ),
            "BatteryMeasurements": codec.encode_battery_measurements(
                codec.BatteryMeasurements(
                    voltage=round(pack.voltage, 2),
                    current=round(pack.measured_current_a, 1),
                    temperature=round(sum(temps) / len(temps), 1),
                )
            ),
            "ProtectionAlarms": codec.encode_protection_alarms(
                codec.ProtectionAlarms(
                    protection_cell_over_voltage=int("cell_ov" in self.protection),
                    protection_cell_under_voltage=int("cell_uv" in self.protection),
                    protection_over_temperature=0,
                    protection_under_temperature=0,
                    protection_discharge_over_current=0,
                    protection_charge_over_current=0,
                    protection_system_error=0,
                    alarm_high_voltage=0,
                    alarm_low_voltage=0,
                    alarm_high_temperature=0,
                    alarm_low_temperature=0,
                    alarm_discharge_high_current=0,
                    alarm_charge_high_current=0,
                    alarm_internal_communication=0,
                    module_count=1,
                    marker_p=ord("P"),
                    marker_n=ord("N"),
                )
            ),
            "RequestFlags": codec.encode_request_flags(
                codec.RequestFlags(
                    full_charge_request=0,
                    force_charge_ii=0,
                    force_charge_i=0,
                    discharge_enable=int(self.discharge_on),
                    charge_enable=int(self.charge_on),
                )
            ),
            "ManufacturerName": codec.encode_manufacturer_name(
                codec.ManufacturerName(*b"PYLON   ")
            ),
            "CellExtremes": codec.encode_cell_extremes(
                codec.CellExtremes(
                    min_cell_voltage=round(min(cells), 3),
                    max_cell_voltage=round(max(cells), 3),
                    min_cell_temperature=round(min(temps) + 273.15),
                    max_cell_temperature=round(max(temps) + 273.15),
                )
            ),
        }
        return [Frame(codec.FRAME_IDS[name] + off, d) for name, d in data.items()]

    # ------------------------------------------------------------------ the gateway's side

    def poll(self, now: float) -> PackReading | PackError:
        """Read what arrived, answer with the keepalive, decode (the runtime link's read)."""
        while (msg := self.gateway_bus.recv(0)) is not None:
            self.decoder.on_frame(frame_of(msg), now)
        keepalive = self.decoder.keepalive()
        self.gateway_bus.send(
            can.Message(arbitration_id=keepalive.id, data=keepalive.data, is_extended_id=False)
        )
        try:
            return self.decoder.reading(now)
        except PackError as exc:
            return exc

    def switch(self, charge: bool, discharge: bool) -> bool:
        return False  # a Pylontech battery switches itself

    def close(self) -> None:
        self.battery_bus.shutdown()
        self.gateway_bus.shutdown()


OpenBus = Callable[[str], can.BusABC]
# (pack id, its settings, its cells in the physics, the chemistry, the simulator's bus
# factory, the run's channel tag) -> the simulated pack.
SimPackFactory = Callable[[int, PackSettings, Pack, ChemistrySpec, OpenBus, str], SimPack]


def _pylontech(
    pack_id: int,
    cfg: PackSettings,
    pack: Pack,
    chemistry: ChemistrySpec,
    open_bus: Callable[[str], can.BusABC],
    tag: str,
) -> SimPack:
    return SimPylontechBattery(
        pack, chemistry, open_bus, f"{tag}-pack{pack_id}", cfg.id_offset, cfg.timeout_s
    )


def _serial(
    pack_id: int,
    cfg: PackSettings,
    pack: Pack,
    chemistry: ChemistrySpec,
    open_bus: Callable[[str], can.BusABC],
    tag: str,
) -> SimPack:
    return SimSerialBms(cfg.source, pack, chemistry, cfg.address)


# Source name -> how the simulator makes such a pack.
SIM_PACKS: dict[str, SimPackFactory] = {
    "pylontech-can": _pylontech,
    **dict.fromkeys(CELL_FLAGS, _serial),
}
