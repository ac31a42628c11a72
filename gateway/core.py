"""The gateway's logic in one synchronous object: frames in, frames out, driven by time.

GatewayCore owns the battery model, the SoC estimator, the charge controller, the node
commands and the inverter output. It does no I/O and reads no clock: the asyncio service
(gateway/service.py) feeds it frames from python-can and calls `tick(now)`; the simulator
does the same with simulated time, which makes whole-system runs deterministic.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from gateway.chemistry import profile as chemistry_profile
from gateway.codec import moat_bms as battery_codec
from gateway.codec import pylontech_lv as inverter_codec
from gateway.commands import Frame, NodeCommander
from gateway.config import Settings
from gateway.counters import BusCounters, RateLimitedLog
from gateway.events import EventKind, EventLog
from gateway.history import History, Sample
from gateway.ingest import BatteryIngest
from gateway.inverter import Emitter, KeepaliveWatch, build_report, make_profile
from gateway.inverter.keepalive import KeepaliveStatus
from gateway.inverter.report import InverterReport
from gateway.limits import Alarm, BalanceRequest, Decision, Phase, RelayAction, Severity
from gateway.model import BatteryModel
from gateway.snapshot import BatterySnapshot, NodeState
from gateway.soc import SocEstimator, SocState
from gateway.strategy import ChargeController, StrategyState

log = logging.getLogger(__name__)

KEEPALIVE_ID = inverter_codec.FRAME_IDS["InverterKeepalive"]
LIMITS_ID = inverter_codec.FRAME_IDS["BatteryLimits"]
OUR_INVERTER_IDS = frozenset(inverter_codec.FRAME_IDS.values()) - {KEEPALIVE_ID}
STATE_VERSION = 1


@dataclass
class Outbox:
    """Frames to send after a tick, per bus."""

    battery: list[Frame] = field(default_factory=list)
    inverter: list[Frame] = field(default_factory=list)


class GatewayCore:
    """Everything the gateway decides, as a synchronous state machine over time."""

    def __init__(self, settings: Settings, now: float, state: dict[str, Any] | None = None):
        self.settings = settings
        topo = settings.battery.topology
        self.chemistry = chemistry_profile(settings.battery.chemistry)
        self.battery_counters = BusCounters()
        self.inverter_counters = BusCounters()
        self.model = BatteryModel(topo, settings.timing.node_timeout_s)
        self.ingest = BatteryIngest(self.model, self.battery_counters)
        self._inverter_log = RateLimitedLog(log, 60.0)
        state = state or {}
        self.controller = ChargeController(
            settings.strategy,
            self.chemistry,
            topo.cells_in_series,
            _restore(StrategyState, state.get("strategy"), "strategy"),
        )
        # The chemistry with the user's voltage overrides applied: SoC and alerts use it too.
        self.chemistry = self.controller.profile
        self.soc = SocEstimator(
            settings.soc, self.chemistry, _restore(SocState, state.get("soc"), "SoC")
        )
        self.profile = make_profile(settings.inverter.profile, settings.inverter)
        self.emitter = Emitter.for_profile(self.profile)
        self.keepalive = KeepaliveWatch.from_settings(settings.inverter, now)
        key = settings.battery.key_bytes()
        if key is None:
            log.warning("no battery.command_key: relay commands are not authenticated")
        self.commander = NodeCommander({n: topo.cells_of(n) for n in topo.nodes}, key)
        self.commander.gateway_state = battery_codec.GatewayHeartbeatGatewayState.RUNNING
        self.events = EventLog()
        self.history = History()
        self.started = now
        self.snapshot: BatterySnapshot = self.model.snapshot(now)
        self.soc_state: SocState = self.soc.state
        self.decision: Decision | None = None
        self.report: InverterReport | None = None
        # The last 0x351 actually sent: the limits after the inverter profile's shaping.
        self.sent_limits: inverter_codec.BatteryLimits | None = None
        self.ticks = 0
        # A frame with a cell beyond these makes the strategy run at once instead of at the
        # next tick: from there on the charge (discharge) derating bites, and a stop must
        # reach the inverter in milliseconds.
        self.model.alert_high_cell = self.chemistry.charge_target_v
        self.model.alert_low_cell = self.chemistry.empty_cell_v
        self._seen_nodes: dict[int, tuple[bool, NodeState]] = {}
        self._alarms: dict[Alarm, Severity] = {}
        self._keepalive_status: KeepaliveStatus | None = None
        self.events.add(
            now,
            EventKind.START,
            f"gateway started ({len(topo.nodes)} nodes, "
            f"{topo.cells_in_series} cells in series, "
            f"profile {self.profile.name})",
        )

    # ------------------------------------------------------------------ input

    def on_battery_frame(
        self,
        frame_id: int,
        data: bytes,
        now: float,
        *,
        extended: bool = False,
        remote: bool = False,
        error: bool = False,
    ) -> bool:
        """A frame from the battery bus. True when the caller should tick at once."""
        if (
            frame_id == KEEPALIVE_ID
            and not (extended or remote or error)
            and (self.settings.buses.inverter is None)
        ):
            # One shared bus: the inverter's keepalive arrives here.
            self.on_inverter_frame(frame_id, data, now)
            return False
        return self.ingest.on_frame(
            frame_id, data, now, extended=extended, remote=remote, error=error
        )

    def on_inverter_frame(
        self,
        frame_id: int,
        data: bytes,
        now: float,
        *,
        extended: bool = False,
        remote: bool = False,
        error: bool = False,
    ) -> None:
        """A frame from the inverter bus: only its 0x305 keepalive matters."""
        c = self.inverter_counters
        c.received += 1
        if error:
            c.errors += 1
            return
        if frame_id == KEEPALIVE_ID and not extended and not remote:
            self.keepalive.on_keepalive(now)
            return
        if not extended and frame_id in OUR_INVERTER_IDS:
            self._inverter_log.warning(
                ("battery", frame_id),
                now,
                "inverter bus: frame 0x%03X is one the battery sends: is another BMS on the bus?",
                frame_id,
            )
        c.count_unknown(frame_id)

    # ------------------------------------------------------------------ user actions

    def request_full_charge(self, now: float) -> None:
        self.controller.request_full_charge()
        self.events.add(now, EventKind.USER, "full charge requested")

    def set_soc(self, percent: float, now: float) -> None:
        self.soc_state = self.soc.set_soc(percent)
        self.events.add(now, EventKind.USER, f"SoC set to {percent:.1f} %")

    def request_relay(self, node: int, action: RelayAction, now: float) -> None:
        self._check_node(node)
        self.controller.request_relay(node, action)
        self.events.add(now, EventKind.USER, f"relay {action.name.lower()} requested", node)

    def request_reset(self, node: int, now: float) -> None:
        self._check_node(node)
        self.controller.request_reset(node)
        self.events.add(now, EventKind.USER, "fault reset requested", node)

    def _check_node(self, node: int) -> None:
        if node not in self.model.nodes:
            raise ValueError(f"node {node} is not configured (nodes: {sorted(self.model.nodes)})")

    # ------------------------------------------------------------------ the step

    def tick(self, now: float) -> Outbox:
        """Re-evaluate the battery and return the frames due now."""
        self.ticks += 1
        snap = self.model.snapshot(now)
        previous_phase = self.decision.phase if self.decision else None
        soc = self.soc.update(snap, previous_phase)
        decision = self.controller.step(snap, soc)
        alarms = dict(decision.alarms)
        for alarm, severity in self.keepalive.alarms(now).items():
            alarms[alarm] = max(severity, alarms.get(alarm, severity))
        if self.model.mismatches():
            alarms.setdefault(Alarm.SYSTEM, Severity.WARNING)
        decision = Decision(
            limits=decision.limits,
            phase=decision.phase,
            alarms=alarms,
            relay=decision.relay,
            balance=decision.balance,
            notes=decision.notes,
        )
        self._record_events(now, snap, decision, previous_phase)
        self.snapshot, self.soc_state, self.decision = snap, soc, decision

        out = Outbox()
        for relay in decision.relay:
            self.commander.request_relay(relay)
        for balance in decision.balance:
            self.commander.request_balance(balance)
        requested = {b.node for b in decision.balance}
        for node in self.model.nodes.keys() - requested:
            self.commander.request_balance(BalanceRequest(node, 0, 0.0))
        out.battery = self.commander.due_frames(now)

        report = build_report(snap, decision, soc.soc, soc.soh, self.settings.inverter)
        self.report = report
        if self.emitter.due(now, report):
            out.inverter = self.profile.frames(report)
            self.emitter.sent(now, report)
            for frame_id, data in out.inverter:
                if frame_id == LIMITS_ID:
                    self.sent_limits = inverter_codec.decode_battery_limits(data)
        self.history.offer(
            Sample(
                now,
                snap.voltage,
                snap.current,
                soc.soc,
                report.limits.cvl,
                report.limits.ccl,
                report.limits.dcl,
                snap.min_cell,
                snap.max_cell,
                snap.max_temp,
            )
        )
        return out

    def _record_events(
        self, now: float, snap: BatterySnapshot, decision: Decision, previous: Phase | None
    ) -> None:
        if previous is not None and decision.phase != previous:
            self.events.add(now, EventKind.PHASE, f"phase {previous} -> {decision.phase}")
        for node, ns in snap.nodes.items():
            before = self._seen_nodes.get(node)
            now_seen = (ns.present, ns.state)
            if before == now_seen:
                continue
            self._seen_nodes[node] = now_seen
            was_present = before[0] if before else None
            if was_present and not ns.present:
                self.events.add(now, EventKind.NODE_MISSING, "no fresh frames (comm loss)", node)
            elif ns.present and was_present is False:
                self.events.add(now, EventKind.NODE_BACK, "frames again", node)
            if ns.present and before is not None and before[1] != ns.state:
                if ns.state == NodeState.TRIPPED:
                    why = ", ".join(sorted(ns.faults)) or "fault"
                    self.events.add(now, EventKind.NODE_TRIPPED, f"relay opened: {why}", node)
                elif before[1] == NodeState.TRIPPED:
                    self.events.add(
                        now, EventKind.NODE_RESET, f"trip cleared, now {ns.state.name}", node
                    )
                else:
                    self.events.add(
                        now, EventKind.RELAY, f"{before[1].name} -> {ns.state.name}", node
                    )
        for alarm, severity in decision.alarms.items():
            if self._alarms.get(alarm) != severity:
                self.events.add(now, EventKind.ALARM, f"{alarm.value} ({severity.name.lower()})")
        for alarm in self._alarms.keys() - decision.alarms.keys():
            self.events.add(now, EventKind.ALARM_CLEARED, alarm.value)
        self._alarms = dict(decision.alarms)
        status = self.keepalive.status(now)
        if status != self._keepalive_status:
            if status == KeepaliveStatus.MISSING:
                self.events.add(now, EventKind.INVERTER_MISSING, "no 0x305 keepalive")
            elif self._keepalive_status == KeepaliveStatus.MISSING:
                self.events.add(now, EventKind.INVERTER_BACK, "0x305 keepalive again")
            self._keepalive_status = status

    # ------------------------------------------------------------------ state

    def persistent_state(self) -> dict[str, Any]:
        """What must survive a restart (written atomically by the caller)."""
        return {
            "version": STATE_VERSION,
            "soc": self.soc.state.to_dict(),
            "strategy": self.controller.state.to_dict(),
        }


def _restore(cls: Any, data: object, what: str) -> Any:
    """cls.from_dict(data), or None (defaults) when there is nothing usable."""
    if data is None:
        return None
    try:
        return cls.from_dict(data)
    except (ValueError, TypeError, KeyError) as exc:
        log.error("saved %s state is unusable (%s): starting from defaults", what, exc)
        return None
