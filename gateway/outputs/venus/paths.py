"""The battery as the D-Bus paths of a Venus OS battery service. Pure.

`battery_items(...)` turns one BatteryView into {path: (value, text)}: every path a GX and
VRM read from a com.victronenergy.battery service, with the unit of each in `unit_of(path)`.

Documents followed (docs/venus.md cites each path):
- Venus OS D-Bus documentation, victronenergy/venus wiki pages "dbus" (the generic paths
  every service has; SI units except energy in kWh and temperature in degrees Celsius) and
  "dbus-api".
- The GX Modbus-TCP register list (victronenergy/dbus_modbustcp, attributes.csv), which gives
  the unit of every battery path the GX exports and the alarm levels (0 = no alarm,
  1 = warning, 2 = alarm).
- The paths VRM and the GX pages show for a BMS, as the most used third-party battery driver
  publishes them (mr-manuel/venus-os_dbus-serialbattery, dbushelper.py): /Voltages/Cell<n>,
  /Voltages/Sum and Diff, /System/Min/MaxVoltageCellId, /Balancing.

Unknown is invalid: a value that is not known (no fresh node data, no SoC yet) is None,
which the service sends as an empty array and "---", never as the last value. The limits
are the CAN output's: the same Decision shaped by the same rules as the victron CAN profile
(`out`, gateway/inverter/shaping.py), so MaxChargeVoltage is never 0 and "stop" is a current
limit of 0 A with AllowToCharge/AllowToDischarge 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway import __version__
from gateway.contracts.decision import Alarm, Phase, Severity
from gateway.contracts.snapshot import CellRef, ProtectionKind
from gateway.soc import SocSource

if TYPE_CHECKING:
    from gateway.contracts.topology import TopologySettings
    from gateway.outputs.inverter.shaping import Outgoing
    from gateway.outputs.seam import BatteryView
    from gateway.outputs.venus.history import HistoryState

Value = float | int | str | None  # None: invalid (unknown)
Item = tuple[Value, str]  # the value and its text (GetText)

PRODUCT_NAME = "moat-bms"
# Victron assigns product ids; none is assigned to moat-bms. 0 matches none of the per-product
# rules the GX applies to batteries (dbus-systemcalc-py delegates/dvcc.py, its quirk table).
PRODUCT_ID = 0
INVALID_TEXT = "---"  # what Venus OS's own services give as the text of an invalid value
MAX_TIME_TO_GO_S = 365 * 86400  # s: TimeToGo is capped here (it is an int32 on D-Bus)
DISCHARGING_A = 0.1  # A: below this the battery is not discharging and TimeToGo is unknown


@dataclass(frozen=True, slots=True)
class Unit:
    """How a path's value is given: its unit and, for floats, its decimals."""

    symbol: str  # "V", "A", ... ; "" for counts, flags, names
    digits: int | None = None  # decimals of a float value; None: an int or a str

    def text(self, value: Value) -> str:
        if value is None:
            return INVALID_TEXT
        if isinstance(value, float) and self.digits is not None:
            return f"{value:.{self.digits}f}{self.symbol}"
        return f"{value}{self.symbol}"


VOLT = Unit("V", 2)
CELL_VOLT = Unit("V", 3)
AMP = Unit("A", 1)
WATT = Unit("W", 0)
CELSIUS = Unit("°C", 1)
PERCENT = Unit("%", 1)
AMP_HOUR = Unit("Ah", 1)
KWH = Unit("kWh", 3)
SECONDS = Unit("s")
PLAIN = Unit("")  # counts, 0/1 flags, 0/1/2 alarm levels, names

# Alarm levels on the bus: the gateway's Severity has the same numbers.
OK, WARNING, ALARM = 0, int(Severity.WARNING), int(Severity.ALARM)

# /Alarms/<name>: the gateway alarms (the ones the CAN output reports) and the node protection
# kinds (debounced, as the nodes raise them) that make each one. A node warning is level 1,
# a node fault level 2; a gateway alarm's level is its Severity.
ALARMS: Mapping[str, tuple[frozenset[Alarm], frozenset[ProtectionKind]]] = {
    "LowVoltage": (frozenset(), frozenset({ProtectionKind.PACK_UNDER_VOLTAGE})),
    "HighVoltage": (frozenset(), frozenset({ProtectionKind.PACK_OVER_VOLTAGE})),
    "LowCellVoltage": (
        frozenset({Alarm.LOW_CELL_VOLTAGE}),
        frozenset({ProtectionKind.CELL_UNDER_VOLTAGE}),
    ),
    "HighCellVoltage": (
        frozenset({Alarm.HIGH_CELL_VOLTAGE}),
        frozenset({ProtectionKind.CELL_OVER_VOLTAGE}),
    ),
    "LowSoc": (frozenset(), frozenset()),  # from the force-charge request, see _alarms
    "HighChargeCurrent": (
        frozenset({Alarm.HIGH_CHARGE_CURRENT}),
        frozenset({ProtectionKind.CHARGE_OVER_CURRENT}),
    ),
    "HighDischargeCurrent": (
        frozenset({Alarm.HIGH_DISCHARGE_CURRENT}),
        frozenset({ProtectionKind.DISCHARGE_OVER_CURRENT}),
    ),
    "CellImbalance": (frozenset({Alarm.CELL_IMBALANCE}), frozenset()),
    "InternalFailure": (
        frozenset({Alarm.SYSTEM, Alarm.CONTACTOR, Alarm.NODE_TRIPPED}),
        frozenset(
            {
                ProtectionKind.SENSOR_FAULT,
                ProtectionKind.PLAUSIBILITY,
                ProtectionKind.BALANCER_OVER_TEMP,
                ProtectionKind.RELAY_FAULT,
                ProtectionKind.INTERNAL,
            }
        ),
    ),
    "HighTemperature": (
        frozenset({Alarm.HIGH_TEMPERATURE}),
        frozenset({ProtectionKind.DISCHARGE_OVER_TEMP}),
    ),
    "LowTemperature": (
        frozenset({Alarm.LOW_TEMPERATURE}),
        frozenset({ProtectionKind.DISCHARGE_UNDER_TEMP}),
    ),
    "HighChargeTemperature": (frozenset(), frozenset({ProtectionKind.CHARGE_OVER_TEMP})),
    "LowChargeTemperature": (frozenset(), frozenset({ProtectionKind.CHARGE_UNDER_TEMP})),
    "BmsCable": (
        frozenset({Alarm.BATTERY_DATA_STALE, Alarm.NODE_MISSING}),
        frozenset({ProtectionKind.COMM_LOSS}),
    ),
}

# Every path but the cells', with its unit. The order is the docs' order.
UNITS: Mapping[str, Unit] = {
    "/Mgmt/ProcessName": PLAIN,
    "/Mgmt/ProcessVersion": PLAIN,
    "/Mgmt/Connection": PLAIN,
    "/DeviceInstance": PLAIN,
    "/ProductId": PLAIN,
    "/ProductName": PLAIN,
    "/FirmwareVersion": PLAIN,
    "/Connected": PLAIN,
    "/CustomName": PLAIN,
    "/Dc/0/Voltage": VOLT,
    "/Dc/0/Current": AMP,
    "/Dc/0/Power": WATT,
    "/Dc/0/Temperature": CELSIUS,
    "/Soc": PERCENT,
    "/Soh": PERCENT,
    "/Capacity": AMP_HOUR,
    "/InstalledCapacity": AMP_HOUR,
    "/ConsumedAmphours": AMP_HOUR,
    "/TimeToGo": SECONDS,
    "/Info/MaxChargeVoltage": VOLT,
    "/Info/MaxChargeCurrent": AMP,
    "/Info/MaxDischargeCurrent": AMP,
    "/Info/BatteryLowVoltage": VOLT,
    "/Info/ChargeRequest": PLAIN,
    "/Io/AllowToCharge": PLAIN,
    "/Io/AllowToDischarge": PLAIN,
    "/Io/AllowToBalance": PLAIN,
    "/System/MinCellVoltage": CELL_VOLT,
    "/System/MaxCellVoltage": CELL_VOLT,
    "/System/MinVoltageCellId": PLAIN,
    "/System/MaxVoltageCellId": PLAIN,
    "/System/MinCellTemperature": CELSIUS,
    "/System/MaxCellTemperature": CELSIUS,
    "/System/NrOfCellsPerBattery": PLAIN,
    "/System/NrOfModulesOnline": PLAIN,
    "/System/NrOfModulesOffline": PLAIN,
    "/System/NrOfModulesBlockingCharge": PLAIN,
    "/System/NrOfModulesBlockingDischarge": PLAIN,
    "/Balancing": PLAIN,
    "/Voltages/Sum": VOLT,
    "/Voltages/Diff": CELL_VOLT,
    **{f"/Alarms/{name}": PLAIN for name in ALARMS},
    "/History/DeepestDischarge": AMP_HOUR,
    "/History/MinimumCellVoltage": CELL_VOLT,
    "/History/MaximumCellVoltage": CELL_VOLT,
    "/History/ChargeCycles": PLAIN,
    "/History/ChargedEnergy": KWH,
    "/History/DischargedEnergy": KWH,
}
CELL_PREFIX = "/Voltages/Cell"  # /Voltages/Cell1 .. /Voltages/Cell<n>: CELL_VOLT
WRITABLE = frozenset({"/CustomName"})


def unit_of(path: str) -> Unit:
    """The unit of a path (KeyError for a path the service does not have)."""
    if path.startswith(CELL_PREFIX) and path[len(CELL_PREFIX) :].isdigit():
        return CELL_VOLT
    return UNITS[path]


@dataclass(frozen=True, slots=True)
class Identity:
    """What the service says of itself; fixed while it is registered."""

    device_instance: int
    custom_name: str
    connection: str  # /Mgmt/Connection: how the service reaches the battery


def cells(topology: TopologySettings) -> Iterator[tuple[int, int]]:
    """(node, cell) in /Voltages/Cell<n> order: node by node as the strings list them, each
    node's cells from 1. /Voltages/Cell<n> is the n-th of these."""
    for string in topology.strings:
        for node in string:
            for cell in range(1, topology.cells_of(node) + 1):
                yield node, cell


def cell_id(ref: CellRef | None) -> str | None:
    """A cell's name for /System/Min/MaxVoltageCellId: N<node>C<cell> (N0C5)."""
    return None if ref is None else f"N{ref.node}C{ref.cell}"


def installed_ah(topology: TopologySettings, override: float | None) -> float:
    """The battery's rated capacity, Ah: the configured one, else every string's."""
    return override if override is not None else topology.capacity_ah * len(topology.strings)


def charge_ah(view: BatteryView, installed: float) -> tuple[float | None, float | None]:
    """(remaining, consumed) Ah: the SoC sent (SocState.for_inverter) of the usable capacity
    (rated x learned health),
    and what is missing to full as a negative number (Venus OS's sign). None before any SoC."""
    soc = view.soc
    if soc.source == SocSource.NONE:
        return None, None
    usable = installed * soc.health
    remaining = usable * soc.for_inverter / 100
    return remaining, remaining - usable


def _round(value: float | None, digits: int) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


def _alarms(view: BatteryView, out: Outgoing) -> dict[str, int]:
    snap = view.snapshot
    levels: dict[str, int] = {}
    for name, (alarms, kinds) in ALARMS.items():
        level = max((int(out.alarms.get(a, OK)) for a in alarms), default=OK)
        if kinds & snap.faults:
            level = ALARM
        elif kinds & snap.warnings:
            level = max(level, WARNING)
        levels[f"/Alarms/{name}"] = level
    # The strategy asks for a charge when the SoC is very low (force charge): the GX's
    # "low state of charge" warning.
    levels["/Alarms/LowSoc"] = WARNING if out.force_charge else OK
    return levels


def _cell_values(view: BatteryView, topology: TopologySettings) -> dict[str, Value]:
    voltages = view.snapshot.cell_voltages
    values: dict[str, Value] = {}
    for n, (node, cell) in enumerate(cells(topology), start=1):
        node_cells = voltages.get(node, ())
        v = node_cells[cell - 1] if cell <= len(node_cells) else math.nan
        values[f"{CELL_PREFIX}{n}"] = _round(v, CELL_VOLT.digits or 0)
    return values


def _string_sum(view: BatteryView, topology: TopologySettings) -> float | None:
    """Sum of the cell voltages of a string (the mean over the strings whose every cell is
    known: parallel strings share one voltage)."""
    voltages = view.snapshot.cell_voltages
    sums = []
    for string in topology.strings:
        values = [v for node in string for v in voltages.get(node, ())]
        expected = sum(topology.cells_of(node) for node in string)
        if len(values) == expected and all(math.isfinite(v) for v in values):
            sums.append(sum(values))
    return sum(sums) / len(sums) if sums else None


def battery_items(
    view: BatteryView,
    out: Outgoing,
    topology: TopologySettings,
    installed: float,
    history: HistoryState,
    identity: Identity,
) -> dict[str, Item]:
    """Every path's value and text for one view (see the module docstring)."""
    snap, soc = view.snapshot, view.soc
    remaining, consumed = charge_ah(view, installed)
    current = snap.current
    time_to_go = None
    if remaining is not None and math.isfinite(current) and current < -DISCHARGING_A:
        # An int32 on D-Bus: a huge battery at a trickle would not fit (the service would
        # then fail its GetValue), and a year is as good as "very long" on a GX.
        time_to_go = min(round(remaining / -current * 3600), MAX_TIME_TO_GO_S)
    values: dict[str, Value] = {
        "/Mgmt/ProcessName": PRODUCT_NAME,
        "/Mgmt/ProcessVersion": __version__,
        "/Mgmt/Connection": identity.connection,
        "/DeviceInstance": identity.device_instance,
        "/ProductId": PRODUCT_ID,
        "/ProductName": PRODUCT_NAME,
        "/FirmwareVersion": __version__,
        # The service is there while the gateway runs: stale node data shows as invalid
        # values and a stop (0 A limits), not as a disconnected battery the GX would ignore.
        "/Connected": 1,
        "/CustomName": identity.custom_name,
        "/Dc/0/Voltage": _round(snap.voltage, 2),
        "/Dc/0/Current": _round(current, 1),
        "/Dc/0/Power": _round(snap.voltage * current, 0),
        # The highest cell temperature, as the CAN output reports the battery temperature.
        "/Dc/0/Temperature": _round(snap.max_temp, 1),
        # What the CAN output sends too: an untrusted SoC as the low end of its uncertainty.
        "/Soc": None if remaining is None else _round(soc.for_inverter, 1),
        "/Soh": _round(soc.soh, 1),
        "/Capacity": _round(remaining, 1),
        "/InstalledCapacity": _round(installed, 1),
        "/ConsumedAmphours": _round(consumed, 1),
        "/TimeToGo": time_to_go,
        "/Info/MaxChargeVoltage": round(out.cvl, 2),
        "/Info/MaxChargeCurrent": round(out.ccl, 1),
        "/Info/MaxDischargeCurrent": round(out.dcl, 1),
        "/Info/BatteryLowVoltage": round(out.dvl, 2),
        "/Info/ChargeRequest": int(out.force_charge),
        "/Io/AllowToCharge": int(out.charge_enable and out.ccl > 0),
        "/Io/AllowToDischarge": int(out.discharge_enable and out.dcl > 0),
        "/Io/AllowToBalance": int(snap.valid and view.decision.phase != Phase.STOPPED),
        "/System/MinCellVoltage": _round(snap.min_cell, 3),
        "/System/MaxCellVoltage": _round(snap.max_cell, 3),
        "/System/MinVoltageCellId": cell_id(snap.min_cell_at),
        "/System/MaxVoltageCellId": cell_id(snap.max_cell_at),
        "/System/MinCellTemperature": _round(snap.min_temp, 1),
        "/System/MaxCellTemperature": _round(snap.max_temp, 1),
        "/System/NrOfCellsPerBattery": topology.cells_in_series,
        "/System/NrOfModulesOnline": out.modules_online,
        "/System/NrOfModulesOffline": out.modules_offline,
        "/System/NrOfModulesBlockingCharge": out.modules_blocking_charge,
        "/System/NrOfModulesBlockingDischarge": out.modules_blocking_discharge,
        "/Balancing": int(any(snap.bleeding.values())),
        "/Voltages/Sum": _round(_string_sum(view, topology), 2),
        "/Voltages/Diff": _round(snap.cell_spread, 3),
        **_alarms(view, out),
        "/History/DeepestDischarge": _round(history.deepest_discharge_ah, 1),
        "/History/MinimumCellVoltage": _round(history.min_cell_v, 3),
        "/History/MaximumCellVoltage": _round(history.max_cell_v, 3),
        "/History/ChargeCycles": int(soc.cycles),
        "/History/ChargedEnergy": round(history.charged_kwh, 3),
        "/History/DischargedEnergy": round(history.discharged_kwh, 3),
        **_cell_values(view, topology),
    }
    return {path: (value, unit_of(path).text(value)) for path, value in values.items()}
