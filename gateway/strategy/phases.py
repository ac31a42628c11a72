"""Charge phases: bulk -> absorption -> float -> bulk, the full charge, and stopped.

    BULK --(highest cell at max for absorption_entry_s)--> ABSORPTION
    ABSORPTION --(timer absorption_time_s, or absorption_max_s in all)--> FLOAT
    FLOAT --(SoC < rebulk_soc, or spread >= rebulk_spread_v, for rebulk_delay_s)--> BULK
    BULK | ABSORPTION | FLOAT --(full charge due or requested)--> FULL_CHARGE
    FULL_CHARGE --(hold timer full_charge_hold_s, or full_charge_max_hold_s)--> FLOAT
    any --(stale data, node fault, no string online)--> STOPPED --(resume_after_s clean)--> before

Every timer counts the step interval the controller clamps, so a clock jump cannot end an
absorption; every transition needs its condition for a while (hysteresis).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.contracts.chemistry import ChemistrySpec
from gateway.contracts.decision import Phase
from gateway.strategy.settings import PhaseSettings


@dataclass(frozen=True, slots=True)
class PhaseInputs:
    """What the phase machine looks at in one step."""

    stop: bool  # stale data, a node fault or no string online: nothing may flow
    at_max: bool  # the battery is at the allowed maximum of the phase (see at_max_voltage)
    spread: float  # highest minus lowest cell, V
    soc: float  # %
    full_charge_wanted: bool  # periodic full charge due, or requested by the user


@dataclass(frozen=True, slots=True)
class PhaseStep:
    """The phase after one step, and what happened."""

    phase: Phase
    full_charge_done: bool = False  # a full charge completed in this step
    note: str = ""  # why the phase changed, when it did


# A step that changes nothing, one per phase: the usual step returns it rather than a new
# record every tick (frozen, so sharing it is safe).
_STAY = {phase: PhaseStep(phase) for phase in Phase}


class PhaseMachine:
    """The charge phase with its timers. Start it STOPPED: it resumes into `resume` once
    the data has been clean for resume_after_s, as after any stop."""

    def __init__(
        self,
        settings: PhaseSettings,
        chemistry: ChemistrySpec,
        resume: Phase = Phase.BULK,
        absorption_completed: bool = False,
    ) -> None:
        self.settings = settings
        self.chemistry = chemistry
        self.phase = Phase.STOPPED
        self.resume_phase: Phase = Phase.BULK if resume is Phase.STOPPED else resume
        # The last absorption (or full charge) ended by its timer rather than its cap: only
        # then may a large spread in float send the battery back to bulk (else the spread
        # that capped it would loop bulk -> absorption -> float -> bulk).
        self.absorption_completed = absorption_completed
        self._clean_s = 0.0
        self._at_max_s = 0.0
        self._timer_s = 0.0
        self._total_s = 0.0
        self._reached = False
        self._low_soc_s = 0.0
        self._spread_s = 0.0
        # The allowed highest cell voltage of each phase (STOPPED: see allowed_max), looked
        # up rather than tested phase by phase (two asks a step).
        self._max_v = {phase: chemistry.charge_target_v for phase in Phase}
        self._max_v[Phase.FULL_CHARGE] = chemistry.full_charge_v
        self._max_v[Phase.FLOAT] = chemistry.float_v

    def allowed_max(self, phase: Phase | None = None) -> float:
        """Allowed highest cell voltage (V) of a phase (default: the present one; STOPPED
        uses the phase it will resume into)."""
        phase = self.phase if phase is None else phase
        if phase is Phase.STOPPED:
            phase = self.resume_phase
        return self._max_v[phase]

    def at_max_voltage(
        self, max_cell: float, current_c: float, cvl_at_ceiling: bool, cvl_held: bool = False
    ) -> bool:
        """The battery is at the phase's maximum voltage: its highest cell within
        at_max_margin_v of the allowed maximum; or the charge current tapered below
        tail_current_c (C-rate) with the CVL at its ceiling and the highest cell within three
        margins (an inverter whose voltmeter reads high holds the pack lower), or with the
        CVL held a step below by the highest cell (`cvl_held`, CvlController.held_by_cell:
        the next step would take it past the maximum, so whole steps bring it no closer)."""
        cfg = self.settings
        allowed = self.allowed_max()
        if max_cell >= allowed - cfg.at_max_margin_v:
            return True
        if not current_c <= cfg.tail_current_c:  # NaN too
            return False
        return cvl_held or (cvl_at_ceiling and max_cell >= allowed - 3 * cfg.at_max_margin_v)

    def step(self, inputs: PhaseInputs, dt: float) -> PhaseStep:
        """Advance by `dt` seconds of counted time."""
        cfg = self.settings
        if inputs.stop:
            if self.phase is not Phase.STOPPED:
                self.resume_phase = self.phase
                self.phase = Phase.STOPPED
            self._clean_s = 0.0
            return _STAY[Phase.STOPPED]
        if self.phase is Phase.STOPPED:
            self._clean_s += dt
            if self._clean_s < cfg.resume_after_s:
                return _STAY[Phase.STOPPED]
            return self._enter(self.resume_phase, f"resumed in {self.resume_phase}")
        if inputs.full_charge_wanted and self.phase is not Phase.FULL_CHARGE:
            return self._enter(Phase.FULL_CHARGE, "full charge started")
        at_max = inputs.at_max
        if self.phase is Phase.BULK:
            self._at_max_s = self._at_max_s + dt if at_max else 0.0
            if self._at_max_s >= cfg.absorption_entry_s and at_max:
                return self._enter(Phase.ABSORPTION, "highest cell at the charge target")
        elif self.phase is Phase.ABSORPTION:
            return self._hold(inputs, at_max, dt, cfg.absorption_time_s, cfg.absorption_max_s)
        elif self.phase is Phase.FULL_CHARGE:
            return self._hold(
                inputs, at_max, dt, cfg.full_charge_hold_s, cfg.full_charge_max_hold_s
            )
        elif self.phase is Phase.FLOAT:
            return self._float(inputs, dt)
        return _STAY[self.phase]

    def _hold(
        self, inputs: PhaseInputs, at_max: bool, dt: float, needed: float, cap: float
    ) -> PhaseStep:
        """Absorption or full-charge hold: the timer runs at max voltage with a small
        spread, restarts on a large spread, pauses in between; the cap ends it anyway."""
        cfg = self.settings
        full = self.phase is Phase.FULL_CHARGE
        # A full charge may start at night: its cap counts from reaching the voltage.
        self._reached = self._reached or at_max or not full
        if self._reached:
            self._total_s += dt
        if inputs.spread > cfg.spread_restart_v:
            self._timer_s = 0.0
        elif at_max and inputs.spread <= cfg.spread_start_v:
            self._timer_s += dt
        name = "full charge" if full else "absorption"
        if self._timer_s >= needed:
            step = self._enter(Phase.FLOAT, f"{name} complete", full_charge_done=full)
            self.absorption_completed = True
            return step
        if self._total_s >= cap:
            step = self._enter(
                Phase.FLOAT, f"{name} capped after {cap:.0f} s", full_charge_done=full
            )
            self.absorption_completed = False
            return step
        return _STAY[self.phase]

    def _float(self, inputs: PhaseInputs, dt: float) -> PhaseStep:
        cfg = self.settings
        low_soc = inputs.soc < cfg.rebulk_soc
        spread = self.absorption_completed and inputs.spread >= cfg.rebulk_spread_v
        self._low_soc_s = self._low_soc_s + dt if low_soc else 0.0
        self._spread_s = self._spread_s + dt if spread else 0.0
        if low_soc and self._low_soc_s >= cfg.rebulk_delay_s:
            return self._enter(Phase.BULK, f"SoC {inputs.soc:.0f} % below {cfg.rebulk_soc:.0f} %")
        if spread and self._spread_s >= cfg.rebulk_delay_s:
            return self._enter(Phase.BULK, f"cell spread {1000 * inputs.spread:.0f} mV")
        return _STAY[self.phase]

    def _enter(self, phase: Phase, note: str, full_charge_done: bool = False) -> PhaseStep:
        self.phase = self.resume_phase = phase
        self._at_max_s = self._timer_s = self._total_s = 0.0
        self._low_soc_s = self._spread_s = 0.0
        self._reached = False
        return PhaseStep(phase, full_charge_done=full_charge_done, note=note)
