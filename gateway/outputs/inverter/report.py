"""What the gateway tells the inverter, in physical units, before any protocol quirk.

The service builds one InverterReport per output step (usually with build_report) and hands
it to the configured profile, which turns it into CAN frames. NaN marks an unknown
measurement; profiles must cope with it (see gateway/inverter/shaping.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING

from gateway.contracts.decision import Alarm, Decision, Limits, Severity
from gateway.contracts.snapshot import (
    BLOCKS_CHARGE,
    BLOCKS_DISCHARGE,
    BatterySnapshot,
    CellRef,
)
from gateway.outputs.inverter.names import BMS_NAME_LENGTH, MANUFACTURER_LENGTH, check_name

if TYPE_CHECKING:
    from gateway.outputs.inverter.settings import InverterSettings

_NODES = attrgetter("nodes")  # a StringSnapshot's nodes, read in C: every report asks
CELL_ID_LENGTH = 8  # characters of a Victron 0x374-0x377 cell name
VERSION_MAX = 0xFFFF  # versions travel as 16-bit numbers (0x35F)


@dataclass(frozen=True, slots=True, kw_only=True)
class InverterReport:
    """Everything a profile needs, in physical units. NaN marks an unknown measurement.

    Units: V, A (positive = charging), degC, %, Ah. `temperature` is the value to report as
    "the battery temperature" (build_report uses the highest cell temperature).
    """

    limits: Limits
    alarms: Mapping[Alarm, Severity]
    soc: float  # %, 0..100
    soh: float  # %, 0..100
    voltage: float  # pack voltage, V
    current: float  # A, + = charging
    temperature: float  # degC
    min_cell_voltage: float  # V
    max_cell_voltage: float  # V
    min_cell_temperature: float  # degC
    max_cell_temperature: float  # degC
    capacity_ah: float  # installed capacity, Ah
    modules_online: int = 0
    modules_blocking_charge: int = 0
    modules_blocking_discharge: int = 0
    modules_offline: int = 0
    manufacturer: str = "PYLON"
    bms_name: str = "moat-bms"
    firmware_version: int = 0  # 16-bit, e.g. major << 8 | minor
    # Names of the cells with the lowest / highest voltage ("N0C3": node 0, cell 3), up to
    # 8 ASCII characters, "" when unknown (Victron 0x374 / 0x375).
    min_cell_id: str = ""
    max_cell_id: str = ""
    hardware_version: int = 0  # 16-bit
    # Energy into / out of the battery since it was installed, Wh (Victron 0x378).
    charged_wh: float = 0.0
    discharged_wh: float = 0.0
    # The battery's build, for protocols that describe it (Pylontech HV 0x7320, 0x4260):
    # cells and modules (nodes) in series per string, each present module's voltage by
    # node id, and the lowest / highest cell's position in its string (1.., 0 unknown).
    cells_in_series: int = 0
    modules_in_series: int = 0
    module_voltages: tuple[tuple[int, float], ...] = ()
    min_cell_number: int = 0
    max_cell_number: int = 0
    nominal_voltage: float = math.nan  # V, the string's nominal voltage
    cycles: float = 0.0  # equivalent full cycles so far

    def __post_init__(self) -> None:
        # Every tick builds a report: the checks without a loop (a tuple and an iterator).
        check_name(self.manufacturer, MANUFACTURER_LENGTH, "manufacturer name")
        check_name(self.bms_name, BMS_NAME_LENGTH, "BMS name")
        if self.min_cell_id:
            check_name(self.min_cell_id, CELL_ID_LENGTH, "cell id")
        if self.max_cell_id:
            check_name(self.max_cell_id, CELL_ID_LENGTH, "cell id")
        if not 0 <= self.firmware_version <= VERSION_MAX:
            raise ValueError(f"firmware version {self.firmware_version} does not fit 16 bits")
        if not 0 <= self.hardware_version <= VERSION_MAX:
            raise ValueError(f"hardware version {self.hardware_version} does not fit 16 bits")
        counts = (
            self.modules_online,
            self.modules_blocking_charge,
            self.modules_blocking_discharge,
            self.modules_offline,
        )
        if min(counts) < 0:
            raise ValueError(f"module counts must not be negative: {counts}")


def build_report(
    snapshot: BatterySnapshot,
    decision: Decision,
    soc: float,
    soh: float,
    settings: InverterSettings,
    *,
    firmware_version: int = 0,
    hardware_version: int = 0,
    charged_wh: float = 0.0,
    discharged_wh: float = 0.0,
    nominal_voltage: float = math.nan,
    cycles: float = 0.0,
) -> InverterReport:
    """The report for one output step: the strategy's decision plus the battery's measurements.

    Modules are the configured nodes: a node is online when its string carries current,
    offline otherwise; it blocks charge (discharge) when it reports a fault or a warning that
    forbids that direction. The reported temperature is the highest cell temperature.
    """
    online = blocking_charge = blocking_discharge = offline = 0
    nodes = snapshot.nodes
    for string in snapshot.strings:
        if string.online:
            online += len(string.nodes)
        else:
            offline += len(string.nodes)
        for node_id in string.nodes:
            node = nodes.get(node_id)
            if node is None or not (node.faults or node.warnings):
                continue  # nearly every report: blocks neither direction
            if node.faults or node.warnings & BLOCKS_CHARGE:
                blocking_charge += 1
            if node.faults or node.warnings & BLOCKS_DISCHARGE:
                blocking_discharge += 1
    return InverterReport(
        limits=decision.limits,
        alarms=dict(decision.alarms),
        soc=soc,
        soh=soh,
        voltage=snapshot.voltage,
        current=snapshot.current,
        temperature=snapshot.max_temp,
        min_cell_voltage=snapshot.min_cell,
        max_cell_voltage=snapshot.max_cell,
        min_cell_temperature=snapshot.min_temp,
        max_cell_temperature=snapshot.max_temp,
        capacity_ah=snapshot.capacity_ah,
        modules_online=online,
        modules_blocking_charge=blocking_charge,
        modules_blocking_discharge=blocking_discharge,
        modules_offline=offline,
        manufacturer=settings.manufacturer_name,
        bms_name=settings.bms_name,
        firmware_version=firmware_version,
        hardware_version=hardware_version,
        min_cell_id=cell_id(snapshot.min_cell_at),
        max_cell_id=cell_id(snapshot.max_cell_at),
        charged_wh=charged_wh,
        discharged_wh=discharged_wh,
        cells_in_series=snapshot.cells_in_series,
        modules_in_series=max(map(len, map(_NODES, snapshot.strings)), default=0),
        module_voltages=tuple(
            [
                (n, node.voltage)
                for n, node in sorted(snapshot.nodes.items())
                if node.present and math.isfinite(node.voltage)
            ]
        ),
        min_cell_number=cell_number(snapshot, snapshot.min_cell_at),
        max_cell_number=cell_number(snapshot, snapshot.max_cell_at),
        nominal_voltage=nominal_voltage,
        cycles=cycles,
    )


def cell_number(snapshot: BatterySnapshot, ref: CellRef | None) -> int:
    """A cell's position in its string, counted from 1 over the nodes before it (cell
    counts from the nodes' cell voltages); 0 when unknown."""
    if ref is None:
        return 0
    for string in snapshot.strings:
        before = 0  # cells of the string's nodes before ref's
        for node in string.nodes:
            if node == ref.node:
                return before + ref.cell + 1
            before += len(snapshot.cell_voltages.get(node, ()))
    return 0


def cell_id(ref: CellRef | None) -> str:
    """A cell's name for the Victron 0x374-0x377 frames: "N<node>C<cell>", "" if unknown."""
    return "" if ref is None else f"N{ref.node}C{ref.cell}"
