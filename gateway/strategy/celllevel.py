"""The cell-voltage level of a current limit: down at once, up one level at a time.

The cell-voltage factors (derating.py) move between levels (level_ratio^k, 1, 0.7, 0.49...):
a limit that followed a raw reading through its own IR drop would cycle. Here:

- A decrease applies at once, whatever the cell's distance from its maximum: it protects.
  (A cell entering the steep top under current still crosses several levels within seconds,
  each a change of 0x351; making the descent one decision by looking ahead at the cell's
  rate took a cell to 3.580 V in the periodic-full-charge scenario (its check: 3.57 V), for
  a reason not found yet, so it is not done: docs/strategy.md, issue 14.)
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
  what held, and fails, if it does, by one level. A stopped limit (sent 0) rises as before:
  a stop is a phase's or a window's, not a descent's.

The raw readings still bound everything that protects: the CVL cut and the node's own
protection act on them, whatever this level says. Without levels (level_ratio 1: follow the
table exactly) the factor is used as it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable

# Below this fraction the factor is used as it is: near the top of the charge a few tenths
# of an ampere matter, and the current there changes little per level.
SMALLEST_LEVEL = 0.02
# A level rises only once the cell is this far past the level's edge (V per cell).
LEVEL_HYSTERESIS_V = 0.005


class CellLevel:
    """The level of one direction's cell-voltage factor, from its extreme cell.

    `worse_up` is True for the charge factor (the highest cell rising is worse), False for
    the discharge factor (the lowest cell falling is worse)."""

    def __init__(self, ratio: float, *, worse_up: bool) -> None:
        self.ratio = ratio
        self.sign = 1.0 if worse_up else -1.0
        self.level = 1.0

    def step(
        self,
        factor: Callable[[float], float],
        value: float,
        sent: float | None = None,
        least_rise: float = 0.0,
    ) -> float:
        """The level for the extreme cell at `value` (V, without its IR drop); `factor` is
        the table (cell voltage -> fraction). `sent`: the limit last sent, as a fraction on
        the level's scale (None: not known); `least_rise` the smallest rise the limit makes
        (same scale)."""
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
            self.level = now
        return self.level


def _level(factor: float, ratio: float) -> float:
    """The highest level ratio^k at or below `factor` (k whole; the factor itself below
    SMALLEST_LEVEL, where the levels would crowd, and without levels)."""
    if math.isnan(factor):
        return 0.0
    if ratio >= 1.0 or factor <= SMALLEST_LEVEL or factor >= 1.0:
        return factor
    return float(ratio ** math.ceil(math.log(factor) / math.log(ratio) - 1e-9))
