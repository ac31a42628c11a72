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
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.chemistry import ChemistryProfile
from gateway.limits import Phase
from gateway.snapshot import BatterySnapshot

STATE_VERSION = 1
# The OCV tables resolve a cell's charge near full only above this (%): below, the curve is
# flat (LFP) and a few millivolts of current or hysteresis would be many percent.
TOP_RESOLVED_SOC = 95.0


class SocSettings(BaseModel):
    """How the state of charge is counted and recalibrated."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    charge_efficiency: float = Field(
        0.995,
        gt=0.8,
        le=1.0,
        description="coulombic efficiency: share of the charge put in that can be taken out "
        "again (fraction, 1 = lossless)",
    )
    max_step_s: float = Field(
        5.0,
        gt=0.0,
        le=60.0,
        description="longest interval between two samples that is counted (s); a longer gap "
        "(pause, clock jump) counts as this long, so it cannot add or remove charge",
    )
    rest_current_c: float = Field(
        0.01,
        gt=0.0,
        le=0.1,
        description="pack current below this (C-rate: A per Ah of rated capacity) counts as "
        "resting, for the OCV start",
    )
    rest_time_s: float = Field(
        1800.0,
        ge=60.0,
        description="rest needed before the open-circuit voltage is trusted for the SoC (s)",
    )
    full_margin_v: float = Field(
        0.02,
        ge=0.0,
        le=0.1,
        description="highest cell within this of the charge target counts as at the target, "
        "for the 100 % recalibration (V per cell)",
    )
    full_tail_current_c: float = Field(
        0.04,
        gt=0.0,
        le=0.2,
        description="charge current below this (C-rate) at the charge target means full",
    )
    full_hold_s: float = Field(
        180.0,
        ge=0.0,
        description="time at the charge target with tail current before SoC is set to 100 % (s)",
    )
    empty_hold_s: float = Field(
        60.0,
        ge=0.0,
        description="time with the lowest cell at or below the empty voltage before SoC is "
        "set to 0 % (s)",
    )
    low_end_soc: float = Field(
        10.0,
        ge=0.0,
        le=30.0,
        description="below the OCV of this SoC the lowest cell's voltage corrects the counted "
        "SoC: the OCV curve is steep there, so the voltage says more than the count (%; 0 = "
        "never)",
    )
    low_end_current_c: float = Field(
        0.1,
        gt=0.0,
        le=0.5,
        description="the low-end correction applies while discharging at most this (C-rate), "
        "where the voltage under load is close to the open-circuit voltage",
    )
    low_end_tau_s: float = Field(
        600.0,
        gt=0.0,
        description="time constant with which the low-end correction pulls the counted SoC "
        "toward the lowest cell's voltage (s)",
    )
    learn_min_fraction: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="a measured usable capacity below this fraction of rated is implausible "
        "and ignored (fraction)",
    )
    learn_max_fraction: float = Field(
        1.2,
        ge=1.0,
        le=2.0,
        description="a measured usable capacity above this fraction of rated is implausible "
        "and ignored (fraction)",
    )
    learn_weight: float = Field(
        0.3,
        gt=0.0,
        le=1.0,
        description="weight of a new capacity measurement in the learned capacity (fraction; "
        "1 = take it as is)",
    )
    learn_max_uncounted_s: float = Field(
        600.0,
        ge=0.0,
        description="a full-to-empty cycle with more time than this not counted (gaps, clock "
        "jumps) does not teach the capacity (s)",
    )

    @model_validator(mode="after")
    def _rest_below_tail(self) -> Self:
        if self.rest_current_c >= self.full_tail_current_c:
            raise ValueError("rest_current_c must be below full_tail_current_c")
        return self


class SocSource(StrEnum):
    """Where the present SoC value comes from (and so whether it is trusted)."""

    NONE = "none"  # no battery data yet: a placeholder
    ESTIMATE = "estimate"  # from the voltage under load: rough, replaced after a rest
    OCV = "ocv"  # from the rested voltage, counted since
    FULL = "full"  # recalibrated to 100 % at the end of a charge, counted since
    EMPTY = "empty"  # recalibrated to 0 % at the empty voltage, counted since
    USER = "user"  # set by the user, counted since


_UNTRUSTED = frozenset({SocSource.NONE, SocSource.ESTIMATE})


@dataclass(frozen=True, slots=True)
class SocState:
    """The persisted part of the SoC estimate. JSON-safe through to_dict()/from_dict()."""

    soc: float = 50.0  # %, 0..100
    source: SocSource = SocSource.NONE
    health: float = 1.0  # learned usable capacity / rated capacity
    cycles: float = 0.0  # equivalent full cycles: discharged Ah / rated Ah
    # Net charge taken out since the last 100 % point, as a fraction of rated capacity;
    # None when there is no full point to measure from (or it was used or invalidated).
    since_full: float | None = None
    uncounted_s: float = 0.0  # time not counted since the last 100 % point (s)
    learned: int = 0  # capacity measurements accepted so far
    last_full: float | None = None  # time of the last 100 % recalibration
    last_empty: float | None = None  # time of the last 0 % recalibration

    @property
    def trusted(self) -> bool:
        """True when the SoC rests on a calibration point, a rested OCV or the user."""
        return self.source not in _UNTRUSTED

    @property
    def soh(self) -> float:
        """State of health (%): learned usable capacity over rated, at most 100."""
        return min(100.0, 100.0 * self.health)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict for persistence."""
        return {
            "version": STATE_VERSION,
            "soc": self.soc,
            "source": self.source.value,
            "health": self.health,
            "cycles": self.cycles,
            "since_full": self.since_full,
            "uncounted_s": self.uncounted_s,
            "learned": self.learned,
            "last_full": self.last_full,
            "last_empty": self.last_empty,
        }

    @classmethod
    def from_dict(cls, data: object) -> SocState:
        """The state from `to_dict()` output; ValueError for anything else."""
        if not isinstance(data, Mapping):
            raise ValueError(f"SoC state must be a mapping, not {type(data).__name__}")
        expected = set(cls().to_dict())
        if set(data) != expected:
            missing = sorted(expected - set(data))
            extra = sorted(str(k) for k in set(data) - expected)
            raise ValueError(f"SoC state keys wrong: missing {missing}, unknown {extra}")
        if data["version"] != STATE_VERSION:
            raise ValueError(f"SoC state version {data['version']!r} is not {STATE_VERSION}")
        try:
            source = SocSource(data["source"])
        except ValueError:
            raise ValueError(f"SoC state source {data['source']!r} unknown") from None
        learned = data["learned"]
        if isinstance(learned, bool) or not isinstance(learned, int) or learned < 0:
            raise ValueError(f"SoC state learned {learned!r} is not a count")
        return cls(
            soc=_number(data, "soc", 0.0, 100.0),
            source=source,
            health=_number(data, "health", 0.1, 2.0),
            cycles=_number(data, "cycles", 0.0, 1e7),
            since_full=_optional_number(data, "since_full", -10.0, 10.0),
            uncounted_s=_number(data, "uncounted_s", 0.0, math.inf),
            learned=learned,
            last_full=_optional_number(data, "last_full", -math.inf, math.inf),
            last_empty=_optional_number(data, "last_empty", -math.inf, math.inf),
        )


def _number(data: Mapping[str, object], key: str, low: float, high: float) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"SoC state {key} {value!r} is not a number")
    number = float(value)
    if not (math.isfinite(number) and low <= number <= high):
        raise ValueError(f"SoC state {key} {value!r} outside {low}..{high}")
    return number


def _optional_number(data: Mapping[str, object], key: str, low: float, high: float) -> float | None:
    return None if data[key] is None else _number(data, key, low, high)


class SocEstimator:
    """Counts the state of charge from battery snapshots.

    `profile` gives the charge target and empty voltages and the OCV table: pass the profile
    the charge strategy uses (with the user's voltage overrides applied).
    """

    def __init__(
        self, settings: SocSettings, profile: ChemistryProfile, state: SocState | None = None
    ) -> None:
        self.settings = settings
        self.profile = profile
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
        soc = self.profile.soc_from_ocv(_mean_cell(snap))
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
        cfg, prof = self.settings, self.profile
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
            lacking = self.profile.soc_from_ocv(min_cell)
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
        if min_cell > self.profile.ocv.at(cfg.low_end_soc):
            return
        target = self.profile.soc_from_ocv(min_cell)
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
