"""Settings of the charge strategy: currents, phases, CVL controller, derating, limits,
balancing, relays, fail-safe. Voltages are per cell unless a description says otherwise."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.contracts.chemistry import ChemistrySpec, Curve

Points = tuple[tuple[float, float], ...]


# The CVL's resolution on the wire (V pack): the scale of ChargeVoltageLimit in 0x351 of
# dbc/pylontech_lv.dbc, which every inverter profile sends (tests/strategy/test_cvl.py checks
# it against the DBC). The controller steps by it so that each change it makes is one the
# inverter sees.
CVL_RESOLUTION_V = 0.1


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class CellVoltageOverrides(_Section):
    """Per-cell voltages that replace the chemistry's defaults (leave out to keep them)."""

    charge_target_v: float | None = Field(
        None, gt=0, description="allowed highest cell in bulk and absorption (V per cell)"
    )
    full_charge_v: float | None = Field(
        None, gt=0, description="allowed highest cell in a full charge (V per cell)"
    )
    float_v: float | None = Field(
        None, gt=0, description="allowed highest cell in float (V per cell)"
    )
    balance_start_v: float | None = Field(
        None, gt=0, description="balance only while the highest cell is at or above (V per cell)"
    )
    min_cell_v: float | None = Field(
        None, gt=0, description="normal lowest cell: discharging stops here (V per cell)"
    )
    empty_cell_v: float | None = Field(
        None, gt=0, description="lowest cell at or below this long enough: SoC 0 % (V per cell)"
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        chain = [
            v
            for v in (
                self.min_cell_v,
                self.empty_cell_v,
                self.float_v,
                self.charge_target_v,
                self.full_charge_v,
            )
            if v is not None
        ]
        if any(b <= a for a, b in itertools.pairwise(chain)):
            raise ValueError(
                "cell voltages must rise: min_cell_v < empty_cell_v < float_v < "
                "charge_target_v < full_charge_v"
            )
        return self


class DeratingOverrides(_Section):
    """Derating tables that replace the chemistry's: (x, fraction of max current) points."""

    charge_by_cell: Points | None = Field(
        None,
        description="charge current by highest cell: x = cell voltage minus the phase's "
        "allowed maximum (V), fraction 0..1",
    )
    discharge_by_cell: Points | None = Field(
        None, description="discharge current by lowest cell: x = cell voltage (V), fraction 0..1"
    )
    charge_by_temp: Points | None = Field(
        None, description="charge current by cell temperature: x = degC, fraction 0..1"
    )
    discharge_by_temp: Points | None = Field(
        None, description="discharge current by cell temperature: x = degC, fraction 0..1"
    )
    charge_by_soc: Points | None = Field(
        None, description="charge current by SoC (when enabled): x = %, fraction 0..1"
    )

    @field_validator("*")
    @classmethod
    def _curve(cls, value: Points | None) -> Points | None:
        if value is not None:
            Curve(value)
            if any(not 0.0 <= y <= 1.0 for _, y in value):
                raise ValueError("derating fractions must be within 0..1")
        return value


class PhaseSettings(_Section):
    """Charge phases: bulk, absorption, float, full charge."""

    at_max_margin_v: float = Field(
        0.015,
        gt=0,
        le=0.1,
        description="highest cell within this of the allowed maximum counts as at maximum "
        "voltage (V per cell)",
    )
    tail_current_c: float = Field(
        0.02,
        gt=0,
        le=0.2,
        description="charge current below this (C-rate) with the CVL at its ceiling, or held "
        "a step below by the highest cell, also counts as at maximum voltage",
    )
    absorption_entry_s: float = Field(
        10.0, ge=0, description="time at maximum voltage before bulk turns to absorption (s)"
    )
    absorption_time_s: float = Field(
        900.0,
        gt=0,
        description="absorption timer: time at maximum voltage with a small cell spread (s)",
    )
    absorption_max_s: float = Field(
        7200.0,
        gt=0,
        description="longest absorption, whatever the spread: then float anyway (s)",
    )
    spread_start_v: float = Field(
        0.010, gt=0, description="the absorption timer runs while the cell spread is at most (V)"
    )
    spread_restart_v: float = Field(
        0.013, gt=0, description="the absorption timer restarts when the spread exceeds (V)"
    )
    float_ramp_v_per_s: float = Field(
        0.001,
        gt=0,
        le=0.1,
        description="rate at which the allowed cell maximum falls to float (V per cell per s)",
    )
    rebulk_soc: float = Field(
        80.0, ge=0, le=100, description="float returns to bulk when SoC falls below (%)"
    )
    rebulk_spread_v: float = Field(
        0.080,
        gt=0,
        description="float returns to bulk when the cell spread reaches this, after an "
        "absorption that completed (V)",
    )
    rebulk_delay_s: float = Field(
        60.0, ge=0, description="a rebulk condition must hold this long (s)"
    )
    full_charge_interval_days: float = Field(
        14.0,
        ge=0,
        description="periodic full charge (SoC reset, top balance) every this many days "
        "(days; 0 = never)",
    )
    full_charge_hold_s: float = Field(
        1800.0,
        gt=0,
        description="full charge: time at the full-charge voltage with a small spread (s)",
    )
    full_charge_max_hold_s: float = Field(
        14400.0,
        gt=0,
        description="full charge: longest time once the full-charge voltage is reached (s)",
    )
    resume_after_s: float = Field(
        10.0,
        ge=0,
        description="valid data without faults needed before a stopped battery resumes (s)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not self.spread_start_v < self.spread_restart_v < self.rebulk_spread_v:
            raise ValueError("need spread_start_v < spread_restart_v < rebulk_spread_v")
        if self.absorption_time_s > self.absorption_max_s:
            raise ValueError("absorption_time_s must not exceed absorption_max_s")
        if self.full_charge_hold_s > self.full_charge_max_hold_s:
            raise ValueError("full_charge_hold_s must not exceed full_charge_max_hold_s")
        return self


class CvlSettings(_Section):
    """The charge voltage limit controller (see docs/strategy.md)."""

    margin_v: float = Field(
        0.010,
        ge=0,
        le=0.1,
        description="the highest cell is regulated this far below its allowed maximum (V per cell)",
    )
    deadband_v: float = Field(
        0.002,
        ge=0,
        le=0.05,
        description="highest-cell error within this moves nothing (V per cell)",
    )
    gain_per_s: float = Field(
        0.05,
        gt=0,
        le=1.0,
        description="integral gain: CVL change per second per volt of highest-cell error "
        "(V pack / V cell / s)",
    )
    ramp_v_per_s: float = Field(
        0.0005,
        gt=0,
        le=0.01,
        description="fastest slow-loop CVL rise (V per cell per s)",
    )
    fall_v_per_s: float = Field(
        0.002,
        gt=0,
        le=0.05,
        description="fastest slow-loop CVL fall (V per cell per s; faster than the rise: the "
        "top of the LFP curve is steep; the over-voltage cut is not limited)",
    )
    hold_s: float = Field(
        60.0, ge=0, description="after any CVL decrease, no increase for this long (s)"
    )
    step_v: float = Field(
        CVL_RESOLUTION_V,
        gt=0,
        le=1.0,
        description="CVL output resolution (V pack; default: the CVL field of the inverter "
        "protocol)",
    )
    band_v: float = Field(
        0.010,
        gt=0,
        le=0.1,
        description="cells within this of the highest count as rising with it: they set the "
        "loop gain, the cut and the wind-up limit (V)",
    )


class LimitSettings(_Section):
    """Anti-oscillation of the current limits."""

    hold_s: float = Field(
        30.0, ge=0, description="a higher target must persist this long before it ramps (s)"
    )
    ramp_a_per_s: float = Field(
        5.0, gt=0, le=1000, description="fastest increase of CCL and DCL (A/s)"
    )
    ramp_step_s: float = Field(
        10.0,
        ge=0,
        le=600,
        description="a ramp moves in steps this far apart, each of ramp_a_per_s x this: "
        "a recovery from 0 to 50 A is one change of the limits, not ten (0 = every step; "
        "multis misbehave when limits change often) (s)",
    )
    min_step_a: float = Field(
        1.0,
        ge=0,
        description="changes smaller than this are ignored, except a stop to 0 (A)",
    )
    recover_fraction: float = Field(
        0.05,
        ge=0,
        le=1,
        description="a limit at 0 recovers only once its target reaches this fraction of "
        "the maximum (fraction)",
    )
    relax_after_s: float = Field(
        900.0,
        ge=0,
        le=7200,
        description="an increase waits at least this long after the last change (a "
        "decrease or the end of a ramp; a fail-safe stop, a phase change or a string joining "
        "clears the wait): "
        "the shortest down-up reversal (s)",
    )
    relax_max_s: float = Field(
        3600.0,
        ge=0,
        le=14400,
        description="an increase that a decrease reverses within relax_after_s was a failed "
        "try: the next increase waits twice as long, and so on up to this (s); an increase "
        "that holds, a phase change or a stop resets the wait to relax_after_s",
    )
    max_increases_per_hour: int = Field(
        30,
        ge=1,
        description="at most this many increases (ramp starts) per limit and hour; beyond, "
        "increases wait (decreases never do), so a limit cannot oscillate faster",
    )


class ChargeLimitSettings(_Section):
    """Charge current above the CCL sent: alarm, and the CVL brings it down (chargelimit.py)."""

    tolerance_a: float = Field(
        0.5,
        ge=0,
        description="charge current up to this above the CCL is tolerated (A; a Multi "
        "trickles 0.4-0.6 A at CCL 0 in the field, and the CVL then stops it)",
    )
    tolerance_fraction: float = Field(
        0.05,
        ge=0,
        le=1,
        description="... plus this fraction of the CCL (fraction; below a 10 % overshoot)",
    )
    follow_s: float = Field(
        10.0,
        ge=0,
        le=120,
        description="the highest CCL sent within this long counts: an inverter follows a "
        "lower limit late (s)",
    )
    delay_s: float = Field(
        30.0,
        gt=0,
        description="current above the CCL this long (leaky count) raises HIGH_CHARGE_CURRENT "
        "and makes the CVL bring it down (s)",
    )
    release_s: float = Field(
        600.0,
        ge=0,
        description="the condition clears after the current stayed within the CCL this long; "
        "until then the CVL does not rise (s)",
    )


class DeratingSettings(_Section):
    """Current derating by node flags and SoC."""

    info_factor: float = Field(
        0.5,
        ge=0,
        le=1,
        description="current fraction while a node reports an information flag (MOL) for "
        "that direction (fraction)",
    )
    warning_factor: float = Field(
        0.25,
        ge=0,
        le=1,
        description="current fraction while a node reports a warning (RSL) that does not stop "
        "the direction outright (fraction)",
    )
    by_soc: bool = Field(False, description="also derate charging by SoC (charge_by_soc table)")
    level_ratio: float = Field(
        0.7,
        gt=0,
        le=1,
        description="the cell-voltage factors move between levels: this ratio to a whole "
        "power (1, 0.7, 0.49...), so a cell creeping up its curve in 1 mV steps changes the "
        "limit a few times, not at every step (fraction; 1 = follow the table exactly)",
    )
    tables: DeratingOverrides = Field(
        default_factory=DeratingOverrides, description="derating table overrides"
    )


class BalanceSettings(_Section):
    """Which cells the nodes bleed."""

    enabled: bool = Field(True, description="balance at all")
    threshold_v: float = Field(
        0.010,
        gt=0,
        le=0.2,
        description="bleed cells more than this above the lowest cell of their string (V)",
    )
    release_v: float = Field(
        0.005,
        ge=0,
        le=0.2,
        description="a bleeding cell stops once within this of the lowest cell (V)",
    )
    max_cells_per_node: int = Field(
        4, ge=1, le=64, description="at most this many bleeding cells per node"
    )
    avoid_adjacent: bool = Field(
        False,
        description="never bleed two neighbouring cells of a node at once (some balancer "
        "circuits cannot)",
    )
    only_when_idle: bool = Field(False, description="balance only when the battery is idle")
    idle_current_a: float = Field(
        2.0, gt=0, description="battery current (either direction) below this counts as idle (A)"
    )
    idle_time_s: float = Field(1800.0, ge=0, description="idle this long before balancing (s)")
    only_in_absorption_or_float: bool = Field(
        False, description="balance only in absorption, full charge and float"
    )
    charge_current_fraction: float = Field(
        1.0,
        ge=0,
        le=1,
        description="charge current limit fraction while any cell bleeds (fraction; 1 = no "
        "reduction)",
    )
    charge_based: bool = Field(
        True,
        description="charge-based balancing: at each top, estimate the charge each cell holds "
        "above its string's lowest and bleed it over the rest of the day, discharge and night "
        "included (docs/strategy.md, Balancing); off: top balancing only",
    )
    bleed_current_a: float = Field(
        0.1,
        gt=0,
        le=5,
        description="the nodes' balancer current per cell, at a cell's usual voltage (A): the "
        "charge account counts bleeding time with it (too high a figure bleeds less, never "
        "more)",
    )
    estimate_current_c: float = Field(
        0.02,
        gt=0,
        le=0.2,
        description="estimate the cells' charge at the top only while the string's current is "
        "at most this (C: A per Ah)",
    )
    estimate_settle_s: float = Field(
        120.0,
        ge=0,
        le=3600,
        description="... and the highest cell has been at the top at that current this long (s)",
    )
    estimate_slope_mv_per_pct: float = Field(
        5.0,
        gt=0,
        le=100,
        description="read a cell's SoC from its voltage only where the OCV table rises at least "
        "this steeply; a cell below counts as at that point's SoC (mV per % SoC; LFP: from "
        "3.348 V, 98 %)",
    )
    estimate_margin_v: float = Field(
        0.02,
        ge=0,
        le=0.2,
        description="estimate only while the string's highest cell is at least this above the "
        "point where the OCV table gets steep (V; LFP: from 3.368 V; a plateau cell reads up to "
        "half the 15 mV OCV hysteresis high)",
    )
    estimate_gain: float = Field(
        0.8,
        gt=0,
        le=1,
        description="share of the estimated excess charge the account bleeds (fraction; below 1 "
        "covers a lowest cell weaker than the rated capacity)",
    )
    saturated_excess_c: float = Field(
        0.025,
        ge=0,
        le=0.03,
        description="a cell at the very top of the curve while its string's lowest is on the flat "
        "part may hold any charge above the estimate: its account is at least this share of "
        "the capacity, corrected at the next top (C; 0 = the estimate only)",
    )
    account_min_soc: float = Field(
        30.0,
        ge=0,
        le=100,
        description="bleed from the charge account only while the battery's SoC is at least "
        "this (%)",
    )
    account_floor_v: float | None = Field(
        None,
        gt=0,
        description="floor sent with requests from the charge account: the node stops a cell at "
        "or below it (V; default the chemistry's minimum cell voltage + 0.2 V, LFP 3.10 V)",
    )

    @model_validator(mode="after")
    def _release_below_threshold(self) -> Self:
        if self.release_v >= self.threshold_v:
            raise ValueError("release_v must be below threshold_v")
        return self


class RelaySettings(_Section):
    """When nodes are asked to close or open their relay."""

    auto_close: bool = Field(
        True, description="close healthy nodes by itself (else only on a user request)"
    )
    parallel_window_v: float = Field(
        1.0,
        gt=0,
        description="a parallel string closes only within this of the bus voltage (V)",
    )
    parallel_window_fraction: float = Field(
        0.005,
        gt=0,
        le=0.1,
        description="... and within this fraction of the bus voltage (fraction; the smaller "
        "window applies)",
    )
    open_after_s: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="battery data stale, or a node silent, this long: open the relays (s)",
    )


class AlarmSettings(_Section):
    """The gateway's own alarm checks."""

    imbalance_v: float = Field(
        0.10, gt=0, description="cell spread at which the imbalance warning rises (V)"
    )
    imbalance_release_v: float = Field(
        0.08, gt=0, description="cell spread below which the imbalance warning clears (V)"
    )
    imbalance_delay_s: float = Field(
        60.0, ge=0, description="the spread must persist this long to warn (s)"
    )

    @model_validator(mode="after")
    def _release_below(self) -> Self:
        if self.imbalance_release_v >= self.imbalance_v:
            raise ValueError("imbalance_release_v must be below imbalance_v")
        return self


class StrategySettings(_Section):
    """The charge strategy: everything between the battery snapshot and the limits."""

    max_charge_current_a: float = Field(
        100.0, gt=0, le=100_000, description="charge current limit with nothing derating (A)"
    )
    max_discharge_current_a: float = Field(
        100.0, gt=0, le=100_000, description="discharge current limit with nothing derating (A)"
    )
    dvl_cell_v: float | None = Field(
        None,
        gt=0,
        description="discharge voltage limit per cell (V per cell; default: the chemistry's "
        "min_cell_v)",
    )
    data_timeout_s: float = Field(
        5.0,
        gt=0,
        le=60,
        description="battery data older than this stops charging and discharging (s)",
    )
    max_step_s: float = Field(
        5.0,
        gt=0,
        le=60,
        description="longest interval between two steps that timers count (s); protects "
        "timers from clock jumps",
    )
    force_charge_on_soc: float = Field(
        5.0, ge=0, le=100, description="ask the inverter to force-charge at or below (%)"
    )
    force_charge_off_soc: float = Field(
        10.0, ge=0, le=100, description="stop asking for a force charge at or above (%)"
    )
    voltages: CellVoltageOverrides = Field(
        default_factory=CellVoltageOverrides,
        description="per-cell voltage overrides of the chemistry defaults",
    )
    phases: PhaseSettings = Field(default_factory=PhaseSettings, description="charge phases")
    cvl: CvlSettings = Field(default_factory=CvlSettings, description="CVL controller")
    limits: LimitSettings = Field(
        default_factory=LimitSettings, description="anti-oscillation of CCL and DCL"
    )
    charge_limit: ChargeLimitSettings = Field(
        default_factory=ChargeLimitSettings,
        description="charge current above the CCL (inverters that ignore or overshoot it)",
    )
    derating: DeratingSettings = Field(
        default_factory=DeratingSettings, description="current derating"
    )
    balancing: BalanceSettings = Field(default_factory=BalanceSettings, description="balancing")
    relays: RelaySettings = Field(default_factory=RelaySettings, description="relay policy")
    alarms: AlarmSettings = Field(default_factory=AlarmSettings, description="own alarm checks")

    @model_validator(mode="after")
    def _force_charge_hysteresis(self) -> Self:
        if self.force_charge_on_soc >= self.force_charge_off_soc:
            raise ValueError("force_charge_on_soc must be below force_charge_off_soc")
        return self

    def apply(self, chemistry: ChemistrySpec) -> ChemistrySpec:
        """The chemistry with these voltage and table overrides (ValueError when the
        result is inconsistent, e.g. float_v not below charge_target_v)."""
        changes: dict[str, object] = {
            name: value for name, value in self.voltages.model_dump().items() if value is not None
        }
        for name, points in self.derating.tables.model_dump().items():
            if points is not None:
                changes[name] = Curve.of(*points)
        return dataclasses.replace(chemistry, **changes)  # type: ignore[arg-type]
