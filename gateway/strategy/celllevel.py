"""The cell-voltage level of a current limit: one decision per descent, not one per level.

The cell-voltage factors (derating.py) move between levels (level_ratio^k, 1, 0.7, 0.49...).
A cell entering the steep top of its curve under current crosses them within seconds: the
CCL fell 35, 24.5, 17 ... 2.9 A, eight decreases in twenty seconds, each a change of 0x351
(issue 14: at most four an hour; the charge-quality matrix's full charge). Here:

- A decrease goes at once to the level the extreme cell reaches within LOOKAHEAD_S at its
  present rate (the cell's slope, filtered over SLOPE_TAU_S): lower than the table asks
  today, never higher, so it is never late. The look-ahead stops at the edge (the allowed
  maximum for charging, the normal minimum for discharging): beyond it the table stops the
  direction, and a stop stays the CVL's and the table's own decision on the measured cell.
- Further decreases of the same factor wait until HOLD_S after the last one, but only while
  the cell is more than GUARD_V from the edge, measured raw (its IR drop included): there
  the table asks for a taper, not for protection, and the look-ahead has already gone
  lower. Within GUARD_V of the edge, beyond it, or with an unknown reading, every decrease
  applies in the same step.
- A level rises again only HOLD_S after the last decrease (the look-ahead stands that long),
  one level at a time (after a descent to the bottom, a jump back to what the table allows
  a relaxed cell took it over its maximum before the CVL cut), and once the cell is
  LEVEL_HYSTERESIS_V past the level's edge: at rest near an edge, 1 mV
  steps and noise moved the CCL a level up and down every quarter hour (issue 14). When the
  limit may actually rise is its ramp's business (ramp.py: relax wait, back-off).

The raw readings still bound everything that protects: the CVL cut and the node's own
protection act on them, whatever this level says. Without levels (level_ratio 1: follow
the table exactly) there is no look-ahead and no wait either.
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
# 0: off. At 120 s the descent was one decision, but the periodic-full-charge scenario then
# took a cell to 3.580 V (its check: 3.57 V); not understood yet (issue 14).
LOOKAHEAD_S = 0.0
# After a decrease, further decreases away from the edge wait this long (s); as LOOKAHEAD_S,
# so the wait never outlasts what the last decision already covered at the rate then seen.
HOLD_S = 0.0  # 0: off, as LOOKAHEAD_S
# Within this of the edge (V per cell, raw reading) a decrease never waits: the LFP table's
# last 25 mV, where the charge current is at most 5 % of the maximum.
GUARD_V = 0.025
# The cell's rate of change is filtered with this time constant (s): 1 mV steps and noise
# average out, a steep top shows within a minute.
SLOPE_TAU_S = 30.0


class CellLevel:
    """The level of one direction's cell-voltage factor, from its extreme cell.

    `worse_up` is True for the charge factor (the highest cell rising is worse), False for
    the discharge factor (the lowest cell falling is worse)."""

    def __init__(self, ratio: float, *, worse_up: bool) -> None:
        self.ratio = ratio
        self.sign = 1.0 if worse_up else -1.0
        self.level = 1.0
        self.slope = 0.0  # filtered rate towards the edge (V per s, > 0: getting worse)
        self._last = math.nan
        self._since_fall = math.inf

    def step(
        self, factor: Callable[[float], float], value: float, raw: float, edge: float, dt: float
    ) -> float:
        """The level for the extreme cell at `value` (V, without its IR drop) and `raw` (V,
        as read); `factor` is the table (cell voltage -> fraction), `edge` the voltage where
        the table stops the direction's taper (V); `dt` the time since the last step (s;
        infinite: unknown, nothing is held)."""
        s = self.sign
        known = math.isfinite(value) and math.isfinite(raw)
        if self.ratio >= 1.0:
            dt = math.inf  # no levels (follow the table exactly): no look-ahead, no wait
        if known and math.isfinite(self._last) and math.isfinite(dt) and dt > 0:
            rate = s * (value - self._last) / dt
            self.slope += (rate - self.slope) * min(1.0, dt / SLOPE_TAU_S)
        self._last = value if known and math.isfinite(dt) else math.nan
        self._since_fall += dt
        now = _level(factor(value), self.ratio)
        if now > self.level and self._since_fall >= HOLD_S:
            # Higher only past the edge by the hysteresis, not while the look-ahead of the
            # last decrease stands, and one level at a time: a cell at the steep top rests
            # far below its maximum once the current is gone, and a jump back to what the
            # table allows there (0.2 -> 24.5 A) took it 25 mV over before the CVL cut
            # (the matrix's full charge, no-pull-down; the periodic-full-charge scenario).
            step_up = max(SMALLEST_LEVEL, self.level / self.ratio) if self.ratio < 1.0 else 1.0
            self.level = max(
                self.level,
                min(step_up, _level(factor(value + s * LEVEL_HYSTERESIS_V), self.ratio)),
            )
        elif now < self.level:
            guarded = not known or now == 0.0 or s * (edge - raw) <= GUARD_V
            if guarded or self._since_fall >= HOLD_S:
                ahead = value
                room = s * (edge - value)
                if known and room > 0:
                    ahead = value + s * min(max(0.0, self.slope) * LOOKAHEAD_S, room)
                self.level = min(now, _level(factor(ahead), self.ratio))
                self._since_fall = 0.0
        return self.level


def _level(factor: float, ratio: float) -> float:
    """The highest level ratio^k at or below `factor` (k whole; the factor itself below
    SMALLEST_LEVEL, where the levels would crowd, and without levels)."""
    if math.isnan(factor):
        return 0.0
    if ratio >= 1.0 or factor <= SMALLEST_LEVEL or factor >= 1.0:
        return factor
    return float(ratio ** math.ceil(math.log(factor) / math.log(ratio) - 1e-9))
