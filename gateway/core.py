"""The gateway's logic in one synchronous object: frames in, frames out, driven by time.

GatewayCore owns the battery model, the SoC estimator, the charge controller, the node
commands and the inverter output. It does no I/O and reads no clock: the asyncio service
(gateway/runtime/service.py) feeds it frames from python-can and calls `tick(now)`; the simulator
does the same with simulated time, which makes whole-system runs deterministic.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from gateway.codec import pylontech_lv as inverter_codec
from gateway.config.root import Settings
from gateway.contracts.chemistry import spec_of
from gateway.contracts.decision import Alarm, Decision, Limits, Phase, RelayAction, Severity
from gateway.contracts.frame import Frame
from gateway.contracts.snapshot import BatterySnapshot, NodeState
from gateway.outputs import BatteryView
from gateway.outputs.inverter import Emitter, KeepaliveWatch, build_report, make_profile
from gateway.outputs.inverter.energy import EnergyCounter
from gateway.outputs.inverter.keepalive import KeepaliveStatus
from gateway.outputs.inverter.profile import FRAME_SET, InverterRequest
from gateway.outputs.inverter.report import InverterReport
from gateway.outputs.inverter.shaping import Outgoing
from gateway.record.counters import BusCounters, RateLimitedLog
from gateway.record.events import EventKind, EventLog
from gateway.record.history import History, Sample
from gateway.soc import SocEstimator, SocState
from gateway.sources.combined import CombinedSource
from gateway.sources.moat_nodes.source import MoatNodes
from gateway.sources.packs.reading import PackError, PackReading
from gateway.sources.packs.source import CommercialPacks, PackSwitch
from gateway.strategy import ChargeController, StrategyState

log = logging.getLogger(__name__)

KEEPALIVE_ID = inverter_codec.FRAME_IDS["InverterKeepalive"]
INVERTER_STATUS_ID = inverter_codec.FRAME_IDS["InverterStatus"]  # 0x306, SMA Sunny Island
OUR_INVERTER_IDS = frozenset(inverter_codec.FRAME_IDS.values()) - {
    KEEPALIVE_ID,
    INVERTER_STATUS_ID,
}


STATE_VERSION = 1
# An alarm must stay away this long before its clear is recorded (debounce of events).
ALARM_CLEAR_S = 5.0
# A NodeInfo mismatch (every 5 s) holds this long after it was last seen.
MISMATCH_HOLD_S = 15.0
# NodeState frames out of sequence: more than DUPLICATE_FRAMES in DUPLICATE_WINDOW_S while
# the node is present means two senders with one id (a node's id set twice, a second
# battery): their alive counters interleave. A stuck node goes stale instead.
DUPLICATE_FRAMES = 10
DUPLICATE_WINDOW_S = 10.0
# A node whose RejectedCommands count rose keeps its warning this long: it refuses what the
# gateway sends (a command key that differs, a second gateway, a forger on its identifiers).
REJECTED_HOLD_S = 30.0
# Another device's battery frames on the inverter bus keep their alarm this long.
FOREIGN_LIMITS_HOLD_S = 10.0


@dataclass
class Outbox:
    """Frames to send after a tick, per bus."""

    battery: list[Frame] = field(default_factory=list)
    inverter: list[Frame] = field(default_factory=list)
    packs: list[PackSwitch] = field(default_factory=list)  # to the commercial packs' links


class GatewayCore:
    """Everything the gateway decides, as a synchronous state machine over time."""

    def __init__(self, settings: Settings, now: float, state: dict[str, Any] | None = None):
        self.settings = settings
        topo = settings.battery.topology
        self.chemistry = spec_of(settings.battery.chemistry)
        self.battery_counters = BusCounters()
        self.inverter_counters = BusCounters()
        self._inverter_log = RateLimitedLog(log, 60.0)
        state = state or {}
        self.controller = ChargeController(
            settings.bounded_strategy(),  # maximum currents within the pack rating
            self.chemistry,
            topo.cells_in_series,
            _restore(StrategyState, state.get("strategy"), "strategy"),
        )
        # The chemistry with the user's voltage overrides applied: SoC and alerts use it too.
        self.chemistry = self.controller.chemistry
        self.soc = SocEstimator(
            settings.soc, self.chemistry, _restore(SocState, state.get("soc"), "SoC")
        )
        self.profile = make_profile(settings.inverter.profile, settings.inverter)
        # On one bus for battery and inverter, the identifiers on_battery_frame must look at
        # as the inverter's (its keepalive, status and requests, and ours from another
        # device); on two buses none. Every node frame then costs one set lookup.
        self._inverter_side_ids: frozenset[int] = (
            frozenset(
                {self.profile.keepalive_id, INVERTER_STATUS_ID}
                | self.profile.request_ids
                | OUR_INVERTER_IDS
            )
            if settings.buses.inverter is None
            else frozenset()
        )
        # Energy in and out of the battery (Victron 0x378), kept across restarts.
        self.energy: EnergyCounter = (
            _restore(EnergyCounter, state.get("energy"), "energy") or EnergyCounter()
        )
        self.emitter = Emitter.for_profile(self.profile)
        # The inverter's last request of its own family (Luxpower 0x300): shut down or not.
        self.inverter_shutdown_requested = False
        # What a polling inverter asked for since the last tick (Pylontech HV 0x4200), in
        # order: answered at the next tick, which it makes at once (on_inverter_frame).
        self._asked: list[str] = []
        self._answered = -math.inf  # when requests were last answered
        self.keepalive = KeepaliveWatch.from_settings(settings.inverter, now)
        # The inverter's own readings (0x305/0x306, SMA), by name; empty until received.
        self.inverter_readings: dict[str, float] = {}
        # A frame with a cell beyond the alert bounds makes the strategy run at once instead
        # of at the next tick: from there on the charge (discharge) derating bites, and a
        # stop must reach the inverter in milliseconds.
        key = settings.battery.key_bytes()
        if key is None:
            log.warning("no battery.command_key: relay commands are not authenticated")
        nodes = MoatNodes(
            topo,
            settings.timing.node_timeout_s,
            self.battery_counters,
            alert_high_cell=self.chemistry.charge_target_v,
            alert_low_cell=self.chemistry.empty_cell_v,
            chemistry=settings.battery.chemistry.value,
            command_key=key,
            nodes=settings.battery.node_ids,
        )
        self.source: MoatNodes | CombinedSource = nodes
        # Commercial packs (battery.packs) beside the nodes: one source of both kinds. A
        # system of nodes only keeps MoatNodes alone.
        self.packs: CombinedSource | None = None
        packs = settings.battery.packs
        if packs:
            self.packs = CombinedSource(
                topo,
                nodes,
                CommercialPacks(
                    topo,
                    {p: cfg.timeout_s for p, cfg in packs.items()},
                    [p for p, cfg in packs.items() if cfg.control],
                ),
            )
            self.source = self.packs
        # Where a battery frame goes after the inverter's checks: the source, which for
        # nodes alone hands it straight to their ingest (bound here: a call fewer a frame).
        self._source_frame: Callable[[Frame, float], bool] = (
            nodes.ingest.on_frame if self.packs is None else self.source.on_frame
        )
        # The nodes' own records, for the page and the tests.
        self.model = nodes.model
        saved_commands = state.get("commands")
        if saved_commands is not None:
            # Freshness moves 10 a second at most (the clock in 100 ms steps, one a frame);
            # skip what can have been sent between the last save and the stop.
            skip = round(10 * (2 * settings.persistence.interval_s + 60))
            try:
                self.source.restore(saved_commands, skip)
            except ValueError as exc:
                log.error("saved commands state is unusable (%s): starting from defaults", exc)
        self.events = EventLog()
        self.history = History()
        self.started = now
        self.snapshot: BatterySnapshot = self.source.snapshot(now)
        self.soc_state: SocState = self.soc.state
        self.decision: Decision | None = None
        self.report: InverterReport | None = None
        # What the inverter was last sent: the values after the inverter profile's shaping.
        self.sent: Outgoing | None = None
        self.ticks = 0
        self._seen_nodes: dict[int, tuple[bool, NodeState]] = {}
        self._alarms: dict[Alarm, Severity] = {}  # as the events last told them
        self._alarm_gone_since: dict[Alarm, float] = {}
        self._foreign_limits: tuple[float, int] | None = None  # (last seen, frame id)
        self._keepalive_status: KeepaliveStatus | None = None
        self._mismatches: list[str] = []
        self._mismatch_seen: dict[str, float] = {}
        # node -> (window start, ignored NodeState frames at its start); nodes suspected of
        # sharing their id with another sender, with the time last suspected.
        self._ignored_at: dict[int, tuple[float, int]] = {}
        self._duplicates: dict[int, float] = {}
        # node -> its last RejectedCommands count; nodes seen rejecting, with the time.
        self._rejected_count: dict[int, int] = {}
        self._rejecting: dict[int, float] = {}
        self.events.add(
            now,
            EventKind.START,
            f"gateway started ({len(topo.nodes)} nodes, "
            f"{topo.cells_in_series} cells in series, "
            f"profile {self.profile.name})",
        )

    # ------------------------------------------------------------------ input

    def on_battery_frame(self, frame: Frame, now: float) -> bool:
        """A frame from the battery bus. True when the caller should tick at once."""
        if frame.id in self._inverter_side_ids:  # one bus for battery and inverter
            if (
                self.is_keepalive(frame)
                or (frame.id == INVERTER_STATUS_ID and frame.plain)
                or self.profile.request(frame) is not None
            ):
                # The inverter's keepalive (its status frame, its poll) arrives here.
                return self.on_inverter_frame(frame, now)
            if frame.id in OUR_INVERTER_IDS and frame.plain:
                # Our own frames are not heard back, so this is another device.
                self._foreign_battery_frame(frame.id, now)
        return self._source_frame(frame, now)

    def on_pack_reading(self, pack: int, result: PackReading | PackError, now: float) -> bool:
        """One poll of a commercial pack (battery.packs): its reading, or why there is none.
        True when the caller should tick at once (the pack cut off, an alarm changed)."""
        if self.packs is None:
            raise ValueError(f"pack {pack}: no commercial packs are configured")
        return self.packs.on_reading(pack, result, now)

    def is_keepalive(self, frame: Frame) -> bool:
        """The inverter's keepalive (0x305; the profile's own id, e.g. Growatt LV's 0x301),
        with an 11-bit or a 29-bit identifier: the Schneider XW Pro sends 0x305 as a 29-bit
        id (issue 15, item 6; docs/inverters.md)."""
        return frame.id == self.profile.keepalive_id and not (frame.remote or frame.error)

    def _foreign_battery_frame(self, frame_id: int, now: float) -> None:
        """Another device sends battery frames (limits) to the inverter: it now gets two
        sets of limits, and may follow the other one. An alarm and an event, not only a log
        line."""
        if self._foreign_limits is None:
            self.events.add(
                now,
                EventKind.ALARM,
                f"another device sends battery limits on the inverter bus (0x{frame_id:03X}): "
                "the inverter gets two sets of limits",
                cause=("foreign", frame_id),
            )
        self._foreign_limits = (now, frame_id)

    def _inverter_request(self, request: InverterRequest, now: float) -> None:
        """A request of the inverter's own family (profile.inverter_request): a shutdown
        request is an ALARM event (once per burst) and a warning in the log. The gateway does
        not act on it: opening the relays stays the strategy's and the user's decision."""
        self.inverter_shutdown_requested = request.shutdown
        if not request.shutdown:
            return
        self.events.add(
            now,
            EventKind.ALARM,
            f"the inverter asks the battery to shut down: {request.text}",
            cause=("inverter-request", request.frame_id),
        )
        self._inverter_log.warning(
            ("request", request.frame_id), now, "inverter bus: %s", request.text
        )

    def on_inverter_frame(self, frame: Frame, now: float) -> bool:
        """A frame from the inverter bus: its keepalive, its readings, its requests. True
        when the caller should tick at once: the inverter polls and waits for the answer."""
        c = self.inverter_counters
        c.received += 1
        if frame.error:
            c.errors += 1
            return False
        frame_id = frame.id
        asked = self.profile.request(frame)
        new = asked is not None and asked not in self._asked
        if asked is not None and new:
            self._asked.append(asked)
        if self.is_keepalive(frame):
            self.keepalive.on_keepalive(now)
            self._inverter_readings(frame, now)
            return new
        if asked is not None:
            return new
        if frame_id == INVERTER_STATUS_ID and frame.plain:
            self._inverter_readings(frame, now)
            return False
        request = self.profile.inverter_request(frame)
        if request is not None:
            self._inverter_request(request, now)
            return False
        if not frame.extended and frame_id in OUR_INVERTER_IDS:
            self._foreign_battery_frame(frame_id, now)
            self._inverter_log.warning(
                ("battery", frame_id),
                now,
                "inverter bus: frame 0x%03X is one the battery sends: is another BMS on the bus?",
                frame_id,
            )
        c.count_unknown(frame_id)
        return False

    def _inverter_readings(self, frame: Frame, now: float) -> None:
        """What the inverter says about the battery in 0x305 / 0x306 (SMA Sunny Island: its
        own voltage, current, temperature, SoC; SoH, state, error, charge voltage), kept for
        the status report when the profile reads them (issue 15 item 3)."""
        if not self.profile.reads_inverter_readings or len(frame.data) != 8:
            return
        readings = self.inverter_readings
        if frame.id == KEEPALIVE_ID:
            k = inverter_codec.decode_inverter_keepalive(frame.data)
            readings.update(
                voltage=k.inverter_voltage,
                current=k.inverter_current,
                temperature=k.inverter_temperature,
                soc=k.inverter_soc,
            )
        else:
            st = inverter_codec.decode_inverter_status(frame.data)
            readings.update(
                soh=st.inverter_soh,
                charging_procedure=st.charging_procedure,
                operating_state=st.operating_state,
                error=st.active_error,
                cvl_setpoint=st.charge_voltage_setpoint,
            )
        readings["time"] = now

    # ------------------------------------------------------------------ user actions

    def request_full_charge(self, now: float) -> None:
        self.controller.request_full_charge()
        self.events.add(now, EventKind.USER, "full charge requested")

    def request_balancing(self, now: float) -> None:
        """A balancing run. Balancing acts at the top of the charge (strategy/balancing.py), so
        it is a full charge, whose absorption hold gives the balancers time."""
        self.controller.request_full_charge()
        self.events.add(now, EventKind.USER, "balancing run requested (a full charge)")

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
        known = self.settings.battery.topology.nodes
        if node not in known:
            raise ValueError(f"node {node} is not configured (nodes: {sorted(known)})")

    # ------------------------------------------------------------------ the step

    def tick(self, now: float) -> Outbox:
        """Re-evaluate the battery and return the frames due now."""
        self.ticks += 1
        snap = self.source.snapshot(now)
        previous_phase = self.decision.phase if self.decision else None
        soc = self.soc.update(snap, previous_phase)
        if self.packs is not None and snap.cells_unreported:
            # No cell voltage to calibrate on: the batteries' own BMSes count the SoC.
            own = self.packs.packs_soc(snap)
            if own is not None:
                soc = self.soc.follow(own)
        decision = self.controller.step(snap, soc)
        alarms = dict(decision.alarms)
        for alarm, severity in self.keepalive.alarms(now).items():
            alarms[alarm] = max(severity, alarms.get(alarm, severity))
        limits, notes = decision.limits, decision.notes
        if self._foreign_limits is not None:
            seen, frame_id = self._foreign_limits
            if 0 <= now - seen <= FOREIGN_LIMITS_HOLD_S:
                alarms.setdefault(Alarm.SYSTEM, Severity.WARNING)
                notes = (*notes, f"another device sends 0x{frame_id:03X} on the inverter bus")
            else:
                self._foreign_limits = None
        for node in self._rejecting_nodes(now):
            alarms.setdefault(Alarm.SYSTEM, Severity.WARNING)
            notes = (
                *notes,
                f"node {node} rejects the gateway's commands (a different command key, or "
                "another device on its identifiers?)",
            )
        for node in self._duplicate_ids(now):
            alarms.setdefault(Alarm.SYSTEM, Severity.WARNING)
            notes = (
                *notes,
                f"node {node}: NodeState frames out of sequence (two nodes with id {node}?)",
            )
        # A mismatch holds for MISMATCH_HOLD_S after it was last seen: two nodes answering
        # with one id (one matching, one not) must not make the charge limit flap.
        for m in self.source.problems():
            self._mismatch_seen[m] = now
        for m, seen in list(self._mismatch_seen.items()):
            if not 0 <= now - seen <= MISMATCH_HOLD_S:
                del self._mismatch_seen[m]
        mismatches = sorted(self._mismatch_seen)
        if mismatches:
            # The nodes measure another battery than the limits are computed for: the charge
            # voltages may be wrong for these cells, so charging stops until it is fixed.
            alarms[Alarm.SYSTEM] = Severity.ALARM
            limits = replace(limits, ccl=0.0, charge_enable=False, force_charge=False)
            notes = (*notes, *(f"charging stopped: {m}" for m in mismatches))
        if mismatches != self._mismatches:
            for m in mismatches:
                if m not in self._mismatches:
                    self.events.add(
                        now, EventKind.ALARM, f"configuration mismatch: {m}", cause=("nodeinfo", m)
                    )
            self._mismatches = mismatches
        if self.packs is not None:
            limits, notes = self._pack_bounds(snap, limits, notes)
        added = alarms != decision.alarms or notes is not decision.notes
        if added or limits is not decision.limits:
            # The gateway's own conditions (above) add to the controller's decision: most
            # ticks none does, and its decision goes on as it is.
            decision = Decision(
                limits=limits,
                phase=decision.phase,
                alarms=alarms,
                relay=decision.relay,
                balance=decision.balance,
                notes=notes,
            )
        self._record_events(now, snap, decision, previous_phase)
        self.snapshot, self.soc_state, self.decision = snap, soc, decision

        out = Outbox(self.source.commands(decision, now), [], [])
        if self.packs is not None:
            out.packs = self.packs.pack_commands(decision, now)

        # An untrusted SoC goes out as the low end of its uncertainty (SocState.for_inverter).
        self.energy.update(now, snap.voltage, snap.current)
        report = build_report(
            snap,
            decision,
            soc.for_inverter,
            soc.soh,
            self.settings.inverter,
            charged_wh=self.energy.charged_wh,
            discharged_wh=self.energy.discharged_wh,
            nominal_voltage=self.chemistry.nominal_v * snap.cells_in_series,
            cycles=soc.cycles,
        )
        self.report = report
        asked, self._asked = self._asked, []
        if asked and 0 <= now - self._answered < self.profile.min_interval:
            # A poll storm is answered at most once per minimum interval.
            self._asked, asked = asked, []
        if self.settings.inverter.enabled:
            if self.emitter.due(now, report) and FRAME_SET not in asked:
                asked.insert(0, FRAME_SET)
            if asked:
                self._answered = now
                shaped = self.profile.shape(report)
                for request in asked:
                    out.inverter += self.profile.answer(request, shaped)
                if FRAME_SET in asked:
                    self.emitter.sent(now, report)
                    self.sent = shaped
        if self.history.due(now):  # one sample per 10 s interval: most ticks build none
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

    def _pack_bounds(
        self, snap: BatterySnapshot, limits: Limits, notes: tuple[str, ...]
    ) -> tuple[Limits, tuple[str, ...]]:
        """The limits within what the packs' own BMSes ask for (a Pylontech battery's 0x351):
        each online string's currents at most its lowest pack's, the charge voltage at most
        the lowest string's sum of theirs; when no member reports cells
        (snap.cells_unreported) the charge voltage is theirs, as an inverter connected to
        them directly would use it."""
        assert self.packs is not None
        bounds = self.packs.bounds(snap)
        ccl = bounds.bound(limits.ccl, bounds.charge_currents)
        dcl = bounds.bound(limits.dcl, bounds.discharge_currents)
        cvl = limits.cvl
        if bounds.charge_voltage > 0:  # NaN compares False; a battery's 0 never counts
            # Theirs when they watch every cell, else never above theirs.
            own = bounds.charge_voltage
            cvl = own if snap.cells_unreported else min(cvl, own)
        if (cvl, ccl, dcl) == (limits.cvl, limits.ccl, limits.dcl):
            return limits, notes
        notes = (*notes, f"within the packs' own limits: {cvl:.1f} V, {ccl:.0f} A, {dcl:.0f} A")
        limits = replace(
            limits,
            cvl=cvl,
            ccl=ccl,
            dcl=dcl,
            charge_enable=limits.charge_enable and ccl > 0,
            discharge_enable=limits.discharge_enable and dcl > 0,
        )
        return limits, notes

    def _rejecting_nodes(self, now: float) -> list[int]:
        """Nodes whose RejectedCommands count (PackStatus, wraps 255 -> 0) rose: they refuse
        frames on their command identifiers, and the gateway would otherwise not know why its
        relay requests do not happen."""
        for node, rec in self.model.nodes.items():
            count = rec.rejected_commands
            last = self._rejected_count.get(node)
            self._rejected_count[node] = count
            # A rise of less than half the counter's range; a node that restarted counts
            # from 0 again (a "rise" of more) and only sets the new baseline.
            if last is not None and 0 < (count - last) & 0xFF < 0x80:
                if node not in self._rejecting:
                    self.events.add(
                        now,
                        EventKind.ALARM,
                        f"the node rejects the gateway's commands ({count} so far): a "
                        "different command key, or another device on its identifiers?",
                        node,
                        cause=("rejected", node),
                    )
                self._rejecting[node] = now
        for node, seen in list(self._rejecting.items()):
            if not 0 <= now - seen <= REJECTED_HOLD_S:
                del self._rejecting[node]
        return sorted(self._rejecting)

    def _duplicate_ids(self, now: float) -> list[int]:
        """Nodes whose NodeState frames arrive out of sequence as two senders' would."""
        for node, rec in self.model.nodes.items():
            start, ignored = self._ignored_at.setdefault(node, (now, rec.state_frames_ignored))
            if not 0 <= now - start < DUPLICATE_WINDOW_S:
                if rec.state_frames_ignored - ignored > DUPLICATE_FRAMES and rec.fresh(
                    now, self.model.node_timeout
                ):
                    if node not in self._duplicates:
                        self.events.add(
                            now,
                            EventKind.ALARM,
                            "NodeState frames out of sequence: two nodes with this id?",
                            node,
                            cause=("duplicate", node),
                        )
                    self._duplicates[node] = now
                self._ignored_at[node] = (now, rec.state_frames_ignored)
        for node, seen in list(self._duplicates.items()):
            if not 0 <= now - seen <= 2 * DUPLICATE_WINDOW_S:
                del self._duplicates[node]
        return sorted(self._duplicates)

    def _record_events(
        self, now: float, snap: BatterySnapshot, decision: Decision, previous: Phase | None
    ) -> None:
        if previous is not None and decision.phase != previous:
            self.events.add(now, EventKind.PHASE, f"{previous} -> {decision.phase}")
        for node, ns in snap.nodes.items():
            before = self._seen_nodes.get(node)
            now_seen = (ns.present, ns.state)
            if before == now_seen:
                continue
            self._seen_nodes[node] = now_seen
            was_present = before[0] if before else None
            pack = node in self.settings.battery.packs
            if was_present and not ns.present:
                what = "no good reading from its BMS" if pack else "no fresh frames"
                self.events.add(now, EventKind.NODE_MISSING, f"{what} (comm loss)", node)
            elif ns.present and was_present is False:
                self.events.add(
                    now, EventKind.NODE_BACK, "readings again" if pack else "frames again", node
                )
            if ns.present and before is not None and before[1] != ns.state:
                if ns.state == NodeState.TRIPPED:
                    why = ", ".join(sorted(ns.faults)) or "fault"
                    what = "the BMS cut off (both switches off)" if pack else "relay opened"
                    self.events.add(now, EventKind.NODE_TRIPPED, f"{what}: {why}", node)
                elif before[1] == NodeState.TRIPPED:
                    self.events.add(
                        now, EventKind.NODE_RESET, f"trip cleared, now {ns.state.name}", node
                    )
                else:
                    self.events.add(
                        now, EventKind.RELAY, f"{before[1].name} -> {ns.state.name}", node
                    )
        # Alarm events are debounced: a clear is recorded once the alarm has stayed away for
        # ALARM_CLEAR_S, so a flapping cause gives one raise, not a raise and a clear per
        # tick; the event log folds what still repeats (per alarm, whatever its severity).
        for alarm, severity in decision.alarms.items():
            self._alarm_gone_since.pop(alarm, None)
            if self._alarms.get(alarm) != severity:
                self._alarms[alarm] = severity
                self.events.add(
                    now,
                    EventKind.ALARM,
                    f"{alarm.value} ({severity.name.lower()})",
                    cause=("alarm", alarm),
                )
        for alarm in list(self._alarms.keys() - decision.alarms.keys()):
            gone = self._alarm_gone_since.setdefault(alarm, now)
            if now - gone >= ALARM_CLEAR_S or now < gone:
                del self._alarms[alarm]
                del self._alarm_gone_since[alarm]
                self.events.add(now, EventKind.ALARM_CLEARED, alarm.value, cause=("alarm", alarm))
        status = self.keepalive.status(now)
        if status != self._keepalive_status:
            if status == KeepaliveStatus.MISSING:
                self.events.add(now, EventKind.INVERTER_MISSING, "no 0x305 keepalive")
            elif self._keepalive_status == KeepaliveStatus.MISSING:
                self.events.add(now, EventKind.INVERTER_BACK, "0x305 keepalive again")
            self._keepalive_status = status

    def view(self, events_seen: int) -> tuple[BatteryView | None, int]:
        """The last tick's result for the outputs, with the events recorded after the first
        `events_seen`, and the count to pass next time. None before the first tick."""
        decision = self.decision
        if decision is None:
            return None, events_seen
        view = BatteryView(
            time=self.snapshot.time,
            snapshot=self.snapshot,
            soc=self.soc_state,
            decision=decision,
            report=self.report,
            events=tuple(self.events.since(events_seen)),
        )
        return view, self.events.count

    def stopping(self) -> Frame | None:
        """The gateway is going away: the STOPPING heartbeat to send while the battery bus is
        still open, once; None after that. It says so on the bus (candump, logs); the nodes
        rely on their own heartbeat timeout."""
        return self.source.stopping()

    # ------------------------------------------------------------------ state

    def persistent_state(self) -> dict[str, Any]:
        """What must survive a restart (written atomically by the caller)."""
        return {
            "version": STATE_VERSION,
            "soc": self.soc.state.to_dict(),
            "strategy": self.controller.state.to_dict(),
            "commands": self.source.saved(),
            "energy": self.energy.to_dict(),
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
