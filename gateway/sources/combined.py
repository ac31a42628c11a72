"""One battery source made of moat-bms nodes and commercial packs placed in the same topology.

The core sees one BatterySource: frames of the battery bus go to the nodes, pack readings (from
the runtime's pack tasks) to the packs, and the snapshot sums both kinds by the topology
(gateway/sources/assemble.py), so a string may mix a node and a JBD pack. A system of nodes
only does not use this class: the core keeps MoatNodes alone, frame for frame as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import cast

from gateway.contracts.decision import Decision
from gateway.contracts.frame import Frame
from gateway.contracts.snapshot import BatterySnapshot, NodeSnapshot
from gateway.contracts.topology import TopologySettings
from gateway.sources.assemble import Member, assemble
from gateway.sources.moat_nodes.model import NodeRecord
from gateway.sources.moat_nodes.source import MoatNodes
from gateway.sources.packs.reading import PackError, PackReading
from gateway.sources.packs.source import CommercialPacks, PackRecord, PackSwitch


@dataclass(frozen=True, slots=True)
class PackBounds:
    """What the packs' own BMSes allow (Pylontech CAN 0x351)."""

    charge_voltage: float  # V: the lowest string's sum of its packs' (NaN: none bounds it)
    # A, per online string: its lowest pack's limit (they are in series); inf for a string
    # with no pack that says.
    charge_currents: tuple[float, ...]
    discharge_currents: tuple[float, ...]
    # No fresh member reports cell voltages: the packs' BMSes watch the cells, the gateway
    # has no cell extremes, and the charge voltage is theirs.
    cells_unreported: bool

    def bound(self, total: float, currents: tuple[float, ...]) -> float:
        """A current limit `total` for the whole battery (shared equally by the online
        strings, as the strategy shares it) bounded string by string."""
        if not currents:
            return total
        share = total / len(currents)
        if all(c >= share for c in currents):
            return total  # no string bounds it (and no rounding of the sum)
        return math.fsum(min(share, c) for c in currents)


class CombinedSource:
    """Nodes on the battery bus and commercial packs, as one BatterySource."""

    name = "moat-bms nodes and commercial packs"

    def __init__(self, topology: TopologySettings, nodes: MoatNodes, packs: CommercialPacks):
        self.topology = topology
        self.nodes = nodes
        self.packs = packs
        self.model = nodes.model

    def on_frame(self, frame: Frame, now: float) -> bool:
        return self.nodes.on_frame(frame, now)

    def on_reading(self, pack: int, result: PackReading | PackError, now: float) -> bool:
        return self.packs.on_reading(pack, result, now)

    def snapshot(self, now: float) -> BatterySnapshot:
        model, packs = self.nodes.model, self.packs
        snaps: dict[int, NodeSnapshot] = {}
        members: dict[int, Member] = {}
        # In the topology's order, as the node model lists its nodes.
        for n in self.topology.nodes:
            node = model.nodes.get(n)
            if node is not None:
                snaps[n], members[n] = model.node_snapshot(node, now), node
            else:
                pack = packs.packs[n]
                snaps[n], members[n] = packs.node_snapshot(pack, now), pack

        def cells_of(rec: Member) -> tuple[float, ...]:
            if isinstance(rec, PackRecord):
                return packs.fresh_cells(rec, now)
            return model.fresh_cells(cast(NodeRecord, rec), now)

        snap = assemble(
            now,
            self.topology,
            members,
            snaps,
            cells_of,
            model.temps_fresh(now) | packs.temps_fresh(now),
        )
        fresh = [members[n] for s in snap.strings if not math.isnan(s.voltage) for n in s.nodes]
        if fresh and all(isinstance(rec, PackRecord) and rec.cellless for rec in fresh):
            snap = replace(snap, cells_unreported=True)
        return snap

    def bounds(self, snap: BatterySnapshot) -> PackBounds:
        """The limits the packs' BMSes ask for, over the snapshot's strings; a string bounds
        the charge voltage only when each of its members asks for one."""
        asked = self.packs.limits(snap.time)
        charge: list[float] = []
        discharge: list[float] = []
        voltages = []
        for string in snap.strings:
            own = [asked[n] for n in string.nodes if n in asked]
            if own and len(own) == len(string.nodes):
                voltages.append(math.fsum(lim.charge_voltage for lim in own))
            if string.online:
                charge.append(min((lim.charge_current for lim in own), default=math.inf))
                discharge.append(min((lim.discharge_current for lim in own), default=math.inf))
        return PackBounds(
            charge_voltage=min(voltages) if voltages else math.nan,
            charge_currents=tuple(charge),
            discharge_currents=tuple(discharge),
            cells_unreported=snap.cells_unreported,
        )

    def packs_soc(self, snap: BatterySnapshot) -> float | None:
        """The SoC the packs' BMSes report for the battery (%): per online string its lowest
        pack's (in series the first empty ends it), the mean over the strings (they share
        the current by capacity, equal by the topology); None unless every member of every
        online string is a pack that reports one."""
        per_string = []
        for string in snap.strings:
            if not string.online:
                continue
            socs = []
            for n in string.nodes:
                rec = self.packs.packs.get(n)
                reading = rec.reading if rec is not None else None
                if reading is None or reading.soc is None:
                    return None
                socs.append(reading.soc)
            per_string.append(min(socs))
        if not per_string:
            return None
        return min(max(math.fsum(per_string) / len(per_string), 0.0), 100.0)

    def problems(self) -> list[str]:
        return self.nodes.problems() + self.packs.problems()

    def commands(self, decision: Decision, now: float) -> list[Frame]:
        return self.nodes.commands(decision, now)

    def pack_commands(self, decision: Decision, now: float) -> list[PackSwitch]:
        return self.packs.pack_commands(decision, now)

    def saved(self) -> dict[str, object]:
        return self.nodes.saved()

    def restore(self, data: object, skip: int) -> None:
        self.nodes.restore(data, skip)

    def stopping(self) -> Frame | None:
        return self.nodes.stopping()
