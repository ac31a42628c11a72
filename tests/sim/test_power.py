"""Power over the day: PV bell and clouds, household load peaks and spikes, determinism."""

from __future__ import annotations

import math
import random

import pytest

from gateway.sim.power import Constant, HouseholdLoad, SolarDay, day_and_hour

H = 3600.0


def test_day_and_hour_start_at_the_configured_time_of_day() -> None:
    assert day_and_hour(0.0, 6.0) == (0, 6.0)
    assert day_and_hour(18 * H, 6.0) == (1, 0.0)
    assert day_and_hour(43 * H, 6.0) == (2, 1.0)


def test_clear_sky_is_a_bell_between_sunrise_and_sunset() -> None:
    pv = SolarDay(peak_w=5000, sunrise_h=6.5, sunset_h=19.5)
    assert pv(3 * H) == 0.0
    assert pv(6.5 * H) == 0.0
    assert pv(21 * H) == 0.0
    assert pv(13 * H) == pytest.approx(5000.0)
    assert pv(10 * H) == pytest.approx(pv(16 * H))
    assert 0 < pv(8 * H) < pv(10 * H) < pv(13 * H)
    assert pv((24 + 13) * H) == pytest.approx(5000.0)  # every day


def test_start_time_of_day_shifts_the_profile() -> None:
    assert SolarDay(start_h=13.0)(0.0) == pytest.approx(5000.0)
    assert SolarDay(start_h=13.0)(12 * H) == 0.0


def clouded(seed: int, cloudiness: float = 0.6) -> SolarDay:
    return SolarDay(cloudiness=cloudiness, rng=random.Random(seed))


def test_clouds_dim_but_never_brighten_or_go_negative() -> None:
    pv = clouded(5)
    times = [k * 10.0 for k in range(3 * 8640)]  # three days, every 10 s
    ratios = [pv(t) / c for t in times if (c := pv.clear_sky(day_and_hour(t, 0.0)[1])) > 0]
    assert all(0.1 - 1e-9 <= r <= 1.0 + 1e-12 for r in ratios)
    assert min(ratios) < 0.8  # some clouds passed
    assert sum(r < 1.0 for r in ratios) < 0.8 * len(ratios)  # not an overcast day


def test_clouds_are_deterministic_per_seed_and_call_order() -> None:
    times = [k * 60.0 for k in range(2 * 1440)]
    forward = [clouded(9)(t) for t in times]
    pv = clouded(9)
    backward = [pv(t) for t in reversed(times)]
    assert forward == list(reversed(backward))
    assert forward != [clouded(10)(t) for t in times]
    # Day 2 has its own clouds.
    assert forward[:1440] != forward[1440:]


def test_no_clouds_without_cloudiness() -> None:
    pv = SolarDay(cloudiness=0.0)
    assert all(pv(t) == pv.clear_sky(t / H) for t in range(0, 86400, 600))
    with pytest.raises(ValueError):
        SolarDay(cloudiness=0.3)  # clouds need a Random


def test_household_load_has_a_base_and_two_peaks() -> None:
    load = HouseholdLoad(base_w=300, morning_w=1200, evening_w=2000)
    assert load(3 * H) == pytest.approx(300.0, abs=0.1)
    assert load(7.5 * H) == pytest.approx(1500.0, abs=1.0)
    assert load(19 * H) == pytest.approx(2300.0, abs=1.0)
    assert load(13 * H) < 400


def test_evening_peak_wraps_over_midnight() -> None:
    load = HouseholdLoad(base_w=300, morning_w=0, evening_w=1000, evening_h=23.5)
    assert load(0.5 * H) == pytest.approx(300 + 1000 * math.exp(-0.5))
    assert load(0.5 * H) == pytest.approx(load(22.5 * H))


def test_appliance_spikes_add_their_power_deterministically() -> None:
    def spiky(seed: int) -> HouseholdLoad:
        return HouseholdLoad(
            base_w=0, morning_w=0, evening_w=0, appliances_per_day=3, rng=random.Random(seed)
        )

    load = spiky(1)
    minutes = [load(k * 60.0) for k in range(1440)]
    assert max(minutes) == pytest.approx(2000.0)
    assert 3 <= sum(m > 1000 for m in minutes) <= 3 * 11  # 3 spikes of 2..10 min
    assert all(m == 0.0 for m in minutes[: 6 * 60 - 1])  # none before 6 h
    assert minutes == [spiky(1)(k * 60.0) for k in range(1440)]
    assert minutes != [spiky(2)(k * 60.0) for k in range(1440)]


def test_constant_profile() -> None:
    flat = Constant(1234.0)
    assert flat(0.0) == flat(1e6) == 1234.0
