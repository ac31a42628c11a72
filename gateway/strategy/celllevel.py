"""The cell-voltage level of a current limit: down at once, up one level at a time.

The cell-voltage factors (derating.py) move between levels (level_ratio^k, 1, 0.7, 0.49...):
a limit that followed a raw reading through its own IR drop would cycle. Here:

- A decrease applies at once, whatever the cell's distance from its maximum: it protects.
  A cell entering the steep top under a large current crossed the levels within seconds,
  the CCL falling 35, 24.5, 17.1 ... 2.0 A in eight seconds, eight changes of 0x351, with
  the cell still going over its maximum under the ideal inverter (issue 14, the matrix's
  full charge at 09:48). So a cell that reaches the last levels (SMALLEST_LEVEL) within
  HEADING_S at its present rate (filtered over SLOPE_TAU_S) gets one decision: the highest
  level that still holds where the cell gets within LOOKAHEAD_S at that rate scaled to the
  level's own current (at a tenth of the current a cell rises about a tenth as fast), never
  higher than the reading's own level and, on that forecast, no lower than SMALLEST_LEVEL
  (below it, and a stop, only the reading decides). A slower cell goes level by level, as
  the reading goes: looking ahead at 0.4 mV/s (the full-charge scenario's 0.5 C, 74 mV
  under the maximum) cut its current early, and the cells' spread in float was 33 mV
  against 30 (its check). An earlier look-ahead that also made further decreases wait
  while the cell was far from its maximum took a cell to 3.580 V in the
  periodic-full-charge scenario; nothing waits here, a level is only ever lower, sooner.
- A level rises only once the cell is LEVEL_HYSTERESIS_V past the level's edge (at rest near
  an edge, 1 mV steps and noise moved the CCL a level up and down every quarter hour), and
  one level at a time: a cell at the steep top rests far below its maximum once the current
  is gone, and a jump back to what the table allows there (0.2 -> 24.5 A) took it 25 mV over
  its maximum before the CVL cut (the matrix's full charge with no-pull-down; the
  periodic-full-charge scenario). One level above the limit *sent*, when the caller tells
  it (`sent`): while the limit's ramp waits (ramp.py: relax wait, back-off) the level would
  otherwise climb level by level to what the resting cell allows, and the retry jumped
  there anyway (0.1 -> 17.1 A after a descent, the cell over again within a minute and a
  descent of ten changes of 0x351; issue 14, the matrix's full charge). So a retry after a
  descent is one level (at least `least_rise`, the smallest change the limit makes) above
  what held, and fails, if it does, by one level. A stopped limit (sent 0) and a caller
  that does not tell (`sent` None) rise as the table allows: a stop is a phase's or a
  window's, not a descent's.

The raw readings still bound everything that protects: the CVL cut and the node's own
protection act on them, whatever this level says. Without levels (level_ratio 1: follow the
table exactly) the factor is used as it is, with no look-ahead.
"""

from __future__ import annotations

import math
from collections.abc import Callable

# Below this fraction the factor is used as it is: near the top of the charge a few tenths
# of an ampere matter, and the current there changes little per level.
SMALLEST_LEVEL = 0.02
# A level rises only once the cell is this far past the level's edge (V per cell).
LEVEL_HYSTERESIS_V = 0.005
# A decrease goes to the level the cell reaches within this long at its present rate (s).
LOOKAHEAD_S = 120.0
# ... but only for a cell that reaches the last levels (SMALLEST_LEVEL) within this long at
# its present rate (s): one entering the steep top under a large current.
HEADING_S = 60.0
# The cell's rate is filtered with this time constant (s): 1 mV steps and noise average
# out, a cell entering the steep top shows within seconds (its rate is mV per second).
SLOPE_TAU_S = 30.0
# A step of the current larger than this (fraction of the maximum) is left out of the rate.
FLOW_STEP = 0.05


class CellLevel:
    """The level of one direction's cell-voltage factor, from its extreme cell.

    `worse_up` is True for the charge factor (the highest cell rising is worse), False for
    the discharge factor (the lowest cell falling is worse)."""

    def __init__(self, ratio: float, *, worse_up: bool) -> None:
        self.ratio = ratio
        self.sign = 1.0 if worse_up else -1.0
        self.level = 1.0
        self.slope = 0.0  # filtered rate towards worse (V per s; > 0: getting worse)
        self._last = math.nan
        self._last_flow = math.nan

    def step(
        self,
        factor: Callable[[float], float],
        value: float,
        sent: float | None = None,
        least_rise: float = 0.0,
        dt: float = 0.0,
        flow: float = math.nan,
    ) -> float:
        """The level for the extreme cell at `value` (V, without its IR drop); `factor` is
        the table (cell voltage -> fraction). `sent`: the limit last sent, as a fraction on
        the level's scale (None: not known); `least_rise` the smallest rise the limit makes
        (same scale); `dt` the time since the last step (s; 0: no rate is known, no
        look-ahead); `flow` the present current in the limit's direction on the level's
        scale (NaN: not known, the rate is taken as it is)."""
        self._track(value, dt, flow)
        now = _level(factor(value), self.ratio)
        if now > self.level:
            base = self.level
            if sent is not None and sent > 0.0:
                base = min(base, sent)
            step_up = (
                max(SMALLEST_LEVEL, base / self.ratio, base + least_rise)
                if self.ratio < 1.0
                else 1.0
            )
            self.level = max(
                self.level,
                min(step_up, _level(factor(value + self.sign * LEVEL_HYSTERESIS_V), self.ratio)),
            )
        elif now < self.level:
            self.level = self._needed(factor, value, now, flow)
        return self.level

    def _needed(
        self, factor: Callable[[float], float], value: float, now: float, flow: float
    ) -> float:
        """The highest level, at most `now`, that still holds where the cell gets within
        LOOKAHEAD_S at its present rate scaled to that level's current (the rate of a
        cell charged at a fraction `flow` of the maximum goes with the current: at a level
        below `flow` the cell rises that much slower). At least SMALLEST_LEVEL (or `now`
        when lower): a stop is the reading's own."""
        if self.slope <= 0.0 or self.ratio >= 1.0 or now <= SMALLEST_LEVEL:
            return now
        if _level(factor(value + self.sign * self.slope * HEADING_S), self.ratio) > SMALLEST_LEVEL:
            # Not at its last levels within HEADING_S at this rate: level by level, as
            # the reading goes (the full-charge scenario's 0.5 C, module docstring).
            return now
        k = round(math.log(now) / math.log(self.ratio))
        while True:
            level = self.ratio**k
            if level <= SMALLEST_LEVEL:
                return SMALLEST_LEVEL
            share = min(1.0, level / flow) if flow > 0.0 else 1.0
            later = value + self.sign * self.slope * share * LOOKAHEAD_S
            if _level(factor(later), self.ratio) >= level - 1e-9:
                return level
            k += 1

    def _track(self, value: float, dt: float, flow: float) -> None:
        """Follow the cell's rate towards worse; an unknown reading or time forgets it. A
        step of the current is left out: the reading without its IR drop still jumps with
        it (the learnt resistance is not exact at the steep top), and a limit's own
        decrease made the rate look nearly twice as fast (the full-charge scenario)."""
        if not (math.isfinite(value) and dt > 0.0):
            if not math.isfinite(value):
                self.slope, self._last = 0.0, math.nan
            return
        steady = not abs(flow - self._last_flow) > FLOW_STEP  # NaN: nothing known, steady
        last = self._last
        if steady and math.isfinite(last):
            rate = self.sign * (value - last) / dt
            follow = dt / SLOPE_TAU_S
            self.slope += (rate - self.slope) * (follow if follow < 1.0 else 1.0)  # min(1, f)
        self._last, self._last_flow = value, flow


def _level(factor: float, ratio: float) -> float:
    """The highest level ratio^k at or below `factor` (k whole; the factor itself below
    SMALLEST_LEVEL, where the levels would crowd, and without levels)."""
    if factor >= 1.0:  # the usual case first: nothing derates (NaN is not >= 1.0)
        return factor
    if math.isnan(factor):
        return 0.0
    if ratio >= 1.0 or factor <= SMALLEST_LEVEL:
        return factor
    return float(ratio ** math.ceil(math.log(factor) / math.log(ratio) - 1e-9))
