"""What node protection flags do to the two current directions.

Faults stop both directions. Warnings stop the direction their kind threatens
(BLOCKS_CHARGE / BLOCKS_DISCHARGE in gateway/snapshot.py); infos derate it mildly. Kinds
that belong to no direction follow the table below.
"""

from __future__ import annotations

from enum import Enum

from gateway.snapshot import BLOCKS_CHARGE, BLOCKS_DISCHARGE, BatterySnapshot, Level, ProtectionKind


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


def flags(snap: BatterySnapshot) -> list[tuple[Level, ProtectionKind]]:
    """The snapshot's node flags as (level, kind), faults first, in a stable order."""
    return [
        (level, kind)
        for level, kinds in (
            (Level.FAULT, snap.faults),
            (Level.WARNING, snap.warnings),
            (Level.INFO, snap.infos),
        )
        for kind in sorted(kinds)
    ]


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
