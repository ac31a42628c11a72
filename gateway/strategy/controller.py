"""ChargeController: one step of the whole strategy, from a snapshot to a Decision.

Order in a step: fail-safe check, phase, CVL, derating, balancing, current limits with
anti-oscillation, request flags, alarms, relays. Pure: time comes from the snapshot, and
the step interval is clamped so a clock jump or a pause cannot run a timer out.
"""

from __future__ import annotations

import math
from dataclasses import replace

from gateway.contracts.chemistry import ChemistrySpec
from gateway.contracts.decision import Alarm, Decision, Limits, Phase, RelayAction, Severity
from gateway.contracts.snapshot import BatterySnapshot, Level
from gateway.soc import SocState
from gateway.strategy.alarms import AlarmMonitor, raise_alarm
from gateway.strategy.balancing import BalancingPolicy
from gateway.strategy.chargelimit import ChargeLimitMonitor
from gateway.strategy.cvl import CHARGING_C, CvlController
from gateway.strategy.derating import Derater
from gateway.strategy.flags import NodeFlags
from gateway.strategy.phases import PhaseInputs, PhaseMachine
from gateway.strategy.ramp import LimitRamp
from gateway.strategy.relays import RelayPolicy
from gateway.strategy.resistance import IrCompensated
from gateway.strategy.settings import StrategySettings
from gateway.strategy.state import StrategyState

DAY_S = 86400.0
# Charging at this share of CCL or more: the inverter is current-limited, its voltage loop idle.
CURRENT_LIMITED = 0.9


class ChargeController:
    """The charge strategy of one battery.

    `chemistry` is the chemistry's built-in specification; the settings' voltage and table
    overrides are applied to it (ValueError when that gives an inconsistent specification).
    `state` is what a previous run persisted (StrategyState.from_dict).
    """

    def __init__(
        self,
        settings: StrategySettings,
        chemistry: ChemistrySpec,
        cells_in_series: int,
        state: StrategyState | None = None,
    ) -> None:
        if cells_in_series <= 0:
            raise ValueError("cells_in_series must be positive")
        self.settings = settings
        self.chemistry = settings.apply(chemistry)
        self.cells = cells_in_series
        self._state = state if state is not None else StrategyState()
        self.phases = PhaseMachine(
            settings.phases, self.chemistry, self._state.phase, self._state.absorption_completed
        )
        self.cvl = CvlController(
            settings.cvl, self.chemistry, cells_in_series, settings.phases.float_ramp_v_per_s
        )
        self.derater = Derater(settings.derating, self.chemistry)
        self.ccl = LimitRamp(settings.limits, settings.max_charge_current_a)
        self.dcl = LimitRamp(settings.limits, settings.max_discharge_current_a)
        self.balancing = BalancingPolicy(
            settings.balancing, self.chemistry, self._state.balance_owed
        )
        self.relays = RelayPolicy(settings.relays)
        self.alarms = AlarmMonitor(settings.alarms, self.chemistry)
        self.charge_limit = ChargeLimitMonitor(settings.charge_limit)
        self.highest = IrCompensated(highest=True)
        self.lowest = IrCompensated(highest=False)
        dvl_cell = (
            settings.dvl_cell_v if settings.dvl_cell_v is not None else (self.chemistry.min_cell_v)
        )
        self.dvl = cells_in_series * dvl_cell
        self._last_time: float | None = None
        self._stale_s = 0.0
        self._force_charge = False
        self._strings_online = 0  # at the last step: a string joining is a transition

    @property
    def state(self) -> StrategyState:
        """The state to persist (with the balancing charge account as it is now)."""
        owed = self.balancing.account.saved()
        if owed != self._state.balance_owed:
            self._state = replace(self._state, balance_owed=owed)
        return self._state

    @property
    def phase(self) -> Phase:
        """The present charge phase."""
        return self.phases.phase

    def request_full_charge(self) -> None:
        """The user asks for a full charge (SoC reset, top balancing); it survives restarts
        until it completes."""
        self._state = replace(self._state, full_charge_requested=True)

    def request_relay(self, node: int, action: RelayAction) -> None:
        """The user opens (OPEN), closes (CLOSE) or releases (NONE) a node's relay."""
        self.relays.request(node, action)

    def request_reset(self, node: int) -> None:
        """The user resets a tripped node (sent with the next step only)."""
        self.relays.reset(node)

    def step(self, snap: BatterySnapshot, soc: SocState) -> Decision:
        """Decide the limits, phase, alarms and node requests for one snapshot."""
        cfg = self.settings
        dt = self._dt(snap.time)
        stale = not (
            snap.valid and snap.data_age <= cfg.data_timeout_s and math.isfinite(snap.time)
        )
        self._stale_s = self._stale_s + dt if stale else 0.0
        due = self._full_charge_due(snap.time)
        node_flags = NodeFlags.of(snap)  # once per step, for every part below
        connected = node_flags.connected  # most steps: none (no generator to run then)
        faults = (
            sorted(kind for level, kind in connected if level is Level.FAULT) if connected else []
        )
        isolated = snap.strings_online == 0
        current_c = snap.current / snap.capacity_ah if snap.capacity_ah > 0 else math.nan
        changed = self.phases.step(
            PhaseInputs(
                stop=stale or bool(faults) or isolated,
                at_max=self.phases.at_max_voltage(
                    snap.max_cell,
                    current_c,
                    self.cvl.at_ceiling,
                    # Only with the current tapered (it matters only then; saves the walk).
                    current_c <= cfg.phases.tail_current_c and self.cvl.held_by_cell(snap),
                ),
                spread=snap.cell_spread,
                soc=soc.soc,
                full_charge_wanted=due or self._state.full_charge_requested,
            ),
            dt,
        )
        phase = changed.phase
        joined = snap.strings_online > self._strings_online
        self._strings_online = snap.strings_online
        # A phase change, or a string (re)joining: the limits may move to the new phase's or
        # the larger battery's at once (the relax wait is against cycles, not capacity).
        if changed.note or joined:
            self.ccl.new_phase()
            self.dcl.new_phase()
        st = self._state
        if (st.phase, st.absorption_completed) != (
            self.phases.resume_phase,
            self.phases.absorption_completed,
        ):  # a new state only when it changed: most steps it does not
            self._state = replace(
                st,
                phase=self.phases.resume_phase,
                absorption_completed=self.phases.absorption_completed,
            )
        if changed.full_charge_done:
            self._state = replace(
                self._state, last_full_charge=snap.time, full_charge_requested=False
            )
        allowed = self.phases.allowed_max()
        alarms = self.alarms.step(snap, stale, allowed, dt, node_flags)
        relay = self.relays.step(snap, self._stale_s, dt)
        notes = [changed.note] if changed.note else []

        if stale:
            notes.append(f"stopped: battery data stale (age {snap.data_age:.1f} s)")
            limits = Limits(
                cvl=self.cvl.hold(),
                ccl=self.ccl.stop(),
                dcl=self.dcl.stop(),
                dvl=self.dvl,
                charge_enable=False,
                discharge_enable=False,
            )
            self._force_charge = False
            self.charge_limit.reset()
            return Decision(limits, phase, alarms, relay, (), tuple(notes))

        # Float keeps its CVL at the float voltage but derates the current from the charge
        # target: a full battery resting above the float voltage still takes the loads'
        # share of PV (CCL 0 in float starved the loads, venus #1183; issue 14).
        derate_from = allowed
        # The highest cell's level comes back one level above the CCL sent (celllevel.py):
        # a jump onto a cell resting at the steep top takes it over. Not in float: there
        # the CVL holds the cells at the float voltage, 75 mV under the charge target the
        # current derates from, and the CCL came back from the stop at float entry (the
        # cells still above that target) a level every 15 minutes, ten changes of 0x351 in
        # 2.5 hours (issue 14, the matrix's full charge).
        sent: float | None = self.ccl.output / cfg.max_charge_current_a
        if phase is Phase.FLOAT:
            derate_from = max(allowed, self.phases.allowed_max(Phase.BULK))
            sent = None
        derating = self.derater.step(
            snap,
            derate_from,
            soc.soc,
            connected,
            max_cell=self.highest.step(snap, dt),
            min_cell=self.lowest.step(snap, dt),
            charge_sent=sent,
            # A hair over the ramp's smallest step, so a rise by it is not lost to rounding.
            charge_least_rise=(cfg.limits.min_step_a + 1e-6) / cfg.max_charge_current_a,
            dt=dt,
            charge_flow=max(0.0, snap.current) / cfg.max_charge_current_a,
            discharge_flow=max(0.0, -snap.current) / cfg.max_discharge_current_a,
        )
        for alarm, severity in derating.alarms.items():
            raise_alarm(alarms, alarm, severity)
        notes.extend(derating.notes)
        balance = self.balancing.step(snap, phase, dt, soc.soc)
        charge_target = cfg.max_charge_current_a * derating.charge
        if self.balancing.topping and cfg.balancing.charge_current_fraction < 1.0:
            charge_target *= cfg.balancing.charge_current_fraction
            notes.append("charge current reduced while balancing")
        # Whether the charger ignores the CCL, as of the last step (this step's check comes
        # with the CCL below).
        ignored = self.charge_limit.ignored
        if (
            ignored
            and 0.0 < self.ccl.output < charge_target
            and derating.charge < derating.charge_unless_cell
        ):
            # A charger seen to ignore the CCL is held through the CVL (below) to the CCL
            # without the highest cell's taper: that taper's retries, the CCL stepping up a
            # level every 15 minutes, changed nothing it did and were a change of 0x351
            # each (issue 14, the matrix's full charge with a CVL-only charger: 2 -> 3 ->
            # 4.3 ... 25.6 A). So they wait while it ignores the CCL. Decreases still apply
            # at once; a stopped CCL (0) and the other factors still rise.
            charge_target = self.ccl.output
            notes.append("CCL held: the charger ignores it")
        if phase is Phase.STOPPED:
            if faults:
                notes.append(f"stopped: node fault {', '.join(faults)}")
            elif isolated:
                notes.append("stopped: no string online")
            else:
                notes.append("stopped: waiting for clean data before resuming")
            ccl, dcl = self.ccl.stop(), self.dcl.stop()
            over = self._charge_limit(snap, ccl, dt, alarms, notes)
            cvl = self.cvl.hold(snap.voltage, over and self.charge_limit.above)
        else:
            # Within the current sensor's noise of the CCL counts as at it: a CCL of a few
            # tenths of an ampere hides in a reading's offset and noise (0.3 A and 0.2 A in
            # the charge-quality matrix), and each reading under 0.9 x CCL let the CVL's
            # loop climb a little: a step every 2.5 minutes for an hour of a full charge,
            # 19 changes of 0x351, while the CCL held the current at 0.1 A (issue 14).
            noise = CHARGING_C * snap.capacity_ah if snap.capacity_ah > 0 else 0.0
            limited = (
                self.ccl.output > 0.0 and snap.current >= CURRENT_LIMITED * self.ccl.output - noise
            )
            ccl = self.ccl.step(charge_target, dt)
            # An inverter known to ignore CCL is held through the CVL to the CCL without the
            # highest-cell taper: the CVL loop itself keeps that cell at its set point, and
            # 0.1 V steps cannot follow a taper of a few amperes (they cycled).
            enforced = ccl
            if ignored:
                enforced = max(ccl, cfg.max_charge_current_a * derating.charge_unless_cell)
            over = self._charge_limit(snap, enforced, dt, alarms, notes)
            if ccl <= 0.0:
                # CCL 0 is enforced through the CVL as well: chargers that ignore CCL and
                # the enable bit (MPPTs, RS450, a Multi's trickle) follow the CVL.
                notes.append("charging stopped: CVL at the pack voltage")
            cvl = self.cvl.step(
                snap,
                allowed,
                dt,
                limited,
                charge_allowed=ccl > 0.0,
                over_current=over,
                tighten=self.charge_limit.above,
                headroom=self._headroom(snap, enforced),
                excess_v=max(0.0, snap.current - enforced) * self.highest.r_ohm * self.cells,
                ir_cell_v=max(0.0, snap.current) * self.highest.r_ohm,
            )
            dcl = self.dcl.step(cfg.max_discharge_current_a * derating.discharge, dt)
        force = self._force(snap, soc, charge_target > 0.0 and phase is not Phase.STOPPED)
        if force:
            notes.append("force charge requested: battery nearly empty")
        limits = Limits(
            cvl=cvl,
            ccl=ccl,
            dcl=dcl,
            dvl=self.dvl,
            charge_enable=ccl > 0.0,
            discharge_enable=dcl > 0.0,
            force_charge=force,
            full_charge_request=due and phase is not Phase.STOPPED,
        )
        return Decision(limits, phase, alarms, relay, balance, tuple(notes))

    # ------------------------------------------------------------------ internals

    def _dt(self, now: float) -> float:
        """Seconds since the last step, clamped to 0..max_step_s."""
        if not math.isfinite(now):
            return 0.0
        last, self._last_time = self._last_time, now
        if last is None:
            return 0.0
        # min(max(now - last, 0.0), max_step_s) as comparisons (both times are finite).
        dt, longest = now - last, self.settings.max_step_s
        if dt < 0.0:
            return 0.0  # the clock went back
        return dt if dt < longest else longest

    def _charge_limit(
        self,
        snap: BatterySnapshot,
        ccl: float,
        dt: float,
        alarms: dict[Alarm, Severity],
        notes: list[str],
    ) -> bool:
        """Whether the charge current stays above the CCL (chargelimit.py), with its alarm."""
        over = self.charge_limit.step(snap.current, ccl, dt)
        if over:
            # Battery-Emulator's "charge limit exceeded": the inverter ignores the CCL.
            raise_alarm(alarms, Alarm.HIGH_CHARGE_CURRENT, Severity.WARNING)
            if self.charge_limit.above:
                notes.append(
                    f"charge current {snap.current:.1f} A above CCL {ccl:.1f} A: CVL lowered"
                )
            else:
                # The condition stays until the current has kept within the CCL for
                # release_s; meanwhile the current may be anything, a discharge included.
                notes.append("charge current above CCL lately: the CVL does not rise")
        return over

    def _headroom(self, snap: BatterySnapshot, ccl: float) -> float | None:
        """For an inverter that ignores CCL: how far above the pack the CVL may go so that
        its voltage loop alone keeps the current within CCL (V pack; negative: below, as
        the current is above CCL); else None."""
        if not self.charge_limit.ignored or not math.isfinite(snap.current):
            return None
        r_pack = self.highest.r_ohm * self.cells
        # Half a CVL step more: with less, a small CCL would hold the CVL forever (its
        # next step up carries more than the CCL left), with a step it overshoots by less
        # than half a step's current.
        step = self.settings.cvl.step_v
        return (ccl - max(0.0, snap.current)) * r_pack + step / 2

    def _full_charge_due(self, now: float) -> bool:
        """The periodic full charge is due (and not disabled)."""
        days = self.settings.phases.full_charge_interval_days
        if not math.isfinite(now):
            return False
        st = self._state
        if st.last_full_charge is not None and st.last_full_charge > now:
            st = replace(st, last_full_charge=now)  # the clock went back
        start = st.full_charge_from
        if start is None or start > now:
            start = now
            st = replace(st, full_charge_from=now)
        self._state = st
        since = st.last_full_charge if st.last_full_charge is not None else start
        return days > 0 and now - since >= days * DAY_S

    def _force(self, snap: BatterySnapshot, soc: SocState, can_charge: bool) -> bool:
        """Force-charge request with hysteresis: on at low SoC or an empty cell, off once
        SoC is back above force_charge_off_soc and the cell above the empty voltage."""
        cfg, empty = self.settings, self.chemistry.empty_cell_v
        if self._force_charge:
            self._force_charge = not (soc.soc >= cfg.force_charge_off_soc and snap.min_cell > empty)
        else:
            self._force_charge = soc.soc <= cfg.force_charge_on_soc or snap.min_cell <= empty
        return self._force_charge and can_charge
