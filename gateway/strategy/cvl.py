"""Charge voltage limit (CVL): keeps the highest cell below its allowed maximum.

A slow integral loop on the highest-cell error sets the CVL; a fast over-voltage cut
lowers it at once when a cell passes its allowed maximum; the output moves in the
protocol's steps. Why this does not oscillate against an inverter's slow voltage loop is
explained in docs/strategy.md. In short:

- ceiling: CVL <= cells x allowed maximum (the allowed maximum ramps down into float).
- slow loop: CVL moves by gain x error (V pack per V cell per s), at most `ramp_v_per_s`
  per cell, with a deadband; increases wait `hold_s` after any decrease. Its gain
  assumes the worst case that one cell takes the whole pack change, so the loop is well
  damped for delays of several seconds.
- cut: a cell above its allowed maximum sets CVL = string voltage - its excess over the
  set point at once. It assumes one cell takes the whole change: it never over-corrects.
- anti-windup: the CVL stays within what the cells can use: at most `cells x room` above
  the present string voltage while charging (room = set point - highest cell), and no
  further than `cells x excess` below it.
- output: whole protocol steps, rounded down (never above the loop's value); one step up
  only when the highest cell has room for it even if it alone took the step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gateway.chemistry import ChemistryProfile
from gateway.snapshot import BatterySnapshot
from gateway.strategy.settings import CvlSettings

_EPS = 1e-9


class CvlController:
    """The CVL for one battery of `cells` cells in series per string."""

    def __init__(
        self, settings: CvlSettings, profile: ChemistryProfile, cells: int, ramp_v_per_s: float
    ) -> None:
        """`ramp_v_per_s`: how fast the allowed cell maximum may fall (V per cell per s;
        the float ramp)."""
        if cells <= 0:
            raise ValueError("cells in series must be positive")
        self.settings = settings
        self.profile = profile
        self.cells = cells
        self.fall_rate = ramp_v_per_s
        self.floor = cells * profile.min_cell_v
        self.limit: float | None = None  # allowed cell maximum, ramped (V per cell)
        self._loop: float | None = None  # slow-loop value (V pack)
        self.output: float | None = None  # last CVL sent (V pack)
        self._since_decrease = math.inf
        self._last_pack: float | None = None  # last valid pack voltage, for holding
        self._loop_restarted = True  # the output follows the loop directly once
        self.changes = 0  # output changes since start, for monitoring

    def step(self, snap: BatterySnapshot, allowed_max: float, dt: float) -> float:
        """CVL (V) for one valid snapshot; `allowed_max` is the phase's cell maximum."""
        cfg, n = self.settings, self.cells
        if self.limit is None or allowed_max >= self.limit:
            self.limit = allowed_max
        else:
            self.limit = max(allowed_max, self.limit - self.fall_rate * dt)
        ceiling = n * self.limit
        setpoint = self.limit - cfg.margin_v
        strings = _strings(snap, cfg.band_v)
        if not strings:
            return self.hold(snap.voltage)
        self._last_pack = min(v for v, _, _ in strings)
        # The limiting string: least room (or most excess) for its highest cell.
        pack, top, near = min(strings, key=lambda s: setpoint - s[1])
        error = setpoint - top  # > 0: room, < 0: excess (V per cell)

        # Hard limits, applied to the output at once: the ceiling and the over-voltage cut.
        hard = ceiling
        for s_pack, s_top, _ in strings:
            if s_top > self.limit:
                hard = min(hard, s_pack + (setpoint - s_top))
        loop = min(ceiling, pack + n * error) if self._loop is None else self._loop
        before = loop
        if abs(error) > cfg.deadband_v and (error < 0 or self._since_decrease >= cfg.hold_s):
            rate = max(-cfg.ramp_v_per_s * n, min(cfg.ramp_v_per_s * n, cfg.gain_per_s * error))
            loop += rate * dt
        if error > 0 and snap.current > 0:
            loop = min(loop, pack + n * error)  # no wind-up beyond what the cells can take
        loop = max(loop, pack + n * min(error, 0.0))  # nor below what they could need
        loop = max(self.floor, min(loop, hard))
        self._since_decrease = 0.0 if loop < before - _EPS else self._since_decrease + dt
        self._loop = loop
        return self._quantize(loop, max(self.floor, hard), error * near)

    def hold(self, pack: float = math.nan) -> float:
        """CVL while stopped or without usable data: the pack voltage (`pack` when known,
        else the last known one), at most cells x float voltage, never below the floor.
        The loop restarts from scratch afterwards."""
        n = self.cells
        if math.isfinite(pack):
            self._last_pack = pack
        pack = self._last_pack if self._last_pack is not None else math.inf
        value = max(self.floor, min(pack, n * self.profile.float_v))
        self._loop = None
        self._loop_restarted = True
        self._since_decrease = 0.0
        return self._set_output(self._floor_step(value))

    def _quantize(self, loop: float, hard: float, room: float) -> float:
        """Whole steps, with hysteresis: down once the loop is half a step below the
        output, up one step when the loop is a step above and the cells have `room` (V,
        room of the highest cell times the cells rising with it) for it."""
        step = self.settings.step_v
        out = self.output
        if out is None or self._loop_restarted:
            self._loop_restarted = False
            out = self._floor_step(loop)
        elif loop < out - step / 2:
            out = self._floor_step(loop + step / 2)
        elif self._floor_step(loop) > out and room >= step:
            out += step
        else:
            # The loop may not wind up past the next step while the output waits.
            self._loop = min(loop, out + step)
        return self._set_output(min(out, self._floor_step(hard)))

    def _floor_step(self, value: float) -> float:
        """The highest whole output step at or below `value` (at least one step)."""
        step = self.settings.step_v
        return max(step, math.floor(value / step + _EPS) * step)

    def _set_output(self, value: float) -> float:
        if value != self.output:
            self.changes += 1
        self.output = value
        return value


def _strings(snap: BatterySnapshot, band: float) -> list[tuple[float, float, float]]:
    """(string voltage, highest cell, cells near the highest) per online string.

    A string whose own cells are not all known uses the battery's highest cell; without
    per-string data the battery counts as one string.
    """
    result: list[tuple[float, float, float]] = []
    for string in snap.strings:
        if not string.online or not math.isfinite(string.voltage):
            continue
        cells: list[float] = []
        for node in string.nodes:
            cells.extend(snap.cell_voltages.get(node, ()))
        if cells and all(math.isfinite(v) for v in cells):
            top = max(cells)
            result.append((string.voltage, top, _near(cells, top, band)))
        elif math.isfinite(snap.max_cell):
            result.append((string.voltage, snap.max_cell, 1.0))
    if not result and math.isfinite(snap.voltage) and math.isfinite(snap.max_cell):
        result.append((snap.voltage, snap.max_cell, 1.0))
    return result


def _near(cells: Sequence[float], top: float, band: float) -> float:
    """How many cells rise with the highest: full weight at its voltage, none `band` below."""
    return max(1.0, sum(max(0.0, 1.0 - (top - v) / band) for v in cells))
