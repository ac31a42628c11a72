"""The highest cell's voltage without its IR drop, for the charge and discharge derating.

Under current a cell reads its open-circuit voltage plus current x internal resistance
(plus sense wires and busbars). Derating the current from the raw reading makes a loop:
less current, less IR drop, a lower reading, more current again (issue 14: a 33 s sawtooth
with a high-resistance pack, 119 changes of 0x351 an hour). The derating instead looks at

    v - I x r, low-pass filtered with FILTER_TAU_S

where r is learnt from the readings themselves: least squares of the change of the cell
voltage against the change of the current between consecutive samples (forgetting factor
FORGET per sample), only over steps where the current moved by at least STEP_C (C-rate), the
same cell stayed the extreme one and the interval was short. OCV drift and quantisation
(1 mV steps) are not correlated with those current steps: they average out. The estimate
stays within 0..R_MAX_OHM_AH / capacity; an estimate too low only weakens the compensation
(the raw reading is the bound: the CVL and the node protection work on raw voltages).
"""

from __future__ import annotations

import math

from gateway.contracts.snapshot import BatterySnapshot, CellRef

FILTER_TAU_S = 10.0  # s: smooths 1 mV steps and noise; short against any cell's rise
FORGET = 0.995  # weight of the past per accepted sample
STEP_C = 0.01  # a current step of at least this C-rate teaches the resistance
MAX_GAP_S = 2.0  # s: samples further apart do not pair (the OCV moved meanwhile)
# Highest believable cell resistance times capacity (Ohm x Ah): 10 mOhm for a 100 Ah cell,
# ten times a healthy LFP cell with its busbar.
R_MAX_OHM_AH = 1.0


class IrCompensated:
    """One extreme cell (highest or lowest) without its IR drop, filtered."""

    def __init__(self, highest: bool) -> None:
        self.highest = highest
        self.r_ohm = 0.0  # learnt resistance of the extreme cell
        self.value = math.nan  # compensated, filtered voltage (V)
        self._sxy = 0.0
        self._sxx = 0.0
        self._last: tuple[float, float, CellRef | None, float] | None = None

    def step(self, snap: BatterySnapshot, dt: float) -> float:
        """The compensated voltage of the extreme cell for a valid snapshot (V)."""
        if self.highest:
            v, at = snap.max_cell, snap.max_cell_at
        else:
            v, at = snap.min_cell, snap.min_cell_at
        i = snap.current
        if not (math.isfinite(v) and math.isfinite(i)):
            self._last = None
            return v
        self._learn(v, i, at, snap, dt)
        raw = v - i * self.r_ohm
        if self.highest and i < 0:
            raw = v  # discharging: the highest cell only matters for charging
        if not self.highest and i > 0:
            raw = v
        value = self.value
        if math.isnan(value):
            value = raw
        else:
            follow = dt / FILTER_TAU_S
            value += (raw - value) * (follow if follow < 1.0 else 1.0)  # min(1.0, follow)
        # Filtered only towards the safe side: a rise of the highest cell (a fall of the
        # lowest) shows at once, so tightening is never delayed; relaxing is. (The max()
        # and min() as comparisons: two steps ask every tick.)
        if self.highest:
            if raw > value:  # noqa: PLR1730 (max(value, raw) without a C call)
                value = raw
        elif raw < value:  # min(value, raw)
            value = raw
        self.value = value
        return value

    def _learn(
        self, v: float, i: float, at: CellRef | None, snap: BatterySnapshot, dt: float
    ) -> None:
        last, self._last = self._last, (v, i, at, snap.time)
        cap = snap.capacity_ah
        if last is None or not (math.isfinite(cap) and cap > 0):
            return
        v0, i0, at0, t0 = last
        di, dv = i - i0, v - v0
        # The current step asked first: most samples have none, and the rest is not asked.
        if abs(di) < STEP_C * cap or at != at0 or not 0 < snap.time - t0 <= MAX_GAP_S:
            return
        self._sxy = FORGET * self._sxy + dv * di
        self._sxx = FORGET * self._sxx + di * di
        self.r_ohm = max(0.0, min(R_MAX_OHM_AH / cap, self._sxy / self._sxx))
