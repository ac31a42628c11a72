"""Alarms for the inverter and the user: node flags and the gateway's own checks.

Severity.ALARM when a direction is stopped because of it, Severity.WARNING when the
battery keeps working (perhaps derated). Node flags map by kind (table below); flags of a
node that has isolated its string are warnings (the string is out, nothing stops); the own
checks are stale data, missing and tripped nodes, cell imbalance (with delay and
hysteresis) and cells outside the chemistry's normal window. Temperature alarms of the
derating come in from there.
"""

from __future__ import annotations

from gateway.contracts.chemistry import ChemistrySpec
from gateway.contracts.decision import Alarm, Severity
from gateway.contracts.snapshot import BatterySnapshot, NodeState, ProtectionKind
from gateway.strategy.flags import Effect, NodeFlags, flag_effect
from gateway.strategy.settings import AlarmSettings

KIND_ALARM: dict[ProtectionKind, Alarm] = {
    ProtectionKind.CELL_OVER_VOLTAGE: Alarm.HIGH_CELL_VOLTAGE,
    ProtectionKind.PACK_OVER_VOLTAGE: Alarm.HIGH_CELL_VOLTAGE,
    ProtectionKind.CELL_UNDER_VOLTAGE: Alarm.LOW_CELL_VOLTAGE,
    ProtectionKind.PACK_UNDER_VOLTAGE: Alarm.LOW_CELL_VOLTAGE,
    ProtectionKind.CHARGE_OVER_TEMP: Alarm.HIGH_TEMPERATURE,
    ProtectionKind.DISCHARGE_OVER_TEMP: Alarm.HIGH_TEMPERATURE,
    ProtectionKind.BALANCER_OVER_TEMP: Alarm.HIGH_TEMPERATURE,
    ProtectionKind.CHARGE_UNDER_TEMP: Alarm.LOW_TEMPERATURE,
    ProtectionKind.DISCHARGE_UNDER_TEMP: Alarm.LOW_TEMPERATURE,
    ProtectionKind.CHARGE_OVER_CURRENT: Alarm.HIGH_CHARGE_CURRENT,
    ProtectionKind.DISCHARGE_OVER_CURRENT: Alarm.HIGH_DISCHARGE_CURRENT,
    ProtectionKind.SENSOR_FAULT: Alarm.SYSTEM,
    ProtectionKind.PLAUSIBILITY: Alarm.SYSTEM,
    ProtectionKind.COMM_LOSS: Alarm.SYSTEM,
    ProtectionKind.INTERNAL: Alarm.SYSTEM,
    ProtectionKind.RELAY_FAULT: Alarm.CONTACTOR,
}

# Beyond the allowed maximum by this, the charge derating has reached 0: worth a warning.
HIGH_CELL_MARGIN_V = 0.05


def raise_alarm(alarms: dict[Alarm, Severity], alarm: Alarm, severity: Severity) -> None:
    """Add an alarm, keeping the higher severity when it is already there."""
    alarms[alarm] = max(alarms.get(alarm, severity), severity)


class AlarmMonitor:
    """The alarm set of each step (the imbalance check keeps its delay and hysteresis)."""

    def __init__(self, settings: AlarmSettings, chemistry: ChemistrySpec) -> None:
        self.settings = settings
        self.chemistry = chemistry
        self._imbalance_s = 0.0
        self._imbalanced = False

    def step(
        self,
        snap: BatterySnapshot,
        stale: bool,
        allowed_max: float,
        dt: float,
        node_flags: NodeFlags | None = None,
    ) -> dict[Alarm, Severity]:
        """Alarms from node flags and own checks; `stale` is the fail-safe condition.
        `node_flags`: the snapshot's, when the caller has them already."""
        found = NodeFlags.of(snap) if node_flags is None else node_flags
        alarms: dict[Alarm, Severity] = {}
        for level, kind in found.connected:
            stops = Effect.STOP in flag_effect(level, kind)
            raise_alarm(alarms, KIND_ALARM[kind], Severity.ALARM if stops else Severity.WARNING)
        for _, kind in found.isolated:
            # An isolated node stops nothing: its string is simply out.
            raise_alarm(alarms, KIND_ALARM[kind], Severity.WARNING)

        if stale:
            raise_alarm(alarms, Alarm.BATTERY_DATA_STALE, Severity.ALARM)
        # A missing or tripped node only removes its string while others carry on.
        gone = Severity.ALARM if snap.strings_online == 0 else Severity.WARNING
        # Each cause by its name: a tripped node is present, not missing. One pass over the
        # nodes for the three (every step asks).
        missing = tripped = misconfigured = False
        for n in snap.nodes.values():
            if not n.present:
                missing = True
            elif n.state is NodeState.CONFIG_ERROR:
                misconfigured = True
            if n.state is NodeState.TRIPPED:
                tripped = True
        if missing:
            raise_alarm(alarms, Alarm.NODE_MISSING, gone)
        if tripped:
            raise_alarm(alarms, Alarm.NODE_TRIPPED, gone)
        if misconfigured:
            raise_alarm(alarms, Alarm.SYSTEM, gone)
        if stale:
            self._imbalance_s, self._imbalanced = 0.0, False
            return alarms

        cfg = self.settings
        spread = snap.cell_spread
        if self._imbalanced:
            self._imbalanced = not spread < cfg.imbalance_release_v
            self._imbalance_s = 0.0
        else:
            self._imbalance_s = self._imbalance_s + dt if spread >= cfg.imbalance_v else 0.0
            self._imbalanced = spread >= cfg.imbalance_v and self._imbalance_s >= (
                cfg.imbalance_delay_s
            )
        if self._imbalanced:
            raise_alarm(alarms, Alarm.CELL_IMBALANCE, Severity.WARNING)
        if snap.max_cell > allowed_max + HIGH_CELL_MARGIN_V:
            raise_alarm(alarms, Alarm.HIGH_CELL_VOLTAGE, Severity.WARNING)
        if snap.min_cell < self.chemistry.min_cell_v:
            raise_alarm(alarms, Alarm.LOW_CELL_VOLTAGE, Severity.WARNING)
        return alarms
