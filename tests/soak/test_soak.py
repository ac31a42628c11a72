"""The short soak in `make test`: one simulated day at 1 s steps, one node, the last two
hours traced (a warm-up as long as the gateway's history ring, shortened to an hour, then an
hour measured). `make soak` runs the week with four nodes (tests/soak/soak.py)."""

from __future__ import annotations

import pytest

from tests.soak.soak import MEMORY_LIMIT_MB, SOC_ERROR_LIMIT, SoakPlan, SoakResult, run_soak

pytestmark = pytest.mark.slow  # a simulated day: started early, beside the week


@pytest.fixture(scope="module")
def day() -> SoakResult:
    result = run_soak(SoakPlan(days=1.0, nodes=1, step_s=1.0, trace_hours=1.0, history_hours=1.0))
    print(result.summary())
    return result


def test_a_simulated_day_holds_memory_soc_phases_and_limits(day: SoakResult) -> None:
    """Memory, phases and limits over a daily cycle (the SoC has its own test below)."""
    assert [p for p in day.problems if not p.startswith("SoC error")] == []
    assert day.steps == 86_400
    assert day.memory_growth_mb < MEMORY_LIMIT_MB
    assert day.charged_ah > 10 and day.discharged_ah > 10  # a real daily cycle
    assert {"bulk", "absorption"} <= set(day.phases_seen)
    assert 0 < day.most_rises_per_hour <= day.allowed_rises_per_hour
    assert day.soc_samples >= 86_000


def test_a_simulated_day_keeps_the_soc_within_3_percent(day: SoakResult) -> None:
    """The simulated cells rest on the OCV table the estimator reads (gateway/sim/physics.py),
    so a rest or the low-end pull on the steep part sets the SoC near the truth."""
    assert day.soc_error_max < SOC_ERROR_LIMIT
