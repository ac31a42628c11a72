"""IrCompensated: the resistance learnt from current steps, the compensated voltage."""

from __future__ import annotations

import pytest

from gateway.strategy.resistance import IrCompensated
from tests.strategy.battery import snapshot

R = 0.003  # Ohm per cell


def cells(current: float, ocv: float = 3.40, quantum: float = 0.001) -> list[list[float]]:
    v = round((ocv + current * R) / quantum) * quantum
    return [[3.30] * 15 + [v]]


def test_the_resistance_is_learnt_from_current_steps_despite_1_mv_readings() -> None:
    ir = IrCompensated(highest=True)
    t = 0.0
    for k in range(200):
        current = 10.0 + 5.0 * (k % 7)  # steps of 5 A (0.05 C) up and down
        ir.step(snapshot(cells(current), time=t, current=current, capacity_ah=100.0), 1.0)
        t += 1.0
    assert ir.r_ohm == pytest.approx(R, rel=0.1)
    # Compensated: the open-circuit voltage, within a millivolt.
    value = ir.step(snapshot(cells(40.0), time=t, current=40.0, capacity_ah=100.0), 1.0)
    assert value == pytest.approx(3.40, abs=0.0015)


def test_without_current_steps_nothing_is_learnt_and_the_raw_value_is_used() -> None:
    ir = IrCompensated(highest=True)
    for k in range(100):
        ir.step(snapshot(cells(20.0), time=float(k), current=20.0, capacity_ah=100.0), 1.0)
    assert ir.r_ohm == 0.0
    assert ir.value == pytest.approx(3.40 + 20.0 * R, abs=0.001)


def test_a_rise_shows_at_once_a_fall_slowly() -> None:
    ir = IrCompensated(highest=True)
    ir.step(snapshot(cells(0.0, ocv=3.40), time=0.0, current=0.0, capacity_ah=100.0), 1.0)
    up = ir.step(snapshot(cells(0.0, ocv=3.45), time=1.0, current=0.0, capacity_ah=100.0), 1.0)
    assert up == pytest.approx(3.45)
    down = ir.step(snapshot(cells(0.0, ocv=3.40), time=2.0, current=0.0, capacity_ah=100.0), 1.0)
    assert 3.44 < down < 3.45
