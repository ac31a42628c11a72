"""From a report to the values an inverter is told: safe, finite, within the frame fields.

This is where "never CVL 0", unknown measurements and each inverter family's way of
honouring "stop charging" live; the frame builders only encode what comes out of here.

Rules (see docs/inverters.md):
- A limit that is not a finite number of at least MIN_VOLTAGE (voltages) or not a finite
  number (currents) is invalid. An invalid CVL stops both directions and raises
  Alarm.SYSTEM; an invalid DVL stops discharging; an invalid current limit is 0 A.
- The CVL sent is the strategy's; else the last valid one; else the present pack voltage
  rounded down to 0.1 V; else the configured fallback. It is never 0.
- Charging is stopped (CCL 0) when charge_enable is False or the CCL is 0 or invalid.
  Where the inverter does not honour CCL 0 (Quirks.stop_charge_by_cvl), the CVL is lowered
  to the present pack voltage rounded down to 0.1 V, never above the strategy's CVL.
- Where a CVL far below the pack voltage makes the inverter fault and keep charging
  (Quirks.keep_cvl_near_voltage, Deye W31), the CVL is never sent more than
  settings.cvl_margin below the pack voltage (Deye LV V1.2; issue 15 item 5); a CVL raised
  this way comes with CCL 0 and the charge-enable bit cleared, so the inverter is still
  told to stop charging.
- Where a CVL below the measured pack voltage makes the inverter discharge and ignore DCL
  (Quirks.cvl_not_below_voltage, SMA Sunny Island), the CVL is never below the pack voltage
  rounded up to 0.1 V; a CVL raised so comes with CCL 0 and charging disabled. Current
  limits are clamped to Quirks.current_max (SMA: 0..1200 A).
- Unknown measurements hold their last known value; before any is known they are None and
  the profile decides what to send (a neutral default or the protocol's "not available").
  Current is never held: unknown current is reported as 0 A. SoC is always known: the last
  value, else 50 % (neither "full" nor "empty" to an inverter that acts on SoC).
- One direction stopped is not a battery fault (issue 15, item 1): while charging or
  discharging is still allowed, an ALARM of a measured quantity (cell voltage, temperature,
  current, imbalance) goes out as a WARNING. The stop itself is CCL or DCL 0 with its
  enable bit cleared. Pylontech V1.2 reads a 0x359 protection bit as "the battery is in
  self-protection", and a Sunny Island goes to fault on any 0x35A alarm and stops
  discharging too (SMA FSS-ConnectingBat-TI-en-10). Faults of the system (stale data,
  contactor, tripped or missing nodes, internal errors) stay alarms.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from gateway.contracts.decision import Alarm, Severity

if TYPE_CHECKING:
    from gateway.outputs.inverter.report import InverterReport
    from gateway.outputs.inverter.settings import InverterSettings

# Physical plausibility bounds. They keep every value inside its frame field (0.01 V or
# 0.1 V and 0.1 A in 16 bits, mV and K in 16 bits) whatever a report contains.
MIN_VOLTAGE = 1.0  # V: no battery is charged to less; a smaller CVL/DVL is invalid
MAX_VOLTAGE = 300.0  # V
MAX_CURRENT = 3000.0  # A
MIN_TEMPERATURE = -100.0  # degC
MAX_TEMPERATURE = 300.0  # degC
MAX_CELL_VOLTAGE = 10.0  # V
MAX_CAPACITY = 60000.0  # Ah
MAX_ENERGY_WH = 0xFFFFFFFF * 100.0  # 0x378 carries u32 in 100 Wh
MAX_COUNT = 0xFFFF  # module counts travel as 16-bit numbers (0x372)
DEFAULT_SOC = 50.0  # %, before any SoC is known

# Conditions of one measured quantity: each stops one direction (or derates), not the battery.
DIRECTIONAL = frozenset(
    {
        Alarm.HIGH_CELL_VOLTAGE,
        Alarm.LOW_CELL_VOLTAGE,
        Alarm.HIGH_TEMPERATURE,
        Alarm.LOW_TEMPERATURE,
        Alarm.HIGH_CHARGE_CURRENT,
        Alarm.HIGH_DISCHARGE_CURRENT,
        Alarm.CELL_IMBALANCE,
    }
)


def direction_stops_as_warnings(
    alarms: Mapping[Alarm, Severity], charging: bool, discharging: bool
) -> dict[Alarm, Severity]:
    """`alarms` as the inverter is told them: while a direction is still allowed, an
    ALARM of a measured quantity only stopped the other one and is sent as a WARNING."""
    if not (charging or discharging):
        return dict(alarms)
    return {
        a: Severity.WARNING if a in DIRECTIONAL and s >= Severity.ALARM else s
        for a, s in alarms.items()
    }


@dataclass(frozen=True, slots=True)
class Quirks:
    """How one inverter family honours the battery's requests."""

    # The inverter may keep charging at CCL 0 (Victron Multi at 0.4-0.6 A, MPPTs with DC
    # feed-in, Deye): stop charging by lowering the CVL to the present pack voltage too.
    stop_charge_by_cvl: bool = False
    # A CVL far below the pack voltage makes the inverter fault and keep charging (Deye W31).
    keep_cvl_near_voltage: bool = False
    # Highest CVL the inverter accepts (V), None for no limit.
    cvl_max: float | None = None
    # Range of DVL the inverter accepts (V), None for any.
    dvl_window: tuple[float, float] | None = None
    # A CVL below the measured pack voltage makes the inverter discharge and ignore DCL
    # (SMA Sunny Island): the CVL is never below the pack voltage rounded up to 0.1 V.
    cvl_not_below_voltage: bool = False
    # Highest current limit the inverter accepts (A), None for no limit (SMA: 1200 A).
    current_max: float | None = None
    # Highest voltage a value may have: the low-voltage frames carry at most 327 V (0.01 V
    # in 16 bits); high-voltage families raise it (Pylontech HV: 0.1 V in 16 bits).
    voltage_max: float = MAX_VOLTAGE


class Outgoing(NamedTuple):
    """The values one frame set carries, in physical units; None = unknown (never known).

    A NamedTuple (immutable, made in C) rather than a frozen dataclass: every frame set
    makes one, and a frozen dataclass's __init__ sets its 38 fields one object.__setattr__
    at a time."""

    cvl: float
    ccl: float
    dcl: float
    dvl: float
    charge_enable: bool
    discharge_enable: bool
    force_charge: bool
    full_charge_request: bool
    soc: float
    soh: float | None
    voltage: float | None
    current: float
    temperature: float | None
    min_cell_voltage: float | None
    max_cell_voltage: float | None
    min_cell_temperature: float | None
    max_cell_temperature: float | None
    capacity_ah: float | None
    alarms: Mapping[Alarm, Severity]
    modules_online: int
    modules_blocking_charge: int
    modules_blocking_discharge: int
    modules_offline: int
    manufacturer: str
    bms_name: str
    firmware_version: int
    hardware_version: int
    min_cell_id: str = ""
    max_cell_id: str = ""
    charged_wh: float = 0.0  # energy into the battery so far, Wh
    discharged_wh: float = 0.0  # energy out of it, Wh
    cells_in_series: int = 0  # per string
    modules_in_series: int = 0  # nodes per string
    module_voltages: tuple[tuple[int, float], ...] = ()  # (node, V) of present nodes
    min_cell_number: int = 0  # position in its string, 1.., 0 unknown
    max_cell_number: int = 0
    nominal_voltage: float | None = None  # V
    cycles: int = 0  # equivalent full cycles, whole


def floor_decivolt(volts: float) -> float:
    """`volts` rounded down to 0.1 V (a hair of tolerance absorbs binary fractions)."""
    return math.floor(volts * 10 + 1e-6) / 10


def ceil_decivolt(volts: float) -> float:
    """`volts` rounded up to 0.1 V."""
    return math.ceil(volts * 10 - 1e-6) / 10


def _clamp(value: float, lo: float, hi: float) -> float:
    return min(max(value, lo), hi)


# The helpers below run a dozen times a frame set (every second): a value found finite is
# clamped by comparisons, `hi if v > hi else v` as min(v, hi) (the same value, ties
# included), without a builtin's call.


def _voltage(value: float, top: float = MAX_VOLTAGE) -> float | None:
    """A usable voltage (at most `top`), or None for NaN, infinities and values below
    MIN_VOLTAGE."""
    if not math.isfinite(value) or value < MIN_VOLTAGE:
        return None
    return top if value > top else value


def _percent(value: float) -> float | None:
    if not math.isfinite(value):
        return None
    return 0.0 if value < 0.0 else 100.0 if value > 100.0 else value


def _current(value: float) -> float:
    """A current limit: NaN, infinities and negative values are 0 A."""
    if not math.isfinite(value) or value <= 0:
        return 0.0
    return MAX_CURRENT if value > MAX_CURRENT else value


def _energy(value: float) -> float:
    """An energy total, Wh: unknown or negative is 0."""
    return min(value, MAX_ENERGY_WH) if math.isfinite(value) and value > 0 else 0.0


def _measured_current(value: float) -> float:
    """The pack current to report: unknown is 0 A, never a stale value."""
    if not math.isfinite(value):
        return 0.0
    return -MAX_CURRENT if value < -MAX_CURRENT else MAX_CURRENT if value > MAX_CURRENT else value


class Shaper:
    """Turns reports into Outgoing values for one inverter; remembers last known values.

    One instance per inverter connection: the memory is what makes an unknown measurement
    repeat its last value instead of jumping.
    """

    def __init__(
        self, quirks: Quirks, settings: InverterSettings, average_temperature: bool = False
    ) -> None:
        """`average_temperature`: the temperature sent is the mean of the lowest and the
        highest cell temperature sent, when both are known (InverterProfile's flag)."""
        self.quirks = quirks
        self.settings = settings
        self.average_temperature = average_temperature
        self._last: dict[str, float] = {}

    def _hold(self, key: str, value: float | None) -> float | None:
        """`value`, remembered under `key`; when None, the last value remembered (None if
        none). Every value given is None or finite: each passed its check above (_voltage,
        _percent, ...) or is a setting, which the settings validate finite."""
        if value is None:
            return self._last.get(key)
        self._last[key] = value
        return value

    def shape(self, report: InverterReport) -> Outgoing:
        """The values to send for `report` (see the module docstring for the rules)."""
        settings = self.settings
        limits = report.limits
        top = self.quirks.voltage_max
        voltage = _voltage(report.voltage, top)

        strategy_cvl = _voltage(limits.cvl, top)
        valid = strategy_cvl is not None
        held_cvl = self._hold("cvl", strategy_cvl)
        from_voltage = _voltage(floor_decivolt(voltage), top) if voltage is not None else None
        cvl = held_cvl or from_voltage or settings.fallback_cvl

        strategy_dvl = settings.dvl if settings.dvl is not None else _voltage(limits.dvl, top)
        dvl = self._hold("dvl", strategy_dvl) or cvl

        charge_enable = valid and limits.charge_enable
        discharge_enable = valid and strategy_dvl is not None and limits.discharge_enable
        ccl = _current(limits.ccl) if charge_enable else 0.0
        dcl = _current(limits.dcl) if discharge_enable else 0.0

        if self.quirks.stop_charge_by_cvl and ccl == 0 and from_voltage is not None:
            cvl = min(cvl, from_voltage)
        if self.quirks.keep_cvl_near_voltage and voltage is not None:
            # Issue 15 item 5: no bound above the strategy's CVL. Bounding the raise by
            # cvl_margin above it let the CVL sink 0.54-0.60 V below the pack in the demo
            # and 1.95 V in cell-overvoltage (strategy CVL more than twice the margin below
            # the pack). A raised CVL comes with CCL 0 and charging disabled instead.
            lowest = ceil_decivolt(voltage - settings.cvl_margin)
            if cvl < lowest:
                cvl = lowest
                ccl = 0.0
                charge_enable = False
        if self.quirks.cvl_not_below_voltage and voltage is not None:
            # Issue 15 item 3: at (not below) the pack voltage, with charging stopped.
            at_voltage = ceil_decivolt(voltage)
            if cvl < at_voltage:
                cvl = at_voltage
                ccl = 0.0
                charge_enable = False
        if self.quirks.cvl_max is not None:
            cvl = min(cvl, self.quirks.cvl_max)
        if self.quirks.current_max is not None:
            ccl = min(ccl, self.quirks.current_max)
            dcl = min(dcl, self.quirks.current_max)
        dvl = min(dvl, cvl)
        if self.quirks.dvl_window is not None:
            dvl = _clamp(dvl, *self.quirks.dvl_window)

        charging, discharging = charge_enable and ccl > 0, discharge_enable and dcl > 0
        alarms = direction_stops_as_warnings(report.alarms, charging, discharging)
        if not valid:
            alarms[Alarm.SYSTEM] = Severity.ALARM

        soc = self._hold("soc", _percent(report.soc))
        soh = self._hold("soh", _percent(report.soh))
        capacity = settings.capacity_ah
        if capacity is None and math.isfinite(report.capacity_ah) and report.capacity_ah >= 0:
            capacity = min(report.capacity_ah, MAX_CAPACITY)
        # The report's temperature is held even where the mean replaces it, so that it is
        # there when a cell temperature becomes unknown.
        temperature = self._temperature("temperature", report.temperature)
        min_cell_t = self._temperature("min_cell_t", report.min_cell_temperature)
        max_cell_t = self._temperature("max_cell_t", report.max_cell_temperature)
        if self.average_temperature and min_cell_t is not None and max_cell_t is not None:
            temperature = (min_cell_t + max_cell_t) / 2
        counts: tuple[int, ...] = (
            report.modules_online,
            report.modules_blocking_charge,
            report.modules_blocking_discharge,
            report.modules_offline,
            report.cells_in_series,
            report.modules_in_series,
        )
        if max(counts) > MAX_COUNT:  # never for a real battery: one test, not six a frame set
            counts = tuple([min(c, MAX_COUNT) for c in counts])
        online, blocking_charge, blocking_discharge, offline, cells, modules = counts
        return Outgoing(
            cvl=cvl,
            ccl=ccl,
            dcl=dcl,
            dvl=dvl,
            charge_enable=charge_enable,
            discharge_enable=discharge_enable,
            force_charge=charge_enable and limits.force_charge,
            full_charge_request=valid and limits.full_charge_request,
            soc=DEFAULT_SOC if soc is None else soc,
            soh=soh,
            voltage=self._hold("voltage", voltage),
            current=_measured_current(report.current),
            temperature=temperature,
            min_cell_voltage=self._cell_voltage("min_cell_voltage", report.min_cell_voltage),
            max_cell_voltage=self._cell_voltage("max_cell_voltage", report.max_cell_voltage),
            min_cell_temperature=min_cell_t,
            max_cell_temperature=max_cell_t,
            capacity_ah=self._hold("capacity_ah", capacity),
            alarms=alarms,
            modules_online=online,
            modules_blocking_charge=blocking_charge,
            modules_blocking_discharge=blocking_discharge,
            modules_offline=offline,
            manufacturer=report.manufacturer,
            bms_name=report.bms_name,
            firmware_version=report.firmware_version,
            hardware_version=report.hardware_version,
            min_cell_id=report.min_cell_id,
            max_cell_id=report.max_cell_id,
            charged_wh=_energy(report.charged_wh),
            discharged_wh=_energy(report.discharged_wh),
            cells_in_series=cells,
            modules_in_series=modules,
            module_voltages=tuple(
                [
                    (n, top if v > top else v)  # min(v, top), without a call per module
                    for n, v in report.module_voltages
                    if math.isfinite(v) and v >= 0
                ]
            ),
            min_cell_number=min(max(report.min_cell_number, 0), MAX_COUNT),
            max_cell_number=min(max(report.max_cell_number, 0), MAX_COUNT),
            nominal_voltage=_voltage(report.nominal_voltage, top),
            cycles=int(min(max(report.cycles, 0.0), MAX_COUNT))
            if math.isfinite(report.cycles)
            else 0,
        )

    def _temperature(self, key: str, value: float) -> float | None:
        if not math.isfinite(value):
            return self._hold(key, None)
        lo, hi = MIN_TEMPERATURE, MAX_TEMPERATURE
        return self._hold(key, lo if value < lo else hi if value > hi else value)

    def _cell_voltage(self, key: str, value: float) -> float | None:
        if not (math.isfinite(value) and value >= 0):
            return self._hold(key, None)
        return self._hold(key, MAX_CELL_VOLTAGE if value > MAX_CELL_VOLTAGE else value)
