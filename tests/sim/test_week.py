"""The week scenario (its own file: the longest test, taken by its own test worker).

A simulated week at full fidelity costs about 17 CPU minutes on a small two-core machine,
more than the whole suite may take. `make test` runs its first two days: the start-up
estimate, a first full charge, then a whole day on which the SoC error and the limit
rises are checked. `make soak` runs all seven (MOAT_BMS_FULL_WEEK=1), as does
`moat-bms sim --scenario week --speed max`.
"""

from __future__ import annotations

import os

import pytest

from gateway.sim.scenarios import SCENARIOS, SOC_ERROR_LIMIT

DAY_S = 86400.0
FULL_WEEK = bool(os.environ.get("MOAT_BMS_FULL_WEEK"))


@pytest.mark.slow
def test_a_week_of_daily_cycles() -> None:
    scenario = SCENARIOS["week"]
    duration = scenario.duration if FULL_WEEK else 2 * DAY_S
    sim, record = scenario.build(0)
    with sim:
        sim.run(duration)
        problems = scenario.check(sim, record)
    assert problems == []
    # The figures the check computed, visible with -rA.
    print(f"{duration / DAY_S:g} days: {record.values}")
    assert record.samples[-1].t >= duration - 1
    assert 0.0 < record.values["soc_error_max"] < SOC_ERROR_LIMIT
    assert record.values["most_rises_per_hour"] > 0  # the limits did move
