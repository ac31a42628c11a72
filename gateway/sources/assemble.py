"""The topology's members (moat-bms nodes, commercial packs) made into one BatterySnapshot:
strings in series, strings in parallel, the extremes over the members with fresh data.

Each source keeps its own members' records and decides what is fresh; this module only sums
them by the topology, so a string may mix a node and a pack and every later stage reads one
snapshot whatever the packs are.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from operator import attrgetter
from typing import Protocol

from gateway.contracts.snapshot import (
    BatterySnapshot,
    CellRef,
    NodeSnapshot,
    NodeState,
    ProtectionKind,
    StringSnapshot,
)
from gateway.contracts.topology import TopologySettings

NAN = math.nan
KINDS = tuple(ProtectionKind)
# A string's or a member's snapshot values, read in C by map(): every tick sums them, over
# a string or two of a node or two each, where a list comprehension's own frame costs more
# than its items.
_VOLTAGE = attrgetter("voltage")
_CURRENT = attrgetter("current")
_RELAY_CLOSED = attrgetter("relay_closed")


# Asked six times a tick for a node (three levels, node and battery), nearly always with the
# masks of the last tick: a hit is answered by the cache in C, without a Python frame.
@functools.lru_cache(maxsize=4096)
def kinds(mask: int) -> frozenset[ProtectionKind]:
    """Flag mask (bit = ProtectionKind order) -> set of kinds."""
    return frozenset(k for bit, k in enumerate(KINDS) if mask >> bit & 1)


def mask_of(found: Iterable[ProtectionKind]) -> int:
    """Set of kinds -> flag mask (the inverse of kinds())."""
    mask = 0
    for kind in found:
        mask |= 1 << KINDS.index(kind)
    return mask


class Member(Protocol):
    """What the assembly reads of one member's record (NodeRecord, PackRecord)."""

    node: int  # its id in the topology
    min_cell: float
    max_cell: float
    min_cell_no: int
    max_cell_no: int
    min_temp: float
    max_temp: float
    min_temp_no: int
    max_temp_no: int
    faults: int  # flag masks, bit = ProtectionKind order
    warnings: int
    infos: int
    bleeding: int  # cells bleeding, bit k = cell k + 1

    def age(self, now: float) -> float: ...


def assemble(
    now: float,
    topology: TopologySettings,
    members: Mapping[int, Member],
    nodes: Mapping[int, NodeSnapshot],
    cells_of: Callable[[Member], tuple[float, ...]],
    temps_fresh: set[int],
) -> BatterySnapshot:
    """The battery from every member's record and snapshot (`nodes`, every id of the
    topology); `cells_of` gives a member's fresh cell voltages, `temps_fresh` the ids whose
    temperatures are fresh."""
    # Lists rather than generators below (every tick asks): the same values in the same
    # order, without a generator's resumption per item.
    strings = tuple(
        [string_of(i, s, nodes, topology.capacity_ah) for i, s in enumerate(topology.strings)]
    )
    with_data = [s for s in strings if not math.isnan(s.voltage)]
    online = [s for s in strings if s.online]
    fresh = [members[n] for s in with_data for n in s.nodes]

    voltage = _mean(list(map(_VOLTAGE, online or with_data)))
    current = math.fsum(map(_CURRENT, with_data)) if with_data else NAN
    lowest, highest, coolest, warmest = _extremes(fresh)
    min_cell = NAN if lowest is None else lowest.min_cell
    min_at = None if lowest is None else CellRef(lowest.node, lowest.min_cell_no)
    max_cell = NAN if highest is None else highest.max_cell
    max_at = None if highest is None else CellRef(highest.node, highest.max_cell_no)
    # One pass over the fresh members (every tick): their cells, bleeding and flags.
    cell_voltages: dict[int, tuple[float, ...]] = {}
    bleeding: dict[int, int] = {}
    faults = warnings = infos = 0
    for rec in fresh:
        cell_voltages[rec.node] = cells_of(rec)
        bleeding[rec.node] = rec.bleeding
        faults |= rec.faults
        warnings |= rec.warnings
        infos |= rec.infos
    # The worst of every fresh source: a CellVoltages frame may show a cell beyond the
    # last CellExtremes (they are sent at different times), and either must bite.
    for node, volts in cell_voltages.items():
        extremes = cell_extremes(volts)
        if extremes is None:
            continue
        low, low_index, high, high_index = extremes
        if math.isnan(max_cell) or high > max_cell:
            max_cell, max_at = high, CellRef(node, high_index + 1)
        if math.isnan(min_cell) or low < min_cell:
            min_cell, min_at = low, CellRef(node, low_index + 1)
    if temps_fresh.issuperset(cell_voltages):  # every fresh node (the keys), tested in C
        min_temp = NAN if coolest is None else coolest.min_temp
        max_temp = NAN if warmest is None else warmest.max_temp
    else:
        # A node whose cells count but whose temperatures went stale: the battery's
        # temperature is unknown (the strategy then stops what needs it), never "the
        # others' temperature" (that node may be the hot one).
        min_temp = max_temp = NAN
    return BatterySnapshot(
        time=now,
        valid=bool(with_data),
        data_age=max([rec.age(now) for rec in fresh], default=math.inf),
        cells_in_series=topology.cells_in_series,
        voltage=voltage,
        current=current,
        min_cell=min_cell,
        max_cell=max_cell,
        min_cell_at=min_at,
        max_cell_at=max_at,
        min_temp=min_temp,
        max_temp=max_temp,
        capacity_ah=topology.capacity_ah * len(online),
        strings=strings,
        faults=kinds(faults),
        warnings=kinds(warnings),
        infos=kinds(infos),
        cell_voltages=cell_voltages,
        bleeding=bleeding,
        nodes=nodes,
    )


def string_of(
    index: int, members: list[int], nodes: Mapping[int, NodeSnapshot], capacity_ah: float
) -> StringSnapshot:
    """One series string: blocked by its first missing, tripped or faulted member."""
    snaps = [nodes[n] for n in members]
    reason = ""
    for snap in snaps:
        if not snap.present:
            reason = f"node {snap.node} missing"
        elif snap.state == NodeState.TRIPPED:
            reason = f"node {snap.node} tripped"
        elif snap.state == NodeState.CONFIG_ERROR:
            reason = f"node {snap.node} has a configuration error"
        elif snap.faults:
            reason = f"node {snap.node} fault: {', '.join(sorted(snap.faults))}"
        if reason:
            break
    # No reason: every member is present, neither tripped nor misconfigured, unfaulted.
    relay_closed = all(map(_RELAY_CLOSED, snaps))
    online = not reason and relay_closed and all([s.state == NodeState.ACTIVE for s in snaps])
    all_present = not reason or all([s.present for s in snaps])
    return StringSnapshot(
        index=index,
        nodes=tuple(members),
        online=online,
        blocked=bool(reason),
        reason=reason,
        voltage=math.fsum(map(_VOLTAGE, snaps)) if all_present else NAN,
        current=_mean(list(map(_CURRENT, snaps))) if all_present else NAN,
        capacity_ah=capacity_ah,
        relay_closed=relay_closed,
    )


def cell_extremes(volts: tuple[float, ...]) -> tuple[float, int, float, int] | None:
    """(lowest, its index, highest, its index) of the known (not NaN) voltages, the first
    cell where several share a value; None when no voltage is known.

    Each snapshot asks for every node's cells: without a NaN among them (the usual case, a
    sum tells) the builtins find the extremes without a Python comparison per cell."""
    if not volts:
        return None
    if not math.isnan(sum(volts)):  # no NaN among them (NaN makes the sum NaN)
        low, high = min(volts), max(volts)
        return low, volts.index(low), high, volts.index(high)
    found: tuple[float, int, float, int] | None = None
    for index, v in enumerate(volts):
        if math.isnan(v):
            continue
        if found is None:
            found = (v, index, v, index)
            continue
        low, low_index, high, high_index = found
        if v < low:
            found = (v, index, high, high_index)
        elif v > high:
            found = (low, low_index, v, index)
    return found


def _mean(values: list[float]) -> float:
    """The mean of the known (not NaN) values; NaN when none is known."""
    # Every snapshot asks for every string: without a NaN among them (the usual case, a sum
    # tells) the values are used as they are, without a Python test per value.
    vals = values if not math.isnan(sum(values)) else [v for v in values if not math.isnan(v)]
    return math.fsum(vals) / len(vals) if vals else NAN


def _extremes(
    records: list[Member],
) -> tuple[Member | None, Member | None, Member | None, Member | None]:
    """The records with the lowest and the highest cell voltage and the lowest and the
    highest temperature (None where no record knows one; the first where several share a
    value), in one pass: every snapshot asks."""
    lowest = highest = coolest = warmest = None
    for rec in records:
        v = rec.min_cell
        if not math.isnan(v) and (lowest is None or v < lowest.min_cell):
            lowest = rec
        v = rec.max_cell
        if not math.isnan(v) and (highest is None or v > highest.max_cell):
            highest = rec
        v = rec.min_temp
        if not math.isnan(v) and (coolest is None or v < coolest.min_temp):
            coolest = rec
        v = rec.max_temp
        if not math.isnan(v) and (warmest is None or v > warmest.max_temp):
            warmest = rec
    return lowest, highest, coolest, warmest
