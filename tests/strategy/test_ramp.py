"""Anti-oscillation of a current limit: decrease at once, hold, ramp, hysteresis, budget."""

from __future__ import annotations

import itertools
import math

import pytest

from gateway.strategy.ramp import LimitRamp
from gateway.strategy.settings import LimitSettings

CFG = LimitSettings(
    ramp_step_s=0, hold_s=30, ramp_a_per_s=5, min_step_a=1, recover_fraction=0.05, relax_after_s=0
)


def ramp_at(value: float, cfg: LimitSettings = CFG) -> LimitRamp:
    r = LimitRamp(cfg, 100.0)
    r.output = value
    return r


def test_decrease_applies_in_the_same_step() -> None:
    r = ramp_at(80.0)
    assert r.step(20.0, 1.0) == 20.0
    assert r.step(0.0, 0.0) == 0.0


def test_small_decreases_are_noise_but_a_stop_is_not() -> None:
    r = ramp_at(80.0)
    assert r.step(79.5, 1.0) == 80.0
    assert r.step(79.0, 1.0) == 79.0
    r = ramp_at(0.5)
    assert r.step(0.0, 1.0) == 0.0


def test_increase_waits_for_the_hold_then_ramps() -> None:
    r = ramp_at(20.0)
    outs = [r.step(60.0, 1.0) for _ in range(40)]
    assert outs[:29] == [20.0] * 29  # the target must persist 30 s
    assert outs[29:38] == [25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 55.0, 60.0, 60.0]


def test_a_dip_restarts_the_hold() -> None:
    r = ramp_at(20.0)
    for _ in range(25):
        r.step(60.0, 1.0)
    r.step(20.0, 1.0)  # back to the output: no longer above
    assert [r.step(60.0, 1.0) for _ in range(29)] == [20.0] * 29


def test_a_decrease_during_the_ramp_applies_at_once_and_ends_it() -> None:
    r = ramp_at(20.0)
    for _ in range(32):
        r.step(100.0, 1.0)
    assert r.output == 35.0
    assert r.step(30.0, 1.0) == 30.0
    assert r.step(100.0, 1.0) == 30.0  # a new hold


def test_recovery_from_zero_needs_a_meaningful_target() -> None:
    r = ramp_at(0.0)
    assert all(r.step(4.9, 1.0) == 0.0 for _ in range(100))
    outs = [r.step(5.0, 1.0) for _ in range(30)]
    assert outs[-2:] == [0.0, 5.0]


def test_small_increases_are_ignored() -> None:
    r = ramp_at(50.0)
    assert all(r.step(50.9, 1.0) == 50.0 for _ in range(100))


def test_limits_are_clamped_to_the_maximum_and_nan_means_stop() -> None:
    r = ramp_at(50.0)
    assert r.step(math.nan, 1.0) == 0.0
    r = ramp_at(100.0)
    assert r.step(500.0, 1.0) == 100.0
    assert r.step(-5.0, 1.0) == 0.0


def test_increases_per_hour_are_bounded() -> None:
    cfg = LimitSettings(
        ramp_step_s=0,
        hold_s=0,
        ramp_a_per_s=100,
        min_step_a=1,
        max_increases_per_hour=10,
        relax_after_s=0,
    )
    r = LimitRamp(cfg, 100.0)
    r.output = 50.0
    outputs = []
    for i in range(600):  # a target flapping every second for 10 minutes
        outputs.append(r.step(100.0 if i % 2 else 10.0, 1.0))
    ups = sum(1 for a, b in itertools.pairwise(outputs) if b > a)
    downs = sum(1 for a, b in itertools.pairwise(outputs) if b < a)
    assert r.increases_last_hour == ups == 10
    assert downs == 10  # every up comes down again, and no more often
    assert outputs[-1] == 10.0  # decreases were never held back
    # An hour later the budget is free again.
    for _ in range(3600):
        r.step(10.0, 1.0)
    assert r.increases_last_hour == 0
    assert r.step(100.0, 1.0) == 100.0


def test_a_long_taper_does_not_use_up_the_budget() -> None:
    cfg = LimitSettings(
        ramp_step_s=0, hold_s=0, min_step_a=1, max_increases_per_hour=1, relax_after_s=0
    )
    r = ramp_at(100.0, cfg)
    outs = [r.step(float(target), 1.0) for target in range(99, 0, -1)]
    assert outs == [float(t) for t in range(99, 0, -1)]
    assert r.step(50.0, 1.0) > 1.0


def test_stop_forces_zero_and_recovery_starts_from_zero() -> None:
    r = ramp_at(80.0)
    assert r.stop() == 0.0
    outs = [r.step(80.0, 1.0) for _ in range(30)]
    assert outs[-2:] == [0.0, 5.0]


@pytest.mark.parametrize("dt", [0.1, 1.0])
def test_ramp_rate_does_not_depend_on_the_step(dt: float) -> None:
    r = ramp_at(0.0, LimitSettings(ramp_step_s=0, hold_s=0, ramp_a_per_s=5))
    steps = round(10.0 / dt)
    for _ in range(steps):
        r.step(100.0, dt)
    assert r.output == pytest.approx(50.0)


def test_an_increase_waits_relax_after_s_after_the_last_change() -> None:
    cfg = LimitSettings(ramp_step_s=0, hold_s=30, ramp_a_per_s=5, relax_after_s=900)
    r = ramp_at(80.0, cfg)
    assert r.step(40.0, 1.0) == 40.0  # tightening: at once
    outs = [r.step(80.0, 1.0) for _ in range(1000)]
    assert outs[898] == 40.0 and outs[899] > 40.0  # relaxing: 900 s after the decrease
    assert outs[-1] == 80.0
    # The ramp's end (8 s after it began, 93 s ago) is a change too: a further rise waits.
    more = [r.step(100.0, 1.0) for _ in range(900)]
    assert more.index(85.0) == 900 - 93 - 1


def test_a_phase_change_and_a_stop_clear_the_relax_wait() -> None:
    cfg = LimitSettings(ramp_step_s=0, hold_s=30, ramp_a_per_s=5, relax_after_s=900)
    r = ramp_at(80.0, cfg)
    r.step(10.0, 1.0)
    r.new_phase()
    outs = [r.step(80.0, 1.0) for _ in range(31)]
    assert outs[28] == 10.0 and outs[29] == 15.0  # only the hold
    r.stop()
    outs = [r.step(80.0, 1.0) for _ in range(31)]
    assert outs[28] == 0.0 and outs[29] == 5.0


def test_a_ramp_moves_in_steps_so_a_recovery_is_one_change_of_the_limits() -> None:
    # Every 0x351 change counts against the inverter (issue 14: at most 4 an hour): a
    # recovery at 5 A/s in 10 s steps goes 0 -> 50 A in one change, 0 -> 100 A in two.
    cfg = LimitSettings(hold_s=30, ramp_a_per_s=5, ramp_step_s=10, relax_after_s=0)
    r = LimitRamp(cfg, 100.0)
    outs = [r.step(100.0, 1.0) for _ in range(60)]
    changes = [(k, b) for k, (a, b) in enumerate(itertools.pairwise([0.0, *outs])) if b != a]
    assert changes == [(29, 50.0), (39, 100.0)]
    r = LimitRamp(cfg, 100.0)
    assert [r.step(40.0, 1.0) for _ in range(31)][-2:] == [40.0, 40.0]


def test_an_increase_reversed_at_once_makes_the_next_wait_twice_as_long() -> None:
    # A full cell at the steep top: every increase brings current that takes it up again,
    # and the limit comes straight back down. Probing it every quarter hour made four to
    # eight changes of 0x351 each time (issue 14); failed tries back off to once an hour.
    cfg = LimitSettings(
        ramp_step_s=10, hold_s=30, ramp_a_per_s=5, relax_after_s=900, relax_max_s=3600
    )
    r = ramp_at(50.0, cfg)
    r.step(1.0, 1.0)  # the cell reaches the top: down
    waits = []
    for _ in range(4):
        t = 0
        while r.step(10.0, 1.0) < 10.0:  # the cell rests lower: the table allows more
            t += 1
        waits.append(t)
        for _ in range(60):  # a minute later the current took the cell up again: down
            r.step(10.0, 1.0)
        r.step(1.0, 1.0)
    assert waits[0] == pytest.approx(900 + 10, abs=15)
    assert waits[1] == pytest.approx(1800, abs=15)
    assert waits[2] == pytest.approx(3600, abs=15)
    assert waits[3] == pytest.approx(3600, abs=15)
    # An increase that holds for relax_after_s ends the back-off.
    while r.step(10.0, 1.0) < 10.0:
        pass
    for _ in range(900):
        r.step(10.0, 1.0)
    r.step(1.0, 1.0)
    t = 0
    while r.step(10.0, 1.0) < 10.0:
        t += 1
    assert t == pytest.approx(900, abs=15)
