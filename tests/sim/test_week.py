"""The week scenario, all seven days, with the soak's watch on it (its own file: the longest
test, taken by its own test worker while the other runs the rest).

A simulated week sends about twelve million frames. On python-can's virtual bus, which
deep-copies each frame for each receiver through a locked queue, that alone would take the
suite past its time; the week runs on the simulator's in-memory bus instead, which
tests/sim/test_membus.py shows gives the same run, frame for frame.
`moat-bms sim --scenario week --speed max` runs it on the virtual bus.

The same run is `make test`'s soak (tests/soak/soak.py; `make soak` runs a week with four
nodes): no stuck phase, CVL never 0, limits within their range and their rises within the
anti-oscillation rule, the SoC against the simulator's truth from the second day on (the week
starts without a known SoC: its first estimate is the rough voltage one); then the system
goes on for a warm-up as long as the (shortened) history ring and 20 minutes with memory
traced. The memory is traced after the week, not in its last hour, because the scenario's
record keeps a sample a second by design (1.6 MB an hour), which is not a leak.

Tracing costs about five times the run. An hour traced after a 15-minute ring was 22 CPU s,
the longest test's longest extra; 20 minutes after a 6-minute ring is about 8. The traced
growth, scaled to the six days after the first (times 432), is what is checked: windows of
15 minutes to an hour after the first and the second day measured 1.8 to 4.4 kB, 0.6 to
1.9 MB scaled, against the 5 MB limit: a leak of 10 bytes a tick (one-second ticks) reaches it.
"""

from __future__ import annotations

import pytest

from gateway.sim.scenarios import SCENARIOS, SOC_ERROR_LIMIT
from tests.soak.soak import (
    MEMORY_LIMIT_MB,
    SoakPlan,
    SoakResult,
    Watch,
    history_of,
    traced,
    warm_up_s,
    watched,
)

DAY_S = 86400.0
TRACE_S = 1200.0


@pytest.mark.slow
def test_a_week_of_daily_cycles() -> None:
    scenario = SCENARIOS["week"]
    assert scenario.duration == 7 * DAY_S
    sim, record = scenario.build(0, bus="memory")
    plan = SoakPlan(days=7, nodes=1, step_s=1.0, trace_hours=TRACE_S / 3600, history_hours=0.1)
    with sim:
        watch = Watch(sim, SoakResult(plan), soc_from_s=DAY_S)
        history = history_of(plan)
        watched(sim, scenario.duration, watch, history)
        problems = scenario.check(sim, record)
        sim.observers.remove(record.observe)
        end = scenario.duration + warm_up_s(history) + TRACE_S
        soaked = traced(sim, end, TRACE_S, watch, steady_s=scenario.duration - DAY_S)
    # The figures, visible with -rA.
    print(f"7 days: {record.values}")
    print(soaked.summary())
    assert problems == []
    assert record.samples[-1].t >= scenario.duration - 1
    assert 0.0 < record.values["soc_error_max"] < SOC_ERROR_LIMIT
    assert record.values["most_rises_per_hour"] > 0  # the limits did move

    # The soak's checks: memory, phases, limits, the SoC from the second day.
    assert soaked.problems == []
    assert soaked.memory_growth_mb < MEMORY_LIMIT_MB
    assert soaked.charged_ah > 70 and soaked.discharged_ah > 70  # seven real daily cycles
    assert {"bulk", "absorption", "float"} <= set(soaked.phases_seen)
    assert 0 < soaked.most_rises_per_hour <= soaked.allowed_rises_per_hour
    assert soaked.soc_samples >= 6 * 86_000
