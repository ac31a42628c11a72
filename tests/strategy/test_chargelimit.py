"""ChargeLimitMonitor: current above the CCL sent, with delay, weight, release and memory."""

from __future__ import annotations

import math

from gateway.strategy.chargelimit import MEMORY_S, ChargeLimitMonitor
from gateway.strategy.settings import ChargeLimitSettings

CFG = ChargeLimitSettings()


def run(m: ChargeLimitMonitor, current: float, ccl: float, seconds: int) -> list[bool]:
    return [m.step(current, ccl, 1.0) for _ in range(seconds)]


def test_a_current_within_the_tolerance_is_never_reported() -> None:
    m = ChargeLimitMonitor(CFG)
    assert not any(run(m, 20.0 * 1.05 + 0.4, 20.0, 3600))
    assert not any(run(m, 0.4, 0.0, 3600))  # a Multi's trickle at CCL 0


def test_ten_percent_above_is_reported_after_the_delay() -> None:
    m = ChargeLimitMonitor(CFG)
    flags = run(m, 22.0, 20.0, 60)
    assert 25 <= flags.index(True) <= 30


def test_far_above_counts_faster() -> None:
    m = ChargeLimitMonitor(CFG)
    flags = run(m, 150.0, 0.0, 60)
    assert flags.index(True) <= 3  # 150 A against CCL 0: a tenth of the delay


def test_the_inverter_has_follow_s_to_follow_a_lower_ccl() -> None:
    m = ChargeLimitMonitor(CFG)
    run(m, 90.0, 100.0, 100)
    # The CCL drops to 10 A; the inverter takes 8 s to follow.
    flags = [m.step(90.0 if k < 8 else 10.0, 10.0, 1.0) for k in range(60)]
    assert not any(flags)


def test_a_current_above_half_the_time_is_still_reported() -> None:
    m = ChargeLimitMonitor(CFG)
    flags = [m.step(30.0 if k % 2 else 10.0, 20.0, 1.0) for k in range(300)]
    assert any(flags)


def test_release_after_release_s_within_and_memory_after() -> None:
    m = ChargeLimitMonitor(CFG)
    run(m, 50.0, 20.0, 60)
    assert m.exceeded and m.above
    within = run(m, 15.0, 20.0, round(CFG.release_s) + 5)
    assert all(within[: round(CFG.release_s) - 5]) and not any(within[-3:])
    assert not m.above and m.ignored
    run(m, 15.0, 20.0, round(MEMORY_S) + 1)
    assert not m.ignored


def test_unknown_current_is_not_above_and_reset_forgets() -> None:
    m = ChargeLimitMonitor(CFG)
    assert not any(run(m, math.nan, 0.0, 100))
    run(m, 50.0, 0.0, 60)
    m.reset()
    assert not m.exceeded and not m.ignored
