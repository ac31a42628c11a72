"""A week of daily cycles (its own file: the longest test, taken by its own test worker)."""

from __future__ import annotations

import pytest

from gateway.sim.scenarios import SCENARIOS


@pytest.mark.slow
def test_a_week_of_daily_cycles() -> None:
    scenario = SCENARIOS["week"]
    sim, record = scenario.build(0)
    with sim:
        sim.run(scenario.duration)
        problems = scenario.check(sim, record)
    assert problems == []
    # The figures the check computed, visible with -rA.
    print(record.values)
    assert record.values["soc_error_max"] < 4.0
