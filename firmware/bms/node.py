"""The battery node: one synchronous, tick-driven cycle of sample -> protect -> act -> talk.

    from bms.node import Node
    from bms.config import load_config
    from bms.hw.sim import SimHardware
    from bms.can.loopback import LoopbackBus

    hw = SimHardware(cells=16, temps=4)
    node = Node(load_config({"node_id": 1}), hw, LoopbackBus())
    node.step(now_ms)          # every cycle_ms on a board; every 10..100 ms in the simulator

The caller owns time: now_ms is a plain int of milliseconds (time.ticks_ms() on a board,
simulated milliseconds on CPython); the node compares it only with ticks_diff, and only
while the two times are less than 2**28 ms apart: an age that can grow without bound (no
fresh sample, no heartbeat) latches once it passes its limit instead of being compared
again, so MicroPython's tick wrap (2**30 ms) never turns it "fresh". For
assertions and the simulator the node exposes, after each step: state (NodeState.State),
relay_closed (the relay drive), relay_state (Open / Closed / Mismatch with the feedback),
faults, warnings and infos (bit masks of bms.protect's kinds), gateway_link,
relay_request, rejected_commands, balancing, config_error (None or the reason) and error
(None or the internal error that latched the Internal fault). A reboot is a new Node on the
same hardware: it opens the relay in its first cycle and settles again.

A cycle:
1. sample: hw.sample(); a cell monitor without fresh data for sensor_stale_ms is a sensor
   fault (an OSError from the driver counts as no fresh data);
2. protect: the protection table (bms.protect) plus CommLoss and Internal;
3. act: the life-cycle state machine (bms.lifecycle) drives the relay; the balancer
   (bms.balance) switches its outputs;
4. talk: restart a bus-off controller, handle received commands (bms.commands), send the
   frames that are due (bms.reports).
Nothing in a steady-state cycle allocates: every buffer and value list is made here. An
unexpected exception opens the relay and latches the Internal fault until a reboot; the
cycle never raises.
"""

from bms import codec
from bms.balance import Balancer
from bms.can.port import COUNTER_MASK, NodeCanPort
from bms.commands import LINK_LOST, LINK_OK, Commands
from bms.compat import const, ticks_diff
from bms.lifecycle import ACTIVE, CONFIG_ERROR, STANDBY, TRIPPED, Lifecycle
from bms.measure import Summary
from bms.plausible import CurrentCheck
from bms.protect import (
    BALANCER_OVER_TEMP,
    COMM_LOSS,
    INTERNAL,
    SENSOR_FAULT,
    Protection,
)
from bms.reports import Reports
from bms.tripstore import PERSISTENT_KINDS

MAX_RX_PER_CYCLE = const(32)  # bounds the cycle time under a flood of frames
OVERRUN_CYCLES = const(4)  # a cycle later than this many periods raises the Internal warning

RELAY_OPEN = codec.NODE_STATE_RELAY_STATE_OPEN
RELAY_CLOSED = codec.NODE_STATE_RELAY_STATE_CLOSED
RELAY_MISMATCH = codec.NODE_STATE_RELAY_STATE_MISMATCH


class Node:
    """One battery node; see the module docstring."""

    def __init__(self, config, hw, can_backend, trip_store=None):
        self.config = config
        self.hw = hw
        self.port = NodeCanPort(can_backend)
        error = config.error
        if error is None and (hw.cells != config.cells or hw.temps != config.temp_sensors):
            error = (
                "hardware measures "
                + str(hw.cells)
                + " cells and "
                + str(hw.temps)
                + " temperatures, the configuration says "
                + str(config.cells)
                + " and "
                + str(config.temp_sensors)
            )
        self.config_error = error
        self.error = None
        self.summary = Summary()
        self.protection = Protection(config)
        self.current_check = CurrentCheck(config)
        self.lifecycle = Lifecycle(
            config.settle_ms, config.auto_reclose_ms, error is None, config.auto_reclose_per_hour
        )
        self.commands = Commands(config.node_id, config.gateway_timeout_ms, config.command_key)
        self.balancer = Balancer(config)
        self.reports = Reports(config, self.port)
        # A deep-discharge or over-charge trip kept across reboots (bms.tripstore).
        self.trip_store = trip_store
        self.stored_trip = 0
        if trip_store is not None and error is None:
            try:
                self.stored_trip = trip_store.load()
            except Exception:  # unreadable: assume the worst
                self.stored_trip = PERSISTENT_KINDS
            if self.stored_trip:
                self.lifecycle.trip()
                print("bms: stored trip", self.stored_trip, "kept from before the reboot")
        self.state = self.lifecycle.state
        self.relay_closed = False
        self.relay_state = RELAY_OPEN
        self.trip_cleared = False
        self.balancing = False
        self.faults = INTERNAL if error is not None else 0
        self.warnings = 0
        self.infos = 0
        self.gateway_link = self.commands.link
        self.relay_request = self.commands.request
        self.rejected_commands = 0
        self.cycles = 0
        self._internal = False
        self._started = False
        self._last_ms = 0
        self._fresh_ms = 0
        self._stale = False
        self._settling = False  # the relay feedback may still follow a drive change
        self._drive_ms = 0
        self.port.set_filters(self.commands.filters())
        # Without a valid node id the node has no identifiers of its own: it listens only,
        # so it never speaks for another node (node 0 is a real node on the bus).
        self.listen_only = error is not None and not config.node_id_valid
        if error is not None:
            print("bms: configuration error:", error)
        if self.listen_only:
            print("bms: no valid node id: listening only, relay open")

    def step(self, now_ms):
        """Run one cycle at now_ms (milliseconds). Never raises."""
        try:
            if self.config_error is None:
                self._cycle(now_ms)
            else:
                self._config_error_cycle(now_ms)
        except Exception as exc:  # a bug must never leave the relay closed
            self._internal_error(now_ms, exc)

    def _start(self, now_ms):
        self._started = True
        self._last_ms = now_ms
        self._fresh_ms = now_ms
        self.reports.start(now_ms)
        # Whatever the outputs were before a reboot (a cell monitor may keep its bleed
        # switches on across a reset of the microcontroller): off until decided otherwise.
        self.hw.set_relay(False, now_ms)
        self._drive_changed(now_ms)
        self.hw.set_balance(self.balancer.words)

    def _cycle(self, now_ms):
        hw = self.hw
        config = self.config
        if self._started:
            gap = ticks_diff(now_ms, self._last_ms)
            overrun = gap > OVERRUN_CYCLES * config.cycle_ms
            late = gap > config.cycle_deadline_ms
        else:
            self._start(now_ms)
            overrun = late = False
        self._last_ms = now_ms
        self.cycles = (self.cycles + 1) & COUNTER_MASK  # a small int for ever

        # 1. sample
        try:
            fresh = hw.sample(now_ms)
        except OSError:
            fresh = False
        if fresh:
            self._fresh_ms = now_ms
            self._stale = False
        elif not self._stale and ticks_diff(now_ms, self._fresh_ms) > config.sensor_stale_ms:
            # Latched until the next fresh sample: the age is never compared again, so it
            # cannot wrap round to "fresh" after 2**29 ms (6.2 days) on MicroPython's ticks.
            self._stale = True
        stale = self._stale
        if self._settling and ticks_diff(now_ms, self._drive_ms) >= config.relay_feedback_delay_ms:
            self._settling = False  # latched off: the stamp is not compared again
        summary = self.summary
        summary.update(hw)

        # 2. protect
        protection = self.protection
        protection.feedback_settling = self._settling
        current_check = self.current_check
        current_check.update(now_ms, hw, summary)
        protection.measure_from(summary, hw, stale, overrun, late, current_check)
        protection.update(now_ms)
        commands = self.commands
        comm_lost = commands.update_link(now_ms)
        link = commands.link
        if link == LINK_LOST:
            self.balancer.clear()
        faults = protection.faults
        warnings = protection.warnings
        if self._internal:
            faults |= INTERNAL
        if comm_lost:
            warnings |= COMM_LOSS
            if config.comm_loss_opens and link == LINK_LOST:
                faults |= COMM_LOSS
        self.faults = faults
        self.warnings = warnings
        self.infos = protection.infos

        # 3. act
        lifecycle = self.lifecycle
        if self.trip_store is not None:
            self._store_trip(faults)
        lifecycle.no_auto_reclose = self.stored_trip != 0
        was_tripped = lifecycle.state == TRIPPED
        reset = commands.reset_requested and commands.take_reset()  # no call most cycles
        closed = lifecycle.update(now_ms, faults, commands.request, link == LINK_OK, reset)
        if was_tripped and lifecycle.state != TRIPPED and self.stored_trip:
            self.stored_trip = 0  # reset: the one write that clears it
            self._save_trip()
        if closed != self.relay_closed:
            self._drive_changed(now_ms)
        hw.set_relay(closed, now_ms)
        # The relay outputs, as _relay_outputs sets them (written out: a call fewer a cycle).
        self.relay_closed = closed
        if closed != hw.relay_closed:
            self.relay_state = RELAY_MISMATCH
        else:
            self.relay_state = RELAY_CLOSED if closed else RELAY_OPEN
        state = lifecycle.state
        self.state = state
        self.trip_cleared = lifecycle.trip_cleared
        allowed = (
            (state == STANDBY or state == ACTIVE)  # noqa: PLR1714, SIM109 (a tuple would allocate)
            and link == LINK_OK
            and not (faults | warnings) & (BALANCER_OVER_TEMP | SENSOR_FAULT)
        )
        balancer = self.balancer
        lowest = summary.cell_min_mv if summary.cells_bad == 0 else 0
        if balancer.update(now_ms, hw.cell_mv, allowed, lowest):
            hw.set_balance(balancer.words)
        self.balancing = balancer.active

        # 4. talk
        port = self.port
        port.poll(now_ms)
        for _ in range(MAX_RX_PER_CYCLE):
            frame = port.recv()
            if frame is None:
                break
            commands.accept(frame, now_ms, balancer)
        self.gateway_link = commands.link
        self.relay_request = commands.request
        self.rejected_commands = commands.rejected
        self.reports.send_node_state(now_ms, self)
        self.reports.send_periodic(now_ms, self)

    def _drive_changed(self, now_ms):
        """The relay drive changes: its feedback may lag for relay_feedback_delay_ms."""
        self._settling = True
        self._drive_ms = now_ms

    def _store_trip(self, faults):
        """Write a new deep-discharge or over-charge trip once (not while it lasts)."""
        new = faults & PERSISTENT_KINDS & ~self.stored_trip
        if new:
            self.stored_trip |= new
            self._save_trip()

    def _save_trip(self):
        try:
            self.trip_store.save(self.stored_trip)
        except OSError as exc:  # a full or broken flash must not stop protection
            print("bms: cannot store the trip:", repr(exc))

    def _relay_outputs(self, closed, lifecycle):
        self.relay_closed = closed
        feedback = self.hw.relay_closed
        if closed != feedback:
            self.relay_state = RELAY_MISMATCH
        else:
            self.relay_state = RELAY_CLOSED if closed else RELAY_OPEN
        self.state = lifecycle.state
        self.trip_cleared = lifecycle.trip_cleared

    def _config_error_cycle(self, now_ms):
        """ConfigError: relay open, Internal fault, NodeState only; commands are discarded."""
        if not self._started:
            self._start(now_ms)
        hw = self.hw
        hw.set_relay(False, now_ms)
        try:  # noqa: SIM105 (MicroPython has no contextlib built in)
            hw.sample(now_ms)
        except OSError:
            pass
        self._relay_outputs(False, self.lifecycle)
        port = self.port
        port.poll(now_ms)
        for _ in range(MAX_RX_PER_CYCLE):
            if port.recv() is None:
                break
        if not self.listen_only:
            self.reports.send_node_state(now_ms, self)

    def _internal_error(self, now_ms, exc):
        """Open the relay, switch every bleed output off, latch the Internal fault; report
        the error once. Runs on every failing cycle, so outputs a cell monitor switched on
        by itself go off again."""
        first = not self._internal
        self._internal = True
        self.faults |= INTERNAL
        self.relay_closed = False
        self.balancing = False
        try:  # noqa: SIM105 (MicroPython has no contextlib built in)
            self.hw.set_relay(False, now_ms)
        except Exception:  # the relay driver itself failed: still try the balancer
            pass
        balancer = self.balancer
        balancer.off()
        try:  # noqa: SIM105
            self.hw.set_balance(balancer.words)
        except Exception:  # the monitor failed: nothing more can be done here
            pass
        if self.lifecycle.state != CONFIG_ERROR:
            self.lifecycle.trip()
            self.state = self.lifecycle.state
        if first:
            self.error = repr(exc)
            print("bms: internal error, relay opened:", self.error)
