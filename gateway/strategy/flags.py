"""What node protection flags do to the two current directions.

Faults stop both directions. Warnings stop the direction their kind threatens
(BLOCKS_CHARGE / BLOCKS_DISCHARGE in gateway/contracts/snapshot.py); infos derate it mildly. Kinds
that belong to no direction follow the table below. Only the flags of nodes that carry
current count; an isolated node's flags only raise alarms.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from gateway.contracts.snapshot import (
    BLOCKS_CHARGE,
    BLOCKS_DISCHARGE,
    BatterySnapshot,
    Level,
    ProtectionKind,
)


class Effect(Enum):
    """What a node flag does to one direction."""

    NONE = "none"  # nothing
    MILD = "mild"  # x info_factor
    STRONG = "strong"  # x warning_factor
    STOP = "stop"  # 0


# Kinds that do not belong to one direction: what their warning and info flags do to
# (charge, discharge). Doubtful measurements stop charging (over-voltage and heat are the
# risks of charging blind) but only derate discharging (the node still guards its cells;
# a blackout has a cost too). A hot balancer only stops balancing.
_OTHER_WARNING: dict[ProtectionKind, tuple[Effect, Effect]] = {
    ProtectionKind.SENSOR_FAULT: (Effect.STOP, Effect.STRONG),
    ProtectionKind.PLAUSIBILITY: (Effect.STOP, Effect.STRONG),
    ProtectionKind.COMM_LOSS: (Effect.STRONG, Effect.STRONG),
    ProtectionKind.RELAY_FAULT: (Effect.STRONG, Effect.STRONG),
    ProtectionKind.INTERNAL: (Effect.STRONG, Effect.STRONG),
    ProtectionKind.BALANCER_OVER_TEMP: (Effect.NONE, Effect.NONE),
}


Flags = tuple[tuple[Level, ProtectionKind], ...]


@dataclass(frozen=True, slots=True)
class NodeFlags:
    """The node flags of one snapshot, worked out once per step and handed to every part of
    the strategy that reads them (controller, derating, alarms)."""

    # Flags of the nodes in online strings, the ones carrying current: these derate and stop.
    connected: Flags
    # A node that has isolated its string (tripped, relay open) has done its job: its string
    # counts as missing, and its flags only raise alarms, so one faulty parallel string does
    # not stop the others.
    isolated: Flags

    @classmethod
    def of(cls, snap: BatterySnapshot) -> NodeFlags:
        if snap.nodes and not any(
            [n.present and (n.faults or n.warnings or n.infos) for n in snap.nodes.values()]
        ):
            return NO_FLAGS  # the usual case: no present node raises one, so neither side has any
        return cls(flags(snap), flags(snap, connected=False))


NO_FLAGS = NodeFlags((), ())


def flags(snap: BatterySnapshot, *, connected: bool = True) -> Flags:
    """Node flags as (level, kind), faults first, in a stable order: of the nodes carrying
    current (connected) or of the isolated ones (see NodeFlags). Without per-node data, the
    battery's aggregate flags count as connected."""
    return _flags(snap, connected)


def _flags(snap: BatterySnapshot, connected: bool) -> Flags:
    if not snap.nodes:
        if not connected:
            return ()
        levels = (
            (Level.FAULT, snap.faults),
            (Level.WARNING, snap.warnings),
            (Level.INFO, snap.infos),
        )
        return tuple((level, kind) for level, kinds in levels for kind in sorted(kinds))
    online = {n for s in snap.strings if s.online for n in s.nodes}
    nodes = [node for n, node in snap.nodes.items() if (n in online) is connected and node.present]
    if not any(node.faults or node.warnings or node.infos for node in nodes):
        return ()  # the usual case
    return tuple(
        (level, kind)
        for level, attr in (
            (Level.FAULT, "faults"),
            (Level.WARNING, "warnings"),
            (Level.INFO, "infos"),
        )
        for kind in sorted(set().union(*(getattr(node, attr) for node in nodes)))
    )


def flag_effect(level: Level, kind: ProtectionKind) -> tuple[Effect, Effect]:
    """(charge, discharge) effect of a node flag."""
    if level is Level.FAULT:
        return Effect.STOP, Effect.STOP
    hit = Effect.STOP if level is Level.WARNING else Effect.MILD
    if kind in BLOCKS_CHARGE:
        return hit, Effect.NONE
    if kind in BLOCKS_DISCHARGE:
        return Effect.NONE, hit
    charge, discharge = _OTHER_WARNING[kind]
    if level is Level.INFO:
        return _milder(charge), _milder(discharge)
    return charge, discharge


def _milder(effect: Effect) -> Effect:
    return Effect.NONE if effect is Effect.NONE else Effect.MILD
