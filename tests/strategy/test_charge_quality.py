"""Issue 14: the strategy under harsh conditions, in the closed loop of tests/strategy/sim.py.

A charger that honours only the CVL with a voltmeter reading 0.3 V low, one that delivers
10 % above the CCL, cold cells with a charger that ignores the CCL (through every inverter
profile's shaping), a high-resistance pack with 1 mV cell readings, float with a house load.
"""

from __future__ import annotations

import pytest

from gateway.contracts.chemistry import LFP
from gateway.contracts.decision import Alarm, Phase
from gateway.outputs.inverter import PROFILES
from gateway.strategy import ChargeController, StrategySettings
from tests.strategy.sim import Cell, Inverter, Loop, shaped_profile

CAPACITY = 100.0
STEEP = 20.0  # a knee four times steeper than the sim's default: 200 mV per % beyond full


def controller() -> ChargeController:
    return ChargeController(StrategySettings(), LFP, 16)


def within_ccl(loop: Loop, tolerance: float = 0.1) -> float:
    """Share of the steps with the current at most `tolerance` (fraction) above the CCL."""
    ok = [i <= d.limits.ccl * (1 + tolerance) + 0.5 for _, d, i, _ in loop.history]
    return sum(ok) / len(ok)


def test_full_charge_with_a_cvl_only_charger_reading_low_keeps_every_cell_under_its_maximum() -> (
    None
):
    # One cell 9 % ahead reaches its steep end alone; the charger ignores CCL, enable bits
    # and alarms and reads the pack 0.3 V low. Main: 3.595 V, over 3.55 V for two hours.
    c = controller()
    c.request_full_charge()
    cells = [Cell(CAPACITY, 0.9, knee_v_per_fraction=STEEP) for _ in range(15)]
    cells.append(Cell(CAPACITY, 0.99, knee_v_per_fraction=STEEP))
    loop = Loop(c, cells, Inverter(follows_ccl=False, offset_v=-0.3), bleed_a=0.1)
    loop.run(7200)
    over = [top for *_, top in loop.history if top > LFP.full_charge_v]
    # Until the offset is known the cut acts only once the cell is above: a few mV, minutes.
    assert loop.peak_cell() <= LFP.full_charge_v + 0.010
    assert len(over) <= 900
    assert all(d.limits.cvl >= 16 * LFP.min_cell_v for _, d, _, _ in loop.history)


def test_a_current_above_the_ccl_raises_an_alarm_and_the_cvl_brings_it_down() -> None:
    # 3 degC: the temperature derating allows a third of the maximum; the charger ignores it.
    c = controller()
    loop = Loop(
        c,
        [Cell(CAPACITY, 0.5) for _ in range(16)],
        Inverter(follows_ccl=False),
        temps=(3.0, 3.0),
    )
    loop.run(1800)
    alarms = [Alarm.HIGH_CHARGE_CURRENT in d.alarms for _, d, _, _ in loop.history]
    assert any(alarms[:60])  # "charge limit exceeded" within a minute
    assert within_ccl(loop) >= 0.9  # main: 0 (150 A against 33 A)


def test_a_charger_overshooting_the_ccl_by_10_percent_is_reported() -> None:
    c = controller()
    loop = Loop(
        c,
        [Cell(CAPACITY, 0.5) for _ in range(16)],
        Inverter(ccl_overshoot=1.1, available_a=200.0),
        temps=(3.0, 3.0),
    )
    loop.run(1800)
    assert any(Alarm.HIGH_CHARGE_CURRENT in d.alarms for _, d, _, _ in loop.history)
    assert within_ccl(loop) >= 0.9


# The Sunny Island forbids a CVL below the pack voltage (it would discharge and ignore DCL):
# through its profile a CVL-only charger reading low cannot be stopped by the CVL.
COLD = [
    (profile, offset)
    for profile in [None, *sorted(PROFILES)]
    for offset in (0.0, -0.3)
    if not (profile == "sma-sunny-island" and offset)
]


@pytest.mark.parametrize(("profile", "offset"), COLD)
def test_no_charge_below_the_minimum_temperature_with_a_charger_ignoring_ccl(
    profile: str | None, offset: float
) -> None:
    c = controller()
    loop = Loop(
        c,
        [Cell(CAPACITY, 0.5) for _ in range(16)],
        Inverter(follows_ccl=False, offset_v=offset),
        temps=(-7.0, -7.0),
        profile=shaped_profile(profile) if profile else None,
    )
    loop.run(1200)
    # Main: 51 Ah with the profiles that keep the CVL when charging stops (pylontech...).
    assert loop.charged_ah <= 0.005 * CAPACITY
    for seen, (_, d, _, _) in zip(loop.sent, loop.history, strict=True):
        assert seen.cvl >= 16 * LFP.min_cell_v  # never 0, never below the floor
        assert d.limits.ccl == 0.0 and not d.limits.charge_enable


def test_a_high_resistance_pack_with_1_mv_readings_changes_limits_rarely() -> None:
    # 3 mOhm per cell (six times the default) and cell voltages in whole millivolts.
    c = controller()
    loop = Loop(
        c, [Cell(CAPACITY, 0.9, r_ohm=0.003) for _ in range(16)], Inverter(), quantum_v=0.001
    )
    loop.run(4 * 3600)
    phases = [d.phase for _, d, _, _ in loop.history]
    assert Phase.FLOAT in phases
    # Main: 154 changes of 0x351 an hour in all, 58 outside the 5 minutes after the start
    # and after each phase change.
    assert loop.changes_per_hour(transition_s=300) <= 4.0


def test_float_keeps_a_ccl_that_covers_the_load() -> None:
    c = controller()
    loop = Loop(c, [Cell(CAPACITY, 0.95) for _ in range(16)], Inverter(), load_a=5.0)
    loop.run(4 * 3600)
    floating = [d.limits for _, d, _, _ in loop.history if d.phase is Phase.FLOAT]
    assert len(floating) > 3600
    # Main: CCL 0 for 23 % of float here.
    assert sum(lim.ccl < 5.0 for lim in floating) <= 0.02 * len(floating)
    assert all(lim.cvl <= 16 * LFP.float_v + 1e-9 for lim in floating[600:])


def test_a_cvl_only_charger_reaches_absorption_with_one_cell_a_step_from_its_maximum() -> None:
    # One cell far ahead of the rest (the weak cell of the charge-quality matrix). With it
    # within one CVL step (0.1 V) of the charge target, the next step would take it past
    # the target, so the CVL holds a CVL-only charger a step below and the cell stays out
    # of the at-max margin: the phase stayed bulk for hours (here 2.5 h; the matrix's weak
    # cell with the CVL-only model: all of day 1). That is as close as the CVL can bring
    # it, so it counts as at the maximum once the current has tapered: absorption, then
    # float.
    c = controller()
    cells = [Cell(CAPACITY, 0.9) for _ in range(15)]
    cells.append(Cell(CAPACITY, 1.0))  # 3.40 V, the others 3.32 V
    loop = Loop(c, cells, Inverter(follows_ccl=False))
    loop.run(3 * 3600)
    phases = [d.phase for _, d, _, _ in loop.history]
    assert Phase.ABSORPTION in phases[:1800]
    assert phases[-1] is Phase.FLOAT
    assert loop.peak_cell() <= LFP.charge_target_v
