"""Power over the simulated day: PV and household load.

A power curve is a callable `curve(t) -> watts`, t in seconds since the simulation start; the
time of day at t = 0 is `start_h` (hours). Curves are pure functions of t: the same t gives
the same watts whatever the call order. Random clouds and appliance spikes are drawn per day
from a seed taken once from the `random.Random` given at construction.

    rng = random.Random(seed)
    pv = SolarDay(peak_w=6000, start_h=6.0, cloudiness=0.3, rng=rng)
    load = HouseholdLoad(start_h=6.0, appliances_per_day=4, rng=rng)
    surplus_w = pv(t) - load(t)
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Constant", "HouseholdLoad", "PowerCurve", "SolarDay", "day_and_hour"]

DAY_S = 86400.0
# Clouds and appliances switch over this time (s) instead of stepping in zero time.
EDGE_S = 30.0


class PowerCurve(Protocol):
    """Power (W) at t seconds since the simulation start."""

    def __call__(self, t: float) -> float: ...


def day_and_hour(t: float, start_h: float) -> tuple[int, float]:
    """Day number (0 = the first) and hour of day (0..24) at t seconds after start_h."""
    seconds = start_h * 3600.0 + t
    day = math.floor(seconds / DAY_S)
    return day, (seconds - day * DAY_S) / 3600.0


@dataclass(frozen=True, slots=True)
class Constant:
    """The same power all the time."""

    watts: float

    def __call__(self, t: float) -> float:
        return self.watts


@dataclass(frozen=True, slots=True)
class _Event:
    start_h: float
    duration_h: float
    value: float  # meaning depends on the curve: attenuation or watts

    def weight(self, hour: float) -> float:
        """0 outside the event, 1 inside, linear over EDGE_S at both ends."""
        edge_h = EDGE_S / 3600.0
        rise = (hour - self.start_h) / edge_h
        fall = (self.start_h + self.duration_h - hour) / edge_h
        return min(max(min(rise, fall), 0.0), 1.0)


class _Draw(Protocol):
    def __call__(self, rng: random.Random) -> list[_Event]: ...


class _DailyEvents:
    """Random events per day: the same day always gets the same events."""

    def __init__(self, rng: random.Random | None, draw: _Draw) -> None:
        self._seed = rng.getrandbits(64) if rng is not None else None
        self._draw = draw
        self._cached: tuple[int, tuple[_Event, ...]] | None = None

    def on(self, day: int) -> tuple[_Event, ...]:
        if self._seed is None:
            return ()
        if self._cached is None or self._cached[0] != day:
            day_rng = random.Random(self._seed * 100_003 + day)
            self._cached = (day, tuple(self._draw(day_rng)))
        return self._cached[1]


class SolarDay:
    """PV power: a clear-sky bell between sunrise and sunset, dimmed by passing clouds.

    Clear sky: peak_w * sin(pi * x) ** 1.5, x running 0..1 from sunrise to sunset. With
    cloudiness c (0..1), each daylight hour starts a cloud with probability c; a cloud lasts
    2..20 min (longer when c is high) and lets 10..70 % of the light through.
    """

    def __init__(
        self,
        peak_w: float = 5000.0,
        sunrise_h: float = 6.5,
        sunset_h: float = 19.5,
        start_h: float = 0.0,
        cloudiness: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        if not 0.0 <= sunrise_h < sunset_h <= 24.0:
            raise ValueError("need 0 <= sunrise_h < sunset_h <= 24")
        if not 0.0 <= cloudiness <= 1.0:
            raise ValueError("cloudiness must be in 0..1")
        if cloudiness > 0.0 and rng is None:
            raise ValueError("clouds need a random.Random")
        if peak_w < 0.0:
            raise ValueError("peak_w must be >= 0")
        self.peak_w = peak_w
        self.sunrise_h = sunrise_h
        self.sunset_h = sunset_h
        self.start_h = start_h
        self.cloudiness = cloudiness
        self._clouds = _DailyEvents(rng if cloudiness > 0.0 else None, self._draw_clouds)

    def clear_sky(self, hour: float) -> float:
        """Power (W) without clouds at an hour of the day."""
        x = (hour - self.sunrise_h) / (self.sunset_h - self.sunrise_h)
        if not 0.0 < x < 1.0:
            return 0.0
        s = math.sin(math.pi * x)
        return self.peak_w * s * math.sqrt(s)

    def __call__(self, t: float) -> float:
        day, hour = day_and_hour(t, self.start_h)
        power = self.clear_sky(hour)
        if power == 0.0:
            return 0.0
        for cloud in self._clouds.on(day):
            # Outside its span a cloud's weight is 0 and the factor exactly 1: not worked out
            # (every step asks, and most of a day's clouds are elsewhere in it).
            if cloud.start_h < hour < cloud.start_h + cloud.duration_h:
                power *= 1.0 - cloud.weight(hour) * (1.0 - cloud.value)
        return power

    def _draw_clouds(self, rng: random.Random) -> list[_Event]:
        c = self.cloudiness
        clouds = []
        for hour in range(math.floor(self.sunrise_h), math.ceil(self.sunset_h)):
            if rng.random() < c:
                minutes = rng.uniform(2.0, 20.0) * (0.5 + c)
                clouds.append(_Event(hour + rng.random(), minutes / 60.0, rng.uniform(0.1, 0.7)))
        return clouds


class HouseholdLoad:
    """Household consumption: a base load, a morning and an evening peak (Gaussian bumps
    of width peak_width_h, wrapping over midnight) and optional appliance spikes (kettle,
    oven, washing machine: appliance_w for 2..10 min at random times between 6 and 23 h)."""

    def __init__(
        self,
        base_w: float = 300.0,
        morning_w: float = 1200.0,
        morning_h: float = 7.5,
        evening_w: float = 2000.0,
        evening_h: float = 19.0,
        peak_width_h: float = 1.0,
        start_h: float = 0.0,
        appliances_per_day: int = 0,
        appliance_w: float = 2000.0,
        rng: random.Random | None = None,
    ) -> None:
        if min(base_w, morning_w, evening_w, appliance_w) < 0.0 or peak_width_h <= 0.0:
            raise ValueError("powers must be >= 0 and the peak width > 0")
        if appliances_per_day < 0 or (appliances_per_day > 0 and rng is None):
            raise ValueError("appliance spikes need appliances_per_day >= 0 and a Random")
        self.base_w = base_w
        self.peaks = ((morning_h, morning_w), (evening_h, evening_w))
        self.peak_width_h = peak_width_h
        self.start_h = start_h
        self.appliances_per_day = appliances_per_day
        self.appliance_w = appliance_w
        self._spikes = _DailyEvents(rng if appliances_per_day > 0 else None, self._draw_spikes)

    def __call__(self, t: float) -> float:
        day, hour = day_and_hour(t, self.start_h)
        power = self.base_w
        for at_h, watts in self.peaks:
            d = (hour - at_h + 12.0) % 24.0 - 12.0  # shortest distance over midnight
            power += watts * math.exp(-0.5 * (d / self.peak_width_h) ** 2)
        for spike in self._spikes.on(day):
            if spike.start_h < hour < spike.start_h + spike.duration_h:  # else it adds 0.0
                power += spike.value * spike.weight(hour)
        return power

    def _draw_spikes(self, rng: random.Random) -> list[_Event]:
        return [
            _Event(rng.uniform(6.0, 23.0), rng.uniform(2.0, 10.0) / 60.0, self.appliance_w)
            for _ in range(self.appliances_per_day)
        ]
