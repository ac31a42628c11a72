"""Settings of the SoC estimator (the `soc` section of the configuration)."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


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
        description="rest needed before the open-circuit voltage is used for the SoC (s)",
    )
    ocv_voltage_error_v: float = Field(
        0.010,
        gt=0.0,
        le=0.1,
        description="how far a rested cell's voltage may be from the OCV table: measurement, "
        "hysteresis between charge and discharge, relaxation not finished (V per cell)",
    )
    ocv_max_error: float = Field(
        5.0,
        gt=0.0,
        le=50.0,
        description="the rested voltage corrects the SoC only where the OCV curve is steep "
        "enough that ocv_voltage_error_v is at most this many points; the slope threshold is "
        "their ratio (default 10 mV / 5 % = 2 mV per %) (points of SoC)",
    )
    estimate_voltage_error_v: float = Field(
        0.05,
        gt=0.0,
        le=0.5,
        description="how far the first voltage, read under an unknown load, may be from the "
        "OCV: gives the uncertainty of the first, untrusted estimate (V per cell)",
    )
    count_error: float = Field(
        0.01,
        ge=0.0,
        le=0.2,
        description="share of the counted charge that may be wrong (current sensor gain): "
        "the uncertainty grows by it (fraction)",
    )
    current_offset_error_c: float = Field(
        0.0005,
        ge=0.0,
        le=0.05,
        description="current-sensor offset that may remain after learning (C-rate): the "
        "uncertainty grows by it with time",
    )
    offset_settle_s: float = Field(
        30.0,
        ge=0.0,
        description="a string's relay open this long: its sensor reading is its offset (s)",
    )
    offset_tau_s: float = Field(
        300.0,
        gt=0.0,
        description="time constant with which the learned current offset follows the "
        "readings of a string whose relay is open (s)",
    )
    offset_max_c: float = Field(
        0.02,
        gt=0.0,
        le=0.2,
        description="a reading above this with the relay open is a broken sensor, not an "
        "offset: not learned (C-rate)",
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
        description="weight of a full-span (100 points) capacity measurement in the learned "
        "capacity; a shorter span weighs in proportion (fraction; 1 = take it as is)",
    )
    learn_min_span: float = Field(
        40.0,
        ge=10.0,
        le=100.0,
        description="two trusted points at least this far apart measure the capacity: the "
        "charge counted between them over their SoC difference (points of SoC)",
    )
    learn_max_uncounted_s: float = Field(
        600.0,
        ge=0.0,
        description="a span between two trusted points with more time than this not counted "
        "(gaps, clock jumps) does not teach the capacity (s)",
    )

    @model_validator(mode="after")
    def _rest_below_tail(self) -> Self:
        if self.rest_current_c >= self.full_tail_current_c:
            raise ValueError("rest_current_c must be below full_tail_current_c")
        return self
