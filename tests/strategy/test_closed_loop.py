"""The strategy in a small closed loop (tests/strategy/sim.py): cells with a steep end and
internal resistance, an inverter that follows CVL and CCL late and slowly. The highest
cell must stay below its allowed maximum, nothing may oscillate, float must be reached."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest

from gateway.contracts.chemistry import LFP
from gateway.contracts.decision import Phase
from gateway.strategy import ChargeController, StrategySettings
from tests.strategy.sim import Cell, Inverter, Loop

STEP = StrategySettings().cvl.step_v
BALANCED = [0.95] * 16
KNEE = [0.97] * 15 + [1.0]  # one cell ahead: it reaches the steep end alone


def reversals(values: Sequence[float], tolerance: float) -> int:
    """Direction changes of a signal, ignoring moves smaller than `tolerance`."""
    count, direction, ref = 0, 0, values[0]
    for v in values[1:]:
        if abs(v - ref) < tolerance:
            continue
        new = 1 if v > ref else -1
        count += direction not in (0, new)
        direction, ref = new, v
    return count


def run(socs: list[float], inverter: Inverter, seconds: float = 3600.0) -> Loop:
    controller = ChargeController(StrategySettings(), LFP, 16)
    loop = Loop(controller, [Cell(280.0, s) for s in socs], inverter)
    loop.run(seconds)
    return loop


SCENARIOS = [
    pytest.param(BALANCED, Inverter(delay_s=1, lag_s=1), id="balanced-fast"),
    pytest.param(BALANCED, Inverter(delay_s=5, lag_s=5), id="balanced-slow"),
    pytest.param(BALANCED, Inverter(delay_s=5, lag_s=5, follows_ccl=False), id="balanced-cvl-only"),
    pytest.param(KNEE, Inverter(delay_s=1, lag_s=1), id="knee-fast"),
    pytest.param(KNEE, Inverter(delay_s=5, lag_s=5), id="knee-slow"),
    pytest.param(KNEE, Inverter(delay_s=5, lag_s=5, follows_ccl=False), id="knee-cvl-only"),
    pytest.param(
        KNEE,
        Inverter(delay_s=2, lag_s=3, follows_ccl=False, offset_v=-0.3),
        id="knee-cvl-only-reads-low",
    ),
    pytest.param(BALANCED, Inverter(delay_s=2, lag_s=3, offset_v=0.3), id="balanced-reads-high"),
]


@pytest.mark.parametrize(("socs", "inverter"), SCENARIOS)
def test_highest_cell_stays_below_its_maximum_without_oscillation(
    socs: list[float], inverter: Inverter
) -> None:
    loop = run(socs, inverter)
    decisions = [d for _, d, _, _ in loop.history]
    cvl = [d.limits.cvl for d in decisions]
    current = [i for _, _, i, _ in loop.history]
    highest = max(top for *_, top in loop.history)
    # An inverter reading 0.3 V low overshoots until its offset is learnt: 2 mV at most.
    assert highest <= LFP.charge_target_v + 0.002
    assert reversals(cvl, STEP / 2) <= 6  # per hour
    # A charger that ignores CCL (150 A available against 100 A) is held to it through the
    # CVL since issue 14: its current moves with those CVL steps.
    assert reversals(current, 1.0) <= (12 if inverter.follows_ccl else 16)
    assert all(d.limits.cvl <= 16 * LFP.charge_target_v + 1e-9 for d in decisions)
    assert all(d.limits.ccl <= 100.0 for d in decisions)


@pytest.mark.parametrize(
    "inverter",
    [
        Inverter(delay_s=5, lag_s=5),
        Inverter(delay_s=5, lag_s=5, follows_ccl=False),
        Inverter(delay_s=2, lag_s=3, offset_v=0.3),  # holds the pack 0.3 V low
    ],
)
def test_a_balanced_battery_reaches_float_and_the_cvl_ramps_down(inverter: Inverter) -> None:
    loop = run(BALANCED, inverter)
    phases = [d.phase for _, d, _, _ in loop.history]
    assert Phase.ABSORPTION in phases
    start = phases.index(Phase.FLOAT)
    assert Phase.BULK not in phases[phases.index(Phase.ABSORPTION) :]
    cvl = [d.limits.cvl for _, d, _, _ in loop.history[start - 1 :]]
    drops = [a - b for a, b in itertools.pairwise(cvl)]
    assert max(drops) <= STEP + 1e-9  # never more than one protocol step at a time
    # These model cells do not relax after charging: the highest stays above the float
    # voltage, so the CVL settles just below cells x float voltage, and stays there.
    assert 16 * (LFP.float_v - 0.01) - STEP <= cvl[-1] <= 16 * LFP.float_v
    assert min(cvl) == cvl[-1]
