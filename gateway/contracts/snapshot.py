"""What the gateway knows about the battery at one instant.

The battery model (gateway/sources/moat_nodes/model.py) builds a BatterySnapshot from the
node frames and the
topology; the pure logic (SoC, charge strategy, balancing and relay policy) reads only this.
Units: volts, amperes (positive = charging), degrees Celsius, ampere-hours, seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from operator import attrgetter


class ProtectionKind(StrEnum):
    """Protection kinds reported by the nodes, in the bit order of NodeState's flags.

    The names are the DBC signal names without their level prefix (Fault/Warn/Info).
    """

    CELL_OVER_VOLTAGE = "CellOverVoltage"
    CELL_UNDER_VOLTAGE = "CellUnderVoltage"
    PACK_OVER_VOLTAGE = "PackOverVoltage"
    PACK_UNDER_VOLTAGE = "PackUnderVoltage"
    CHARGE_OVER_TEMP = "ChargeOverTemp"
    CHARGE_UNDER_TEMP = "ChargeUnderTemp"
    DISCHARGE_OVER_TEMP = "DischargeOverTemp"
    DISCHARGE_UNDER_TEMP = "DischargeUnderTemp"
    CHARGE_OVER_CURRENT = "ChargeOverCurrent"
    DISCHARGE_OVER_CURRENT = "DischargeOverCurrent"
    SENSOR_FAULT = "SensorFault"
    PLAUSIBILITY = "Plausibility"
    COMM_LOSS = "CommLoss"
    BALANCER_OVER_TEMP = "BalancerOverTemp"
    RELAY_FAULT = "RelayFault"
    INTERNAL = "Internal"


# Kinds that forbid charging / discharging when raised as a warning (node RSL): the
# gateway stops that direction before the node has to open its relay.
BLOCKS_CHARGE = frozenset(
    {
        ProtectionKind.CELL_OVER_VOLTAGE,
        ProtectionKind.PACK_OVER_VOLTAGE,
        ProtectionKind.CHARGE_OVER_TEMP,
        ProtectionKind.CHARGE_UNDER_TEMP,
        ProtectionKind.CHARGE_OVER_CURRENT,
    }
)
BLOCKS_DISCHARGE = frozenset(
    {
        ProtectionKind.CELL_UNDER_VOLTAGE,
        ProtectionKind.PACK_UNDER_VOLTAGE,
        ProtectionKind.DISCHARGE_OVER_TEMP,
        ProtectionKind.DISCHARGE_UNDER_TEMP,
        ProtectionKind.DISCHARGE_OVER_CURRENT,
    }
)


class Level(IntEnum):
    """Protection level, foxBMS style: MOL (info), RSL (warning), MSL (fault)."""

    INFO = 1
    WARNING = 2
    FAULT = 3


@dataclass(frozen=True, slots=True)
class CellRef:
    """A cell: node id (0..15) and cell number on that node (1..64)."""

    node: int
    cell: int

    def __str__(self) -> str:
        return f"node {self.node} cell {self.cell}"


class NodeState(IntEnum):
    """Node life cycle; values as NodeState.State in dbc/moat_bms.dbc."""

    INIT = 0
    STANDBY = 1
    ACTIVE = 2
    TRIPPED = 3
    CONFIG_ERROR = 4


@dataclass(frozen=True, slots=True)
class NodeSnapshot:
    """One node as last reported, for the relay policy and the user."""

    node: int
    present: bool  # configured node with fresh NodeState and PackStatus frames
    age: float  # seconds since its last NodeState frame (inf if never seen)
    state: NodeState
    relay_closed: bool
    trip_cleared: bool  # tripped, and every fault has cleared: a reset may close it
    voltage: float  # pack voltage, V (nan if unknown)
    current: float  # A, + = charging (nan if unknown)
    faults: frozenset[ProtectionKind] = frozenset()
    warnings: frozenset[ProtectionKind] = frozenset()
    infos: frozenset[ProtectionKind] = frozenset()


@dataclass(frozen=True, slots=True)
class StringSnapshot:
    """One series string of nodes (the packs in series that share one current)."""

    index: int
    nodes: tuple[int, ...]
    # Every node of the string is present with fresh data, not tripped and its relay closed:
    # the string carries current and counts towards capacity and current limits.
    online: bool
    # A node is missing, stale or tripped: the string must not carry current.
    blocked: bool
    reason: str  # why blocked ("" when not): "node 3 missing", "node 2 tripped", ...
    voltage: float  # sum of the node pack voltages (V); nan when a node is missing
    current: float  # A, positive = charging; nan when unknown
    capacity_ah: float  # rated capacity of the string (the smallest node's)
    relay_closed: bool  # every node reports its relay closed


_ONLINE = attrgetter("online")  # a StringSnapshot's `online`


@dataclass(frozen=True, slots=True)
class BatterySnapshot:
    """The whole battery as the strategy sees it. NaN marks an unknown value."""

    # Seconds: a monotonic clock that starts at Unix time in production (service.
    # MonotonicClock), simulated seconds in the simulator. The clock of all pure logic; logic
    # still clamps the dt it derives (a suspended host, a saved time from before a restart).
    time: float
    # True when at least one string has fresh data from every one of its nodes (its relay
    # may still be open: the relay policy needs valid data to close it). False means: stop
    # charging and discharging now (stale data means stop, not "last value").
    valid: bool
    data_age: float  # seconds since the oldest data the decision rests on (inf if none)
    cells_in_series: int  # cells per string, from the topology
    # System voltage (V): mean of the online strings, or of the strings with fresh data when
    # none is online (relays open).
    voltage: float
    current: float  # system current (A, + = charging): sum over online strings
    # Extremes over every node with fresh data (online or not): the worst of its
    # CellExtremes and of its fresh CellVoltages.
    min_cell: float  # V
    max_cell: float
    min_cell_at: CellRef | None
    max_cell_at: CellRef | None
    min_temp: float  # degC
    max_temp: float
    capacity_ah: float  # rated capacity of the online strings
    strings: tuple[StringSnapshot, ...]
    # Debounced node protection flags of online (or tripped) nodes, by level.
    faults: frozenset[ProtectionKind] = frozenset()
    warnings: frozenset[ProtectionKind] = frozenset()
    infos: frozenset[ProtectionKind] = frozenset()
    # Per node: cell voltages (V, NaN where unknown) for the balancing policy, and the cells
    # the node reports bleeding (bit k = cell k + 1).
    cell_voltages: Mapping[int, tuple[float, ...]] = field(default_factory=dict)
    bleeding: Mapping[int, int] = field(default_factory=dict)
    # Every configured node, present or not.
    nodes: Mapping[int, NodeSnapshot] = field(default_factory=dict)
    # Every member with fresh data is a commercial pack that reports no cell voltages
    # (a Pylontech CAN battery): its own BMS watches its cells, min_cell/max_cell are unknown
    # by design, and the cell-voltage rules give way to the packs' own limits
    # (docs/sources.md). Never True for a battery with a moat-bms node.
    cells_unreported: bool = False

    @property
    def strings_total(self) -> int:
        return len(self.strings)

    @property
    def strings_online(self) -> int:
        return sum(map(_ONLINE, self.strings))  # in C: the strategy asks several times a tick

    @property
    def cell_spread(self) -> float:
        """Highest minus lowest cell voltage (V); NaN when unknown."""
        return self.max_cell - self.min_cell

    @property
    def online_fraction(self) -> float:
        """Share of parallel strings carrying current: scales the current limits."""
        return self.strings_online / self.strings_total if self.strings else 0.0

    def known(self, value: float) -> bool:
        return not math.isnan(value)
