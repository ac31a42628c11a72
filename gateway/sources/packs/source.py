"""Commercial packs (JBD, JK, Daly, a Pylontech CAN battery) as members of the topology.

Synchronous and without I/O, like the node model: the runtime polls each pack's link and hands
the result here with the core's monotonic clock (`on_reading`); this keeps one record per pack
with the time of its last good reading and makes each into a NodeSnapshot, so the strings and
every later stage see a pack as they see a node (gateway/sources/assemble.py sums them).

How a BMS's state reads as a node's (docs/sources.md, "How packs are combined"):
- "relay closed" is: the pack carries current, i.e. at least one of its switches is on and it
  has not cut off. Both switches on: ACTIVE. One switch off: still ACTIVE and closed, with a
  warning that blocks that direction (one of its alarms that does, else PACK_OVER_VOLTAGE for
  charge off -- a BMS turns charging off at the top of its pack -- and PACK_UNDER_VOLTAGE for
  discharge off), so the strategy stops that direction and the string keeps the other.
- Both switches off: TRIPPED (the BMS cut off), its alarms as faults; trip_cleared once it
  reports none. Both off because the gateway switched them off, with no alarm: STANDBY.
- Alarms while the switches are on are warnings (the BMS is about to cut off).
- A pack with no good reading for its timeout is missing: its string is blocked. A garbled or
  failed reading is never used; it only counts and names the error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.contracts.decision import Decision, RelayAction
from gateway.contracts.snapshot import (
    BLOCKS_CHARGE,
    BLOCKS_DISCHARGE,
    NodeSnapshot,
    NodeState,
    ProtectionKind,
)
from gateway.contracts.topology import TopologySettings
from gateway.sources.assemble import kinds, mask_of
from gateway.sources.packs.reading import PackError, PackLimits, PackReading

NAN = math.nan
NEVER = -math.inf
# A switch request not confirmed by the BMS's readings is repeated after this long.
SWITCH_RETRY_S = 10.0

K = ProtectionKind
OVER_TEMP = (K.CHARGE_OVER_TEMP, K.DISCHARGE_OVER_TEMP)
UNDER_TEMP = (K.CHARGE_UNDER_TEMP, K.DISCHARGE_UNDER_TEMP)
# Alarm names as the BMS documents write them ("chg overcurrent level 1", "cell block
# over-voltage", "discharging low temperature") are read as words: lower-cased, "-", "_" and
# ":" as spaces, each word through _WORDS (abbreviations, inflections and compounds to one
# spelling), so that "discharge" is never mistaken for "charge". The first rule whose words
# are all in the name gives its kinds. Measurement before condition: a temperature *sensor*
# error is a sensor fault, not an over-temperature; a difference between cells is
# plausibility. A temperature alarm that names no direction holds both; a SoC alarm is the
# pack's voltage end it stands for (full: over, empty: under).
_WORDS: dict[str, tuple[str, ...]] = {
    "chg": ("charge",),
    "charging": ("charge",),
    "dischg": ("discharge",),
    "discharging": ("discharge",),
    "volt": ("voltage",),
    "temp": ("temperature",),
    "high": ("over",),
    "low": ("under",),
    "diff": ("difference",),
    "imbalance": ("difference",),
    "mosfet": ("mos",),
    "err": ("error",),
    "overvoltage": ("over", "voltage"),
    "undervoltage": ("under", "voltage"),
    "overcurrent": ("over", "current"),
    "overtemperature": ("over", "temperature"),
}
_ALARM_WORDS: tuple[tuple[tuple[str, ...], tuple[ProtectionKind, ...]], ...] = (
    (("difference",), (K.PLAUSIBILITY,)),
    (("does", "not", "match"), (K.PLAUSIBILITY,)),  # cell count vs the BMS's setting
    (("sensor",), (K.SENSOR_FAULT,)),
    (("ntc",), (K.SENSOR_FAULT,)),
    (("balance", "wire"), (K.SENSOR_FAULT,)),  # the cell sense leads
    (("collect",), (K.SENSOR_FAULT,)),  # Daly: the front end's acquisition
    (("front", "end"), (K.SENSOR_FAULT,)),  # the chip that measures the cells
    (("detect",), (K.SENSOR_FAULT,)),
    (("current", "module"), (K.SENSOR_FAULT,)),
    (("charge", "short"), (K.CHARGE_OVER_CURRENT,)),
    (("short",), (K.DISCHARGE_OVER_CURRENT,)),
    (("discharge", "over", "current"), (K.DISCHARGE_OVER_CURRENT,)),
    (("charge", "over", "current"), (K.CHARGE_OVER_CURRENT,)),
    (("over", "current"), (K.CHARGE_OVER_CURRENT, K.DISCHARGE_OVER_CURRENT)),
    (("cell", "over", "voltage"), (K.CELL_OVER_VOLTAGE,)),
    (("cell", "under", "voltage"), (K.CELL_UNDER_VOLTAGE,)),
    (("over", "voltage"), (K.PACK_OVER_VOLTAGE,)),
    (("under", "voltage"), (K.PACK_UNDER_VOLTAGE,)),
    (("soc", "over"), (K.PACK_OVER_VOLTAGE,)),
    (("soc", "under"), (K.PACK_UNDER_VOLTAGE,)),
    (("under", "capacity"), (K.PACK_UNDER_VOLTAGE,)),
    (("discharge", "over", "temperature"), (K.DISCHARGE_OVER_TEMP,)),
    (("discharge", "under", "temperature"), (K.DISCHARGE_UNDER_TEMP,)),
    (("charge", "over", "temperature"), (K.CHARGE_OVER_TEMP,)),
    (("charge", "under", "temperature"), (K.CHARGE_UNDER_TEMP,)),
    (("over", "temperature"), OVER_TEMP),
    (("under", "temperature"), UNDER_TEMP),
    (("mos",), (K.RELAY_FAULT,)),
    (("contactor",), (K.RELAY_FAULT,)),
    (("precharge",), (K.RELAY_FAULT,)),
    (("on", "failed"), (K.RELAY_FAULT,)),  # JK-PB: discharge on failed
    (("communication",), (K.COMM_LOSS,)),
    (("disconnected",), (K.COMM_LOSS,)),  # JK-PB: its GPS module
)


def alarm_words(alarm: str) -> frozenset[str]:
    """An alarm name as the words the rules match (see _WORDS)."""
    words = alarm.lower().replace("-", " ").replace("_", " ").replace(":", " ").split()
    return frozenset(w for word in words for w in _WORDS.get(word, (word,)))


def alarm_kinds(alarms: Iterable[str]) -> frozenset[ProtectionKind]:
    """A BMS's alarm names as protection kinds; a name no rule knows is INTERNAL (it still
    counts: an alarm the gateway cannot name is not an alarm it may ignore)."""
    found: set[ProtectionKind] = set()
    for alarm in alarms:
        words = alarm_words(alarm)
        for needed, kinds_of in _ALARM_WORDS:
            if words.issuperset(needed):
                found.update(kinds_of)
                break
        else:
            found.add(K.INTERNAL)
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class PackSwitch:
    """A request to a pack's BMS: its charge and discharge switches (MOSFETs) on or off."""

    pack: int
    charge: bool
    discharge: bool
    reason: str = ""


class PackRecord:
    """Everything known about one pack, with the time its last good reading arrived (the
    attributes the assembly reads are those of a node's record)."""

    def __init__(self, pack: int, cell_count: int) -> None:
        self.node = pack
        self.cell_count = cell_count  # configured
        self.reading: PackReading | None = None
        self.t_reading = NEVER
        self.errors = 0  # failed readings since start
        self.last_error = ""
        self.t_error = NEVER
        self.min_cell = self.max_cell = NAN
        self.min_cell_no = self.max_cell_no = 0
        self.min_temp = self.max_temp = NAN
        self.min_temp_no = self.max_temp_no = 0
        self.faults = self.warnings = self.infos = 0
        self.bleeding = 0  # a BMS balances on its own: the gateway does not see it
        self.state = NodeState.INIT
        # The switches the gateway last asked for, and when (None: never asked).
        self.requested: tuple[bool, bool] | None = None
        self.t_requested = NEVER

    def age(self, now: float) -> float:
        return now - self.t_reading

    @property
    def alarms(self) -> frozenset[ProtectionKind]:
        reading = self.reading
        return alarm_kinds(reading.alarms) if reading is not None else frozenset()

    def on_reading(self, reading: PackReading, now: float) -> None:
        self.reading = reading
        self.t_reading = now
        cells = reading.cells
        if cells:
            low = min(range(len(cells)), key=cells.__getitem__)
            high = max(range(len(cells)), key=cells.__getitem__)
            self.min_cell, self.min_cell_no = cells[low], low + 1
            self.max_cell, self.max_cell_no = cells[high], high + 1
        elif reading.cell_range is not None:
            # Extremes without their cells' numbers (cell 0: somewhere in the pack).
            self.min_cell, self.max_cell = reading.cell_range
            self.min_cell_no = self.max_cell_no = 0
        else:
            self.min_cell = self.max_cell = NAN
        temps = reading.temperatures
        if temps:
            low = min(range(len(temps)), key=temps.__getitem__)
            high = max(range(len(temps)), key=temps.__getitem__)
            self.min_temp, self.min_temp_no = temps[low], low + 1
            self.max_temp, self.max_temp_no = temps[high], high + 1
        else:
            self.min_temp = self.max_temp = NAN
        self._classify(reading)

    def _classify(self, reading: PackReading) -> None:
        """State and flag levels from the switches and the alarms (module docstring)."""
        alarms = alarm_kinds(reading.alarms)
        charge = reading.charge_on is not False
        discharge = reading.discharge_on is not False
        faults: frozenset[ProtectionKind] = frozenset()
        warnings = set(alarms)
        if not charge and not discharge:
            if alarms or self.requested != (False, False):
                self.state, faults, warnings = NodeState.TRIPPED, alarms, set()
            else:
                self.state = NodeState.STANDBY
        else:
            self.state = NodeState.ACTIVE
            if not charge and not alarms & BLOCKS_CHARGE:
                warnings.add(K.PACK_OVER_VOLTAGE)
            if not discharge and not alarms & BLOCKS_DISCHARGE:
                warnings.add(K.PACK_UNDER_VOLTAGE)
        self.faults, self.warnings = mask_of(faults), mask_of(warnings)

    def on_error(self, error: PackError, now: float) -> None:
        self.errors += 1
        self.last_error = str(error)
        self.t_error = now

    @property
    def cellless(self) -> bool:
        """Its BMS reports neither cell voltages nor cell extremes (a Pylontech battery)."""
        reading = self.reading
        return reading is not None and not reading.cells and reading.cell_range is None

    def carries_current(self) -> bool:
        return self.state == NodeState.ACTIVE

    def cell_voltages(self, now: float, timeout: float) -> tuple[float, ...]:
        reading = self.reading
        if reading is None or now - self.t_reading > timeout:
            return (NAN,) * self.cell_count
        return reading.cells


class CommercialPacks:
    """Every configured commercial pack: readings in, NodeSnapshots and switch requests out."""

    name = "commercial packs"

    def __init__(
        self,
        topology: TopologySettings,
        timeouts: Mapping[int, float],
        controllable: Iterable[int] = (),
    ) -> None:
        """`timeouts`: pack id -> seconds without a good reading before it is missing;
        `controllable`: the packs whose switches the gateway may set (config `control`)."""
        self.topology = topology
        self.timeouts = dict(timeouts)
        self.controllable = frozenset(controllable)
        self.packs: dict[int, PackRecord] = {
            p: PackRecord(p, topology.cells_of(p)) for p in self.timeouts
        }

    def on_reading(self, pack: int, result: PackReading | PackError, now: float) -> bool:
        """One poll's result. True when it may change a decision at once (the pack cut off,
        an alarm came or went)."""
        rec = self.packs[pack]
        if isinstance(result, PackError):
            rec.on_error(result, now)
            return False
        before = (rec.state, rec.faults, rec.warnings)
        rec.on_reading(result, now)
        return (rec.state, rec.faults, rec.warnings) != before

    def fresh(self, rec: PackRecord, now: float) -> bool:
        return rec.reading is not None and rec.age(now) <= self.timeouts[rec.node]

    def node_snapshot(self, rec: PackRecord, now: float) -> NodeSnapshot:
        present = self.fresh(rec, now)
        reading = rec.reading
        return NodeSnapshot(
            node=rec.node,
            present=present,
            age=rec.age(now),
            state=rec.state,
            relay_closed=present and rec.carries_current(),
            trip_cleared=rec.state == NodeState.TRIPPED and not rec.alarms,
            voltage=reading.voltage if present and reading else NAN,
            current=reading.current if present and reading else NAN,
            faults=kinds(rec.faults),
            warnings=kinds(rec.warnings),
        )

    def fresh_cells(self, rec: PackRecord, now: float) -> tuple[float, ...]:
        return rec.cell_voltages(now, self.timeouts[rec.node])

    def temps_fresh(self, now: float) -> set[int]:
        return {p for p, rec in self.packs.items() if self.fresh(rec, now) and rec.min_temp_no}

    def limits(self, now: float) -> dict[int, PackLimits]:
        """The limits each fresh pack's own BMS asks for (those that say)."""
        return {
            p: rec.reading.limits
            for p, rec in self.packs.items()
            if rec.reading is not None and rec.reading.limits is not None and self.fresh(rec, now)
        }

    def problems(self) -> list[str]:
        """What packs report about themselves that contradicts the configuration."""
        out = []
        for p, rec in self.packs.items():
            reading = rec.reading
            if reading is not None and reading.cells and len(reading.cells) != rec.cell_count:
                out.append(
                    f"pack {p} reports {len(reading.cells)} cells, configured {rec.cell_count}"
                )
        return out

    def errors(self, now: float) -> list[str]:
        """Packs whose readings fail now (a recent error and no good reading since)."""
        return [
            f"pack {p}: {rec.last_error}"
            for p, rec in self.packs.items()
            if rec.t_error > rec.t_reading and now - rec.t_error <= self.timeouts[p]
        ]

    def pack_commands(self, decision: Decision, now: float) -> list[PackSwitch]:
        """Switch requests carrying out the relay policy's requests for packs: OPEN switches
        both off; CLOSE switches both on, only while the BMS reports no alarm (switching a
        pack on into a fault is the BMS's to refuse, but the gateway never asks). A request is
        sent when the readings differ from it, and repeated after SWITCH_RETRY_S."""
        out = []
        for relay in decision.relay:
            rec = self.packs.get(relay.node)
            if rec is None or relay.node not in self.controllable:
                continue
            if relay.action is RelayAction.OPEN:
                want = (False, False)
            elif relay.action is RelayAction.CLOSE and not rec.alarms and self.fresh(rec, now):
                want = (True, True)
            else:
                continue
            reading = rec.reading
            # A BMS that does not report a switch has it on (as _classify reads it).
            if (
                reading is not None
                and (
                    reading.charge_on is not False,
                    reading.discharge_on is not False,
                )
                == want
            ):
                rec.requested = want
                continue
            if rec.requested == want and 0 <= now - rec.t_requested < SWITCH_RETRY_S:
                continue
            rec.requested, rec.t_requested = want, now
            out.append(PackSwitch(relay.node, *want, relay.reason))
        return out
