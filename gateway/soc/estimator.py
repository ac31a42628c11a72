"""State of charge: coulomb counting, recalibrated at the ends of the charge.

The SoC is counted from the pack current (trapezoid rule, charge efficiency applied to the
charge put in) against the usable capacity (rated x learned health). It is set from the
open-circuit voltage when the pack has rested and no trusted value exists, to 100 % at the
end of a charge and to 0 % when the lowest cell stays at the empty voltage. Between a full
and an empty point the discharged charge measures the usable capacity: that is the learned
health (SoH).

Pure logic: `SocEstimator.update(snapshot)` takes the battery snapshot (time included) and
returns the new `SocState`, which the service persists (`to_dict` / `from_dict`).
"""

from __future__ import annotations

import math
from dataclasses import replace

from gateway.contracts.chemistry import ChemistrySpec
from gateway.contracts.decision import Phase
from gateway.contracts.snapshot import BatterySnapshot
from gateway.soc.settings import SocSettings
from gateway.soc.state import SocSource, SocState

# The OCV tables resolve a cell's charge near full only above this (%): below, the curve is
# flat (LFP) and a few millivolts of current or hysteresis would be many percent.
TOP_RESOLVED_SOC = 95.0


class SocEstimator:
    """Counts the state of charge from battery snapshots.

    `chemistry` gives the charge target and empty voltages and the OCV table: pass the chemistry
    the charge strategy uses (with the user's voltage overrides applied).
    """

    def __init__(
        self, settings: SocSettings, chemistry: ChemistrySpec, state: SocState | None = None
    ) -> None:
        self.settings = settings
        self.chemistry = chemistry
        self._state = state if state is not None else SocState()
        self._last: tuple[float, float] | None = None  # (time, current) of the last sample
        self._rest_s = 0.0
        self._full_s = 0.0
        self._empty_s = 0.0
        self._phase: Phase | None = None

    @property
    def state(self) -> SocState:
        """The present state (persist it with to_dict())."""
        return self._state

    def set_soc(self, percent: float) -> SocState:
        """The user sets the SoC (%). It counts on from there; capacity learning restarts."""
        if not (math.isfinite(percent) and 0.0 <= percent <= 100.0):
            raise ValueError(f"SoC {percent!r} is not within 0..100 %")
        self._state = replace(self._state, soc=percent, source=SocSource.USER, since_full=None)
        return self._state

    def follow(self, percent: float) -> SocState:
        """The SoC the packs' own BMSes count (a battery of packs that report no cell
        voltages: no voltage here to calibrate on). Counting and cycles go on as before."""
        if not (math.isfinite(percent) and 0.0 <= percent <= 100.0):
            raise ValueError(f"SoC {percent!r} is not within 0..100 %")
        self._state = replace(self._state, soc=percent, source=SocSource.PACKS)
        return self._state

    def request_ocv(self) -> SocState:
        """The user asks for the SoC from the rested voltage: it is set at the next rest
        (at once if the pack has rested long enough already)."""
        if self._state.source is not SocSource.NONE:
            self._state = replace(self._state, source=SocSource.ESTIMATE)
        return self._state

    def update(self, snapshot: BatterySnapshot, phase: Phase | None = None) -> SocState:
        """Count one snapshot and return the new state.

        `phase` is the charge phase the strategy decided last: entering FLOAT from
        ABSORPTION or FULL_CHARGE marks the end of a charge (100 %). Invalid snapshots, or
        ones without a usable current or capacity, change nothing.
        """
        entered_float = phase is Phase.FLOAT and self._phase in (
            Phase.ABSORPTION,
            Phase.FULL_CHARGE,
        )
        if phase is not None:
            self._phase = phase
        if not _usable(snapshot):
            self._rest_s = self._full_s = self._empty_s = 0.0
            return self._state
        if self._state.source is SocSource.NONE:
            self._start(snapshot)
            return self._state
        dt = self._count(snapshot)
        self._recalibrate(snapshot, dt, entered_float)
        return self._state

    # ------------------------------------------------------------------ internals

    def _start(self, snap: BatterySnapshot) -> None:
        """First data without a stored state: a rough SoC from the voltage under load."""
        soc = self.chemistry.soc_from_ocv(_mean_cell(snap))
        if math.isnan(soc):
            return
        self._state = replace(self._state, soc=soc, source=SocSource.ESTIMATE)
        self._last = (snap.time, snap.current)

    def _count(self, snap: BatterySnapshot) -> float:
        """Integrate the current since the last sample; returns the counted dt (s)."""
        now, current = snap.time, snap.current
        last, self._last = self._last, (now, current)
        if last is None:
            return 0.0
        st, cfg = self._state, self.settings
        elapsed = now - last[0]
        dt = min(max(elapsed, 0.0), cfg.max_step_s)
        ah = 0.5 * (current + last[1]) * dt / 3600.0
        if ah > 0:
            ah *= cfg.charge_efficiency
        rated = snap.capacity_ah
        soc = st.soc + 100.0 * ah / (rated * st.health)
        self._state = replace(
            st,
            soc=min(100.0, max(0.0, soc)),
            cycles=st.cycles + max(0.0, -ah) / rated,
            since_full=None if st.since_full is None else st.since_full - ah / rated,
            uncounted_s=st.uncounted_s + max(0.0, elapsed - dt),
        )
        return dt

    def _recalibrate(self, snap: BatterySnapshot, dt: float, entered_float: bool) -> None:
        cfg, prof = self.settings, self.chemistry
        current_c = snap.current / snap.capacity_ah
        rested = abs(current_c) < cfg.rest_current_c
        self._rest_s = self._rest_s + dt if rested else 0.0
        at_top = (
            snap.max_cell >= prof.charge_target_v - cfg.full_margin_v
            and -cfg.rest_current_c < current_c < cfg.full_tail_current_c
        )
        self._full_s = self._full_s + dt if at_top else 0.0
        at_bottom = snap.min_cell <= prof.empty_cell_v and current_c < cfg.rest_current_c
        self._empty_s = self._empty_s + dt if at_bottom else 0.0

        if entered_float or (at_top and self._full_s >= cfg.full_hold_s):
            self._set_full(snap.time, snap.min_cell)
        elif at_bottom and self._empty_s >= cfg.empty_hold_s:
            self._set_empty(snap.time)
        elif not self._state.trusted and self._rest_s >= cfg.rest_time_s:
            soc = prof.soc_from_ocv(_mean_cell(snap))
            if not math.isnan(soc):
                self._state = replace(self._state, soc=soc, source=SocSource.OCV)
        elif -cfg.low_end_current_c <= current_c < cfg.rest_current_c:
            self._low_end(snap.min_cell, dt)

    def _set_full(self, now: float, min_cell: float) -> None:
        """The end of a charge: 100 %, less what the emptiest cell still lacks.

        The charge ends when the highest cell is at its target; a series string holds only
        what its emptiest cell holds, and a cell still below the top of its OCV curve is not
        full. The curve resolves only its steep top, so the value stays within
        TOP_RESOLVED_SOC..100 % (it also never turns an end of charge into a reason to
        charge again)."""
        soc = 100.0
        if math.isfinite(min_cell):
            lacking = self.chemistry.soc_from_ocv(min_cell)
            if not math.isnan(lacking):
                soc = min(100.0, max(TOP_RESOLVED_SOC, lacking))
        self._state = replace(
            self._state,
            soc=soc,
            source=SocSource.FULL,
            since_full=0.0,
            uncounted_s=0.0,
            last_full=now,
        )

    def _low_end(self, min_cell: float, dt: float) -> None:
        """Near empty, pull the count toward the SoC the lowest cell's voltage says.

        The battery is as empty as its emptiest cell, and below about 10 % the OCV curve is
        steep: a few millivolts are a percent. The count, against the rated capacity, drifts
        there by the capacity the cells really have; the discharge derating keeps a loaded
        cell above the empty voltage, so the 0 % point alone rarely comes. A light current
        reads a little below the OCV: the correction errs on the empty side."""
        cfg = self.settings
        if cfg.low_end_soc <= 0.0 or not math.isfinite(min_cell):
            return
        if min_cell > self.chemistry.ocv.at(cfg.low_end_soc):
            return
        target = self.chemistry.soc_from_ocv(min_cell)
        if math.isnan(target):
            return
        soc = self._state.soc
        soc += (target - soc) * min(1.0, dt / cfg.low_end_tau_s)
        self._state = replace(self._state, soc=min(100.0, max(0.0, soc)))

    def _set_empty(self, now: float) -> None:
        st, cfg = self._state, self.settings
        health, learned = st.health, st.learned
        measured = st.since_full
        if (
            measured is not None
            and st.uncounted_s <= cfg.learn_max_uncounted_s
            and cfg.learn_min_fraction <= measured <= cfg.learn_max_fraction
        ):
            health += cfg.learn_weight * (measured - health)
            learned += 1
        self._state = replace(
            st,
            soc=0.0,
            source=SocSource.EMPTY,
            health=health,
            learned=learned,
            since_full=None,
            last_empty=now,
        )


def _usable(snap: BatterySnapshot) -> bool:
    """Valid data with a current and a capacity that can be counted."""
    return (
        snap.valid
        and math.isfinite(snap.current)
        and math.isfinite(snap.capacity_ah)
        and snap.capacity_ah > 0.0
        and snap.cells_in_series > 0
        and math.isfinite(snap.time)
    )


def _mean_cell(snap: BatterySnapshot) -> float:
    """Mean cell voltage: pack voltage over cells, else the middle of min and max."""
    if math.isfinite(snap.voltage) and snap.voltage > 0:
        return snap.voltage / snap.cells_in_series
    return 0.5 * (snap.min_cell + snap.max_cell)
