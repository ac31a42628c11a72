"""What the gateway decides: limits for the inverter, the charge phase and alarms.

The charge strategy produces a Decision; inverter profiles turn its Limits and Alarms into
frames; the service turns its node requests into protected CAN commands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum


class Phase(StrEnum):
    """Charge phase."""

    BULK = "bulk"  # charging towards the allowed maximum cell voltage
    ABSORPTION = "absorption"  # at the maximum, timer running, cells balancing
    FLOAT = "float"  # CVL ramped down to hold the battery below full
    FULL_CHARGE = "full_charge"  # periodic or user-requested charge to the SoC-reset voltage
    STOPPED = "stopped"  # no valid battery data or a system fault: nothing flows


class Alarm(StrEnum):
    """Conditions the gateway reports to the inverter and the user."""

    HIGH_CELL_VOLTAGE = "high_cell_voltage"
    LOW_CELL_VOLTAGE = "low_cell_voltage"
    HIGH_TEMPERATURE = "high_temperature"
    LOW_TEMPERATURE = "low_temperature"
    HIGH_CHARGE_CURRENT = "high_charge_current"
    HIGH_DISCHARGE_CURRENT = "high_discharge_current"
    CELL_IMBALANCE = "cell_imbalance"
    BATTERY_DATA_STALE = "battery_data_stale"  # no fresh node data: stop
    NODE_MISSING = "node_missing"  # a configured node is silent or a string is blocked
    NODE_TRIPPED = "node_tripped"  # a node opened its relay on a fault
    INVERTER_MISSING = "inverter_missing"  # no 0x305 keepalive within the timeout
    CONTACTOR = "contactor"  # relay feedback mismatch
    SYSTEM = "system"  # internal error, configuration problem


class Severity(IntEnum):
    WARNING = 1  # shown, reported as a warning; the battery keeps working (maybe derated)
    ALARM = 2  # the affected direction is stopped; reported as an alarm / protection


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits sent to the inverter. Invariants (enforced by the strategy, tested):
    cvl > 0 always (never 0: inverters read it as over-voltage), 0 <= ccl <= configured
    maximum, 0 <= dcl <= configured maximum, dvl > 0."""

    cvl: float  # charge voltage limit, V
    ccl: float  # charge current limit, A (>= 0)
    dcl: float  # discharge current limit, A (>= 0)
    dvl: float  # discharge voltage limit, V
    charge_enable: bool
    discharge_enable: bool
    force_charge: bool = False  # battery asks to be charged (SoC very low)
    full_charge_request: bool = False  # a full charge is due (recalibration, top balance)


class RelayAction(IntEnum):
    """Relay request to a node; values as in RelayCommand.Request in dbc/moat_bms.dbc."""

    NONE = 0
    OPEN = 1
    CLOSE = 2


@dataclass(frozen=True, slots=True)
class RelayRequest:
    node: int
    action: RelayAction
    reset_fault: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class BalanceRequest:
    """Cells to bleed on one node: bit k = cell k + 1; floor = stop bleeding at or below (V)."""

    node: int
    cells: int
    floor: float


@dataclass(frozen=True, slots=True)
class Decision:
    """Everything the strategy decided in one step."""

    limits: Limits
    phase: Phase
    alarms: dict[Alarm, Severity] = field(default_factory=dict)
    relay: tuple[RelayRequest, ...] = ()
    balance: tuple[BalanceRequest, ...] = ()
    notes: tuple[str, ...] = ()  # human-readable reasons for the current limits
