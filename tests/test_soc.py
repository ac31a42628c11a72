"""SoC estimator: counting, recalibration, capacity learning, persistence, robustness."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.contracts.chemistry import LFP
from gateway.contracts.decision import Phase
from gateway.contracts.snapshot import BatterySnapshot
from gateway.soc import SocEstimator, SocSettings, SocSource, SocState
from tests.strategy.battery import snapshot

CAP = 280.0
MID = (3.30,) * 16  # a resting LFP cell in the flat part: no calibration point


def snap(
    t: float,
    current: float,
    cells: tuple[float, ...] = MID,
    valid: bool | None = None,
) -> BatterySnapshot:
    return snapshot([cells], time=t, current=current, capacity_ah=CAP, valid=valid)


def estimator(soc: float = 50.0, **overrides: object) -> SocEstimator:
    est = SocEstimator(SocSettings.model_validate(overrides), LFP)
    est.set_soc(soc)
    return est


def test_settings_validation() -> None:
    with pytest.raises(ValueError):
        SocSettings(rest_current_c=0.05, full_tail_current_c=0.04)
    with pytest.raises(ValueError):
        SocSettings(charge_efficiency=1.2)
    with pytest.raises(ValueError):
        SocSettings(unknown=1)  # type: ignore[call-arg]


def test_coulomb_counting_matches_the_exact_integral() -> None:
    est = estimator(50.0, charge_efficiency=1.0)
    period, amp, bias, dt, total = 600.0, 50.0, 20.0, 0.5, 3600.0

    def current(t: float) -> float:
        return bias + amp * math.sin(2 * math.pi * t / period)

    t = 0.0
    while t <= total + 1e-9:
        est.update(snap(t, current(t)))
        t += dt
    exact_ah = (
        bias * total + amp * period / (2 * math.pi) * (1 - math.cos(2 * math.pi * total / period))
    ) / 3600
    assert est.state.soc == pytest.approx(50.0 + 100.0 * exact_ah / CAP, abs=1e-4)


def test_charge_efficiency_applies_to_charge_only() -> None:
    est = estimator(20.0, max_step_s=60.0)
    for i in range(61):  # one hour at 100 A in
        est.update(snap(60.0 * i, 100.0))
    assert est.state.soc == pytest.approx(20.0 + 100.0 * 100.0 * 0.995 / CAP)
    for i in range(61, 122):  # one hour at 100 A out
        est.update(snap(60.0 * i, -100.0))
    assert est.state.soc == pytest.approx(20.0 + 100.0 * 100.0 * (0.995 - 1.0) / CAP)


@pytest.mark.parametrize(("jump", "counted_s"), [(3600.0, 5.0), (-3600.0, 0.0), (4.0, 4.0)])
def test_clock_jumps_count_at_most_max_step(jump: float, counted_s: float) -> None:
    est = estimator(50.0, charge_efficiency=1.0)
    est.update(snap(1000.0, 100.0))
    est.update(snap(1000.0 + jump, 100.0))
    assert est.state.soc == pytest.approx(50.0 + 100.0 * 100.0 * counted_s / 3600 / CAP)
    assert est.state.uncounted_s == pytest.approx(max(0.0, jump - counted_s))


def test_invalid_snapshots_hold_the_value_and_are_not_integrated() -> None:
    est = estimator(50.0, charge_efficiency=1.0)
    est.update(snap(0.0, 10.0))
    garbage = replace(snap(1.0, 10.0), valid=False, current=1e9)
    est.update(garbage)
    assert est.state.soc == 50.0
    est.update(replace(snap(2.0, 10.0), current=math.nan))
    assert est.state.soc == 50.0
    est.update(snap(3.0, 30.0))  # trapezoid from the last valid sample
    assert est.state.soc == pytest.approx(50.0 + 100.0 * 20.0 * 3.0 / 3600 / CAP)


def test_first_data_gives_a_rough_estimate_then_the_rested_ocv() -> None:
    est = SocEstimator(SocSettings(), LFP)
    assert est.state.source is SocSource.NONE and 0 <= est.state.soc <= 100
    est.update(snap(0.0, -100.0, cells=(3.25,) * 16))  # under load
    assert est.state.source is SocSource.ESTIMATE
    assert not est.state.trusted
    # 50 mV either way under an unknown load: from 9 % to 51 % on the plateau; the value is
    # the middle, the inverter gets the low end.
    low, high = LFP.soc_from_ocv(3.20), LFP.soc_from_ocv(3.30)
    assert est.state.soc == pytest.approx((low + high) / 2)
    assert est.state.uncertainty == pytest.approx((high - low) / 2)
    assert est.state.for_inverter == pytest.approx(low)
    rest = (3.20,) * 16  # rested voltage on the steep low end: 9.4 %
    t = 0.0
    while t < 1795.0:
        t += 5.0
        est.update(snap(t, 0.5, cells=rest))  # 0.5 A < 0.01 C
    assert est.state.source is SocSource.ESTIMATE
    est.update(snap(t + 5.0, 0.5, cells=rest))
    assert est.state.source is SocSource.OCV
    assert est.state.trusted
    assert est.state.soc == pytest.approx(LFP.soc_from_ocv(3.20))
    assert est.state.uncertainty < 3.0


def test_a_trusted_value_is_not_replaced_by_a_worse_ocv_unless_asked() -> None:
    est = estimator(40.0, rest_time_s=60.0)  # the user's value: taken as exact
    for t in range(0, 200, 5):
        est.update(snap(float(t), 0.0, cells=(3.23,) * 16))
    assert est.state.soc == pytest.approx(40.0)
    est.request_ocv()
    est.update(snap(205.0, 0.0, cells=(3.23,) * 16))
    assert est.state.source is SocSource.OCV
    assert est.state.soc == pytest.approx(LFP.soc_from_ocv(3.23))


def test_full_recalibration_needs_target_voltage_and_tail_current_for_the_hold_time() -> None:
    est = estimator(93.0)
    top = (3.44,) + (3.42,) * 15
    est.update(snap(0.0, 20.0, cells=top))  # 20 A > 0.04 C: still charging hard
    est.update(snap(5.0, 20.0, cells=top))
    for t in range(10, 185, 5):
        est.update(snap(float(t), 5.0, cells=top))
    assert est.state.soc < 100.0
    est.update(snap(190.0, 5.0, cells=top))
    # The lowest cell, 30 mV under the target at the tail current, is on the steep top.
    assert est.state.soc == pytest.approx(LFP.soc_from_ocv(3.42))
    assert est.state.soc > 99.0
    assert est.state.source is SocSource.FULL
    assert est.state.last_full == 190.0
    assert est.state.anchor_soc == est.state.soc and est.state.since_anchor == 0.0


def test_entering_float_from_absorption_means_full() -> None:
    est = estimator(96.0)
    est.update(snap(0.0, 2.0), Phase.BULK)
    est.update(snap(1.0, 2.0), Phase.FLOAT)  # from bulk (e.g. after a restart): not full
    assert est.state.soc < 100.0
    est.update(snap(2.0, 2.0, TOP), Phase.ABSORPTION)
    est.update(snap(3.0, 2.0, TOP), Phase.FLOAT)
    assert est.state.soc == 100.0 and est.state.source is SocSource.FULL


TOP = (3.45,) * 16  # every cell at the LFP charge target


@pytest.mark.parametrize(
    ("lowest", "expected"),
    [
        (3.45, 100.0),  # balanced: full
        (3.365, LFP.soc_from_ocv(3.365)),  # one cell lags on the steep top: it says how much
        (3.30, 95.0),  # far behind, on the flat part: the table cannot tell; 95 % at least
    ],
)
def test_full_is_what_the_emptiest_cell_holds(lowest: float, expected: float) -> None:
    est = estimator(90.0)
    cells = (lowest,) + (3.45,) * 15
    est.update(snap(0.0, 2.0, cells), Phase.ABSORPTION)
    est.update(snap(1.0, 2.0, cells), Phase.FLOAT)
    assert est.state.source is SocSource.FULL
    assert est.state.soc == pytest.approx(expected)
    assert 95.0 <= est.state.soc <= 100.0


def test_empty_recalibration_after_the_hold_time() -> None:
    est = estimator(8.0)
    low = (3.20,) * 15 + (2.99,)
    for t in range(0, 60, 5):
        est.update(snap(float(t), -5.0, cells=low))
    assert est.state.soc > 0.0
    est.update(snap(60.0, -5.0, cells=low))
    assert est.state.soc == 0.0
    assert est.state.source is SocSource.EMPTY
    # A charging current is not an empty battery, whatever one cell reads.
    est = estimator(8.0)
    for t in range(0, 200, 5):
        est.update(snap(float(t), 50.0, cells=low))
    assert est.state.soc > 8.0


def discharge_cycle(est: SocEstimator, fraction: float) -> float:
    """Full point, then 1 C out for `fraction` of an hour, then the empty cell for the
    60 s hold (still at 1 C). Returns the fraction of rated capacity taken out."""
    est.update(snap(0.0, -CAP, TOP), Phase.ABSORPTION)
    est.update(snap(1.0, -CAP, TOP), Phase.FLOAT)
    assert est.state.source is SocSource.FULL and est.state.soc == 100.0
    steps = round(fraction * 60.0)
    t = 1.0
    for _ in range(steps):
        t += 60.0
        est.update(snap(t, -CAP))
    low = (3.1,) * 15 + (2.95,)
    for _ in range(12):
        t += 5.0
        est.update(snap(t, -CAP, cells=low))
    return (t - 1.0) / 3600.0


def test_capacity_is_learnt_between_full_and_empty_and_smoothed() -> None:
    est = estimator(50.0, max_step_s=60.0)
    measured = discharge_cycle(est, 0.9)
    s = est.state
    assert s.source is SocSource.EMPTY and s.soc == 0.0
    assert s.learned == 1
    assert s.health == pytest.approx(1.0 + 0.3 * (measured - 1.0))
    assert s.soh == pytest.approx(100.0 * s.health)
    assert s.cycles == pytest.approx(measured + 1.0 / 3600.0)
    # The empty point is the next measurement's start: the next empty point has no span.
    assert s.anchor_soc == 0.0 and s.since_anchor == 0.0
    # Counting now runs against the learnt capacity: 1 % is less charge than before.
    est.update(snap(t := 10_000.0, 0.0))
    est.update(snap(t + 36.0, CAP / 0.995))
    assert est.state.soc == pytest.approx(0.5 / s.health, rel=1e-6)


@pytest.mark.parametrize("fraction", [0.3, 1.5])
def test_implausible_capacity_is_ignored(fraction: float) -> None:
    est = estimator(50.0, max_step_s=60.0)
    discharge_cycle(est, fraction)
    assert est.state.learned == 0
    assert est.state.health == 1.0


def test_a_cycle_with_gaps_does_not_teach() -> None:
    est = estimator(50.0, max_step_s=60.0, learn_max_uncounted_s=100.0)
    est.update(snap(0.0, 1.0), Phase.ABSORPTION)
    est.update(snap(1.0, 1.0), Phase.FLOAT)
    est.update(snap(10_000.0, -CAP))  # a long pause in the data
    discharge_cycle_without_full = [snap(10_000.0 + 60.0 * i, -CAP) for i in range(1, 50)]
    for s in discharge_cycle_without_full:
        est.update(s)
    low = (3.1,) * 15 + (2.95,)
    for i in range(14):
        est.update(snap(20_000.0 + 5.0 * i, -1.0, cells=low))
    assert est.state.soc == 0.0
    assert est.state.learned == 0


def test_set_soc_validates_and_restarts_learning() -> None:
    est = estimator(50.0)
    with pytest.raises(ValueError):
        est.set_soc(101.0)
    with pytest.raises(ValueError):
        est.set_soc(math.nan)
    est.update(snap(0.0, 1.0), Phase.ABSORPTION)
    est.update(snap(1.0, 1.0), Phase.FLOAT)
    state = est.set_soc(42.0)
    assert state.soc == 42.0 and state.source is SocSource.USER and state.trusted
    assert state.anchor_soc is None


def test_state_round_trips_through_json() -> None:
    state = SocState(
        soc=63.5,
        source=SocSource.FULL,
        uncertainty=2.5,
        health=0.97,
        cycles=12.25,
        strings=(60.0, 67.0),
        offsets=(0.5, -0.25),
        anchor_soc=100.0,
        since_anchor=-0.4,
        uncounted_s=12.0,
        learned=3,
        last_full=1.7e9,
        last_empty=None,
    )
    again = SocState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state
    est = SocEstimator(SocSettings(), LFP, again)
    assert est.state is again


@pytest.mark.parametrize(
    "change",
    [
        {"soc": 150.0},
        {"soc": math.nan},
        {"soc": "50"},
        {"soc": True},
        {"health": 0.0},
        {"source": "guess"},
        {"learned": -1},
        {"learned": 1.5},
        {"version": 3},
        {"since_anchor": "x"},
        {"strings": [50.0, 101.0]},
        {"offsets": "0.5"},
        {"uncertainty": -1.0},
        {"extra": 1},
    ],
)
def test_garbage_state_is_rejected(change: dict[str, object]) -> None:
    data = SocState().to_dict() | change
    with pytest.raises(ValueError, match="SoC state"):
        SocState.from_dict(data)


def test_garbage_state_of_the_wrong_shape_is_rejected() -> None:
    with pytest.raises(ValueError, match="mapping"):
        SocState.from_dict([1, 2])
    data = SocState().to_dict()
    del data["soc"]
    with pytest.raises(ValueError, match="missing"):
        SocState.from_dict(data)


floats = st.floats(allow_nan=True, allow_infinity=True, width=32)


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.floats(-100.0, 1e6) | st.just(math.nan),  # time step
            floats,  # current
            st.booleans(),  # valid
            st.floats(-10.0, 1000.0) | st.just(math.nan),  # capacity
            floats,  # min cell
            floats,  # max cell
            st.sampled_from([None, *Phase]),
        ),
        max_size=40,
    ),
    start=st.floats(0.0, 100.0),
)
def test_soc_stays_within_0_and_100_and_is_never_nan(
    steps: list[tuple[float, float, bool, float, float, float, Phase | None]], start: float
) -> None:
    est = SocEstimator(SocSettings(), LFP, SocState(soc=start, source=SocSource.OCV))
    fresh = SocEstimator(SocSettings(), LFP)
    t = 0.0
    base = snap(0.0, 0.0)
    for dt, current, valid, cap, lo, hi, phase in steps:
        t += dt
        s = replace(
            base,
            time=t,
            current=current,
            valid=valid,
            capacity_ah=cap,
            min_cell=lo,
            max_cell=hi,
            voltage=16 * hi,
        )
        for e in (est, fresh):
            soc = e.update(s, phase).soc
            assert math.isfinite(soc) and 0.0 <= soc <= 100.0
            assert math.isfinite(e.state.health) and e.state.health > 0


LOW = (3.10,) + (3.12,) * 15  # the emptiest cell at 3.10 V: about 5 % on LFP's OCV table


def test_the_low_end_pulls_the_count_toward_the_emptiest_cell() -> None:
    est = estimator(15.0)  # the count says 15 %, the voltage says about 5 %
    light = -0.05 * CAP  # a light discharge: the voltage is close to the OCV
    for i in range(1, 3601):
        s = est.update(snap(float(i), light, LOW))
    target = LFP.soc_from_ocv(3.10)
    # Six time constants: settled where the pull balances the count's 5 %/h, which is
    # rate x tau below the voltage's value.
    lag = 100.0 * 0.05 * 600.0 / 3600.0
    assert s.soc == pytest.approx(target - lag, abs=0.2)


@pytest.mark.parametrize(
    ("current_c", "cells"),
    [
        (0.02, LOW),  # charging: the voltage reads high
        (-0.3, LOW),  # a heavy discharge: the voltage reads low by the resistance
        (-0.05, MID),  # the flat middle: the voltage says little
    ],
)
def test_the_low_end_correction_stays_out_of(current_c: float, cells: tuple[float, ...]) -> None:
    est = estimator(15.0)
    for i in range(1, 601):
        s = est.update(snap(float(i), current_c * CAP, cells))
    counted = 15.0 + 100.0 * current_c * 600 / 3600 * (0.995 if current_c > 0 else 1.0)
    assert s.soc == pytest.approx(counted, abs=0.05)


def test_the_low_end_correction_can_be_switched_off() -> None:
    est = estimator(15.0, low_end_soc=0.0)
    for i in range(1, 601):
        s = est.update(snap(float(i), -0.05 * CAP, LOW))
    assert s.soc == pytest.approx(15.0 - 100.0 * 0.05 * 600 / 3600, abs=0.05)
