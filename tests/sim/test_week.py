"""The week scenario, all seven days (its own file: the longest test, taken by its own test
worker while the other runs the rest).

A simulated week sends about twelve million frames. On python-can's virtual bus, which
deep-copies each frame for each receiver through a locked queue, that alone would take the
suite past its time; the week runs on the simulator's in-memory bus instead, which
tests/sim/test_membus.py shows gives the same run, frame for frame.
`moat-bms sim --scenario week --speed max` runs it on the virtual bus.
"""

from __future__ import annotations

import pytest

from gateway.sim.scenarios import SCENARIOS, SOC_ERROR_LIMIT

DAY_S = 86400.0


@pytest.mark.slow
def test_a_week_of_daily_cycles() -> None:
    scenario = SCENARIOS["week"]
    assert scenario.duration == 7 * DAY_S
    sim, record = scenario.build(0, bus="memory")
    with sim:
        sim.run(scenario.duration)
        problems = scenario.check(sim, record)
    assert problems == []
    # The figures the check computed, visible with -rA.
    print(f"7 days: {record.values}")
    assert record.samples[-1].t >= scenario.duration - 1
    assert 0.0 < record.values["soc_error_max"] < SOC_ERROR_LIMIT
    assert record.values["most_rises_per_hour"] > 0  # the limits did move
