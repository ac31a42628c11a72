"""Charge voltage limit (CVL): keeps the highest cell below its allowed maximum.

A slow integral loop on the highest-cell error sets the CVL; a fast over-voltage cut
lowers it at once when a cell passes its allowed maximum; the output moves in whole
protocol steps. docs/strategy.md explains why this does not oscillate against an
inverter's slow voltage loop. In short:

- ceiling: CVL <= cells x allowed maximum; the allowed maximum ramps down into float.
- slow loop: the CVL moves by gain x near x error per second (error = set point minus
  highest cell, near = how many cells rise with the highest), at most `ramp_v_per_s` per
  cell upwards and `fall_v_per_s` downwards (the steep LFP top needs the faster fall), not
  within the deadband, and upwards only `hold_s` after its last decrease and only with room
  for half an output step at the highest cell (no limit cycle from the 0.1 V steps).
- cut: while charging, a cell above its allowed maximum sets the CVL to string voltage -
  near x excess at once (assumes only the cells near the highest take the change, so it
  cannot over-correct by more than that estimate); if the cell is still above once the
  inverter has had time to follow the last decrease (SETTLE_S), it cuts again from the CVL
  itself, and again every SETTLE_S: an inverter that reads the pack low is caught however
  far off its voltmeter is. Only decreases restart that wait: the loop's own steps up do
  not (they did, and the repeated cut never came: issue 14). For a charger above the CCL
  with the CVL more than a step above the pack, a cell past its set point already brings
  it to string voltage - near x excess over the set point.
- at the top (after a cut, until the allowed maximum rises): the CVL rises no further than
  takes the highest cell to its maximum from its recent peak (the highest reading, falling
  back 1 mV/s), from the pack voltage averaged over CHARGE_TAU_S: rises on the readings
  between an inverter's swings, or from a cell resting on its plateau, took it over.
- charging stopped (CCL 0: temperature, node flags, the voltage derating, the start-up
  hold): the CVL goes to the pack voltage rounded down and never rises while it stays so,
  so a charger that ignores CCL and the enable bit does not charge either; it restarts
  from the cells when the CCL comes back.
- current above CCL (an inverter that ignores or overshoots it, see chargelimit.py): the
  CVL goes below the pack voltage by the excess current times the pack resistance and a
  step, then one step lower every TIGHTEN_S while the current is still above; it does not
  rise while the condition lasts, and for an hour after the inverter is held to the CCL:
  pack + (CCL - current) x resistance, and no more than the highest cell can take once
  the current has tapered.
- anti-windup: while the inverter charges at CCL its voltage loop is idle: the CVL may
  then not rise beyond what the highest cell can take (string voltage + near x room); the
  slow loop never falls further than all cells could need (string voltage - cells x
  excess).
- inverter voltmeter: an inverter reading the pack low keeps charging above the CVL. That
  offset is learnt while charging with the pack (as read, and averaged over CHARGE_TAU_S)
  at or above a CVL that has not fallen for SETTLE_S, from the averaged pack, and
  subtracted (a high reading only lowers the charge a little and is left alone; the
  estimate is kept while the inverter is current-limited below the CVL).
- output: whole protocol steps, never above the hard limits; down once the loop is half
  a step below, up once it is a whole step above (hysteresis), at most every RISE_EVERY_S
  and then by all the whole steps the loop gained (fewer changes of 0x351).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from itertools import repeat

from gateway.contracts.chemistry import ChemistrySpec
from gateway.contracts.snapshot import BatterySnapshot
from gateway.strategy.settings import CvlSettings

_EPS = 1e-9
_PACK_V = operator.itemgetter(0)  # the string voltage of a _strings() entry
# Longer than any inverter takes to follow a new CVL: a CVL that has not fallen for this
# long has had its effect (for the repeated cut and for learning the voltmeter offset).
SETTLE_S = 20.0
# While the current stays above CCL, the CVL falls one more step this often: an inverter
# follows a lower CVL within a few seconds.
TIGHTEN_S = 5.0
OFFSET_TAU_S = 60.0  # the offset estimate follows with this time constant
# After any fall of the output (a cut: a cell over its maximum, or the current above CCL; or
# the slow loop) the CVL does not return to the step it fell from for this long (s): with a
# cell at the steep top one 0.1 V step is 10-20 A, and rising back to it repeated the cut
# every hour or so, ten changes of 0x351 each time (issue 14, the benchmark's full charge
# with a CVL-only charger); in float a set point between two steps made the slow loop toggle
# them every ten minutes. As the limits' relax_after_s: no cycle faster than four an hour.
RETRY_S = 900.0
# Falling again from the same step (within twice this) doubles the wait, up to this (s): a
# step that takes the cell over every time is tried at most once an hour (as relax_max_s).
RETRY_MAX_S = 3600.0
# The output rises at most this often (s), to the whole steps the loop has gained meanwhile:
# the loop's 8 mV/s made a change of 0x351 every 12.5 s on the way up (issue 14: at most 4
# changes an hour; multis misbehave when limits change often).
RISE_EVERY_S = 60.0
# Charging, for the repeated cut and the offset: above this C-rate (a trickle is noise).
CHARGING_C = 0.005
# The repeated cut and the offset learning need the charge current above CHARGING_C on
# average over this time constant (s), not in one sample: a current sensor's offset and
# noise (0.3 A and 0.2 A in the charge-quality matrix) crossed 0.5 A now and then with a
# pack resting above the float CVL, and each crossing cut the CVL another step, down to its
# floor, with a learnt voltmeter offset of 0.8 V (issue 14: 56 changes of 0x351 in an hour
# with an inverter that does not pull the pack down). The first cut stays on the sample.
CHARGE_TAU_S = 10.0
# The largest offset believed (V per cell); a larger difference is something else.
OFFSET_MAX_V = 0.05
# At the top, rises read the highest cell's recent peak: the highest reading, falling back
# at this rate (V per s). An inverter whose voltage loop swings about the CVL (the matrix's
# full charge: +-16 A every other second at the steep top) showed the cell 90 mV lower every
# other second, and the loop rose on those readings (issue 14).
PEAK_FALL_V_PER_S = 0.001


class CvlController:
    """The CVL for one battery of `cells` cells in series per string."""

    def __init__(
        self, settings: CvlSettings, chemistry: ChemistrySpec, cells: int, fall_rate: float
    ) -> None:
        """`fall_rate`: how fast the allowed cell maximum may fall (V per cell per s; the
        float ramp)."""
        if cells <= 0:
            raise ValueError("cells in series must be positive")
        self.settings = settings
        self.chemistry = chemistry
        self.cells = cells
        self.fall_rate = fall_rate
        self.floor = cells * chemistry.min_cell_v
        self.limit: float | None = None  # allowed cell maximum, ramped (V per cell)
        self.output: float | None = None  # last CVL (V pack)
        self.offset = 0.0  # learnt inverter voltmeter offset, <= 0 (V pack)
        self._loop: float | None = None  # slow-loop value (V pack); None: restart
        self._since_decrease = 0.0
        self._since_down_s = 0.0  # time since the output last fell
        self._since_rise_s = math.inf  # time since the output last rose
        self._last_pack: float | None = None  # last valid pack voltage, for holding
        self._holding = False
        self._forbidden = False  # charging was forbidden in the last step
        self._was_over = False  # the charge current was above CCL in the last step
        self._cut_from: float | None = None  # the output the last cut came from (V pack)
        self._since_cut_s = math.inf
        self._retry_s = RETRY_S  # the present wait before rising back to _cut_from
        self._charge_a = 0.0  # the charge current, filtered over CHARGE_TAU_S (A)
        self._pack_v = math.nan  # the pack voltage, filtered over CHARGE_TAU_S (V)
        self._peak = -math.inf  # the highest cell's recent peak (V)
        self._topped = False  # a cell went over its maximum while charging (a cut)
        # The last snapshot's strings (_strings): held_by_cell and step read the same
        # snapshot in one controller step. Keyed by the snapshot itself (frozen, and held
        # here, so no other snapshot can take its identity).
        self._strings_of: tuple[BatterySnapshot, list[tuple[float, float, float]]] | None = None

    def step(
        self,
        snap: BatterySnapshot,
        allowed_max: float,
        dt: float,
        current_limited: bool,
        *,
        charge_allowed: bool = True,
        over_current: bool = False,
        tighten: bool = False,
        headroom: float | None = None,
        excess_v: float = 0.0,
        ir_cell_v: float = 0.0,
    ) -> float:
        """CVL (V) for one valid snapshot; `allowed_max` is the phase's cell maximum (V),
        `current_limited` tells that the inverter charges at CCL (its voltage loop idle),
        `charge_allowed` False that no charge may flow (CCL 0),
        `over_current` that the charge current has stayed above CCL (chargelimit.py):
        the CVL does not rise, and falls while `tighten` says it still is. `headroom`
        (V pack), for an inverter that ignores CCL: the CVL rises at most this far above the
        pack voltage (the CCL left times the pack's resistance); `excess_v` the current above
        CCL times that resistance: the first tightening goes that much further down;
        `ir_cell_v` the IR drop of a cell at the present current (V)."""
        cfg, n = self.settings, self.cells
        self._since_cut_s += dt
        if self.limit is None or allowed_max >= self.limit:
            if self.limit is not None and allowed_max > self.limit:
                self._cut_from = None  # a higher maximum (a full charge): the old cut is moot
                self._retry_s = RETRY_S
                self._topped = False
            self.limit = allowed_max
        else:
            self.limit = max(allowed_max, self.limit - self.fall_rate * dt)
        ceiling = n * self.limit
        setpoint = self.limit - cfg.margin_v
        strings = self._strings(snap)
        if not strings:
            return self.hold(snap.voltage)
        self._holding = False
        self._last_pack = min(map(_PACK_V, strings))  # the lowest string voltage
        charging = snap.current > CHARGING_C * snap.capacity_ah
        follow = min(1.0, dt / CHARGE_TAU_S)
        if math.isfinite(snap.current):
            self._charge_a += (snap.current - self._charge_a) * follow
        if not math.isfinite(self._pack_v):
            self._pack_v = self._last_pack
        self._pack_v += (self._last_pack - self._pack_v) * follow
        sustained = charging and self._charge_a > CHARGING_C * snap.capacity_ah
        self._learn_offset(sustained, self._last_pack, dt)
        if charge_allowed and self._forbidden:
            self._loop = None  # start afresh from the cells, as after a stop
        self._forbidden = not charge_allowed
        was_over, self._was_over = self._was_over, over_current
        # The limiting string: least room (or most excess) for its highest cell.
        measured, top, near = min(strings, key=lambda s: setpoint - s[1])
        pack = measured + self.offset
        error = setpoint - top  # > 0: room, < 0: excess (V per cell)
        self._peak = max(top, self._peak - PEAK_FALL_V_PER_S * dt)

        # Hard limits, applied to the output at once: the ceiling, and the cut while charging
        # (a cell resting above the limit, e.g. entering float, is the slow loop's job).
        hard = ceiling
        settled = self._since_down_s >= SETTLE_S and self.output is not None
        over = False  # a cell above its maximum while charging
        for s_pack, s_top, s_near in strings:
            if charging and s_top > self.limit:
                over = True
                drop = s_near * (s_top - self.limit)
                hard = min(hard, s_pack + self.offset - drop)
                if settled and sustained and self.output is not None:
                    # Still above after the inverter had time to follow: cut again from the
                    # CVL itself, whatever its voltmeter makes of our pack voltage.
                    hard = min(hard, self.output - max(drop, cfg.step_v))
        # Past its set point while charging above the CCL (by more than half a step's worth
        # of current: only the CVL can stop this charger) with the CVL more than a step
        # above the pack: the CVL goes at once to what the highest cell can take, as a cut
        # at the set point. The slow loop falls from up there at 32 mV/s, so the cut came
        # only at the maximum, and a cell entering the steep top at 3.5 mV/s under 50 A
        # (reading 10 mV low while it bleeds) went 12 mV over before the charger followed
        # (issue 14, the matrix's full charge, CVL-only). An inverter that follows the CCL
        # is held at the set point by it: a cut there stopped the absorption's charge of the
        # other cells (the full-charge scenario: 45 mV of spread in float against 20).
        early = (
            charging
            and error < -cfg.deadband_v
            and excess_v > cfg.step_v / 2
            and self.output is not None
            and self.output > pack + cfg.step_v
        )
        if early:
            hard = min(hard, pack + near * error)
        # self._floor_step(pack) below: the pack voltage as the inverter reads it (asked
        # only in the two cases that need it, not every step).
        if headroom is not None and headroom < cfg.step_v / 2:
            # The current is above CCL: as far below the pack as the excess drops in it.
            hard = min(hard, pack + headroom)
        if not charge_allowed:
            hard = min(hard, self._floor_step(pack))
        if over_current and tighten and charging:
            if not was_over or self.output is None or self.output > self._floor_step(pack):
                # First: below the pack by what the excess current drops in the pack.
                hard = min(hard, self._floor_step(pack - excess_v) - cfg.step_v)
            elif self._since_down_s >= TIGHTEN_S:
                hard = min(hard, self.output - cfg.step_v)  # then a step at a time
        reach = pack + near * error  # what the highest cell can take
        loop = min(ceiling, reach) if self._loop is None else self._loop
        before = loop
        # Rising needs more room than the deadband: half an output step as it reaches the
        # highest cell (step / near), at most half the margin. Else the 0.1 V steps and 1 mV
        # readings make a limit cycle: one step up overshoots the set point, down again.
        rise_band = max(cfg.deadband_v, min(cfg.step_v / 2 / near, cfg.margin_v / 2))
        if (error < -cfg.deadband_v) or (error > rise_band and self._since_decrease >= cfg.hold_s):
            rate = cfg.gain_per_s * near * error
            loop += max(-cfg.fall_v_per_s * n, min(cfg.ramp_v_per_s * n, rate)) * dt
        if not charge_allowed or (over_current and headroom is None):
            loop = min(loop, before)  # no rise while charge must not (or does not) follow
        if headroom is not None:
            # An inverter that ignores CCL charges as hard as its voltage loop lets it: the
            # CVL rises no further than the CCL allows, nor than the highest cell can take
            # once the current has tapered (the other cells' IR drop then goes to it).
            # `at_rest` pulls the CVL down only once the highest cell is near its set
            # point: with room to spare, its IR-drop estimate, which jumps with the current
            # the CVL itself lets flow, cycled the CVL a step up and down every minute or
            # so (the benchmark's full charge with a CVL-only charger, issue 14).
            at_rest = pack - n * ir_cell_v + near * (setpoint - (top - ir_cell_v))
            if error > rise_band:
                loop = min(loop, max(before, min(pack + headroom, at_rest)))
            else:
                loop = min(loop, max(before, pack + headroom), at_rest)
        if current_limited:
            # Only as a limit on increases: an inverter whose voltmeter reads high needs a
            # CVL above `reach` to get the cells there.
            loop = min(loop, max(before, reach))
        if error < 0:
            # The slow loop stops where all cells could need no more (the cut may go on).
            loop = max(loop, min(before, pack + n * error))
        if self._cut_from is not None and self._since_cut_s < self._retry_s:
            loop = min(loop, max(before, self._cut_from - cfg.step_v / 2))
        if self._topped:
            # At the top (a cell has gone over its maximum while charging at this maximum):
            # no rise beyond what takes the highest cell to its maximum from
            # its recent peak (as the ceiling, with the cells near it taking the rise), from
            # the pack voltage averaged. One 0.1 V step there is 10-40 A, and
            # rises on the readings between an inverter's swings, or from a cell resting on
            # its plateau after a cut, took it 30 mV over within seconds (issue 14, the
            # matrix's full charge: a step up from 53.7 V with the cell at 3.53 V on the
            # swings, four steps at once from a cell resting at 3.40 V).
            reach_peak = self._pack_v + self.offset + near * (self.limit - self._peak)
            loop = min(loop, max(before, reach_peak))
        loop = max(self.floor, min(loop, hard))
        self._since_decrease = 0.0 if loop < before - _EPS else self._since_decrease + dt
        restart = self._loop is None
        self._loop = loop
        last = self.output
        # Discharging with the pack clearly below the CVL: the CVL limits nothing (the loads
        # take more than the charger gives), so a rise would change nothing but 0x351; it
        # waits until the battery charges or the pack reaches the CVL. In the evening the
        # loop's rises made a change a minute for six minutes while the pack discharged at
        # 5-7 A 0.1-0.2 V below the CVL (issue 14, the matrix's daily case, CVL-only).
        # With the pack at or above the CVL (an inverter pulling it down to a lowered CVL)
        # it rises as before: there the CVL is what discharges it. The pack as measured,
        # not less the learnt voltmeter offset: an offset learnt wrongly (-0.17 V, from an
        # inverter swinging about the CVL at the top, see _learn_offset) made a pack held at
        # the CVL read below it, and the CVL stayed under the pack for hours (issue 14, the
        # full charge, CVL-only).
        idle = (
            self.output is not None
            and self._charge_a < -CHARGING_C * snap.capacity_ah
            and measured < self.output - cfg.step_v / 2
        )
        out = self._quantize(loop, max(self.floor, hard), restart, dt, idle)
        if last is not None and out < last - _EPS:
            again = (
                self._cut_from is not None
                and abs(self._cut_from - last) < _EPS
                and self._since_cut_s < 2 * RETRY_MAX_S
            )
            self._retry_s = min(RETRY_MAX_S, 2 * self._retry_s) if again else RETRY_S
            self._cut_from, self._since_cut_s = last, 0.0
            self._topped = self._topped or over or early
        return out

    @property
    def at_ceiling(self) -> bool:
        """The CVL is as high as the allowed cell maximum lets it be."""
        if self.output is None or self.limit is None:
            return False
        return self.output >= self._floor_step(self.cells * self.limit)

    def held_by_cell(self, snap: BatterySnapshot) -> bool:
        """The CVL holds the charger (at most a step above the pack as the inverter reads
        it) and one more output step would take a string's highest cell, with the cells
        near it, past the allowed maximum: that cell is as close to it as whole steps can
        bring it (a cell far ahead of the rest takes most of a step: the weak cell of the
        charge-quality matrix, 40-80 mV under the target and a 0.1 V step away)."""
        if self.output is None or self.limit is None:
            return False
        step = self.settings.step_v
        for pack, top, near in self._strings(snap):
            if self.output <= pack + self.offset + step and near * (self.limit - top) < step:
                return True
        return False

    def _strings(self, snap: BatterySnapshot) -> list[tuple[float, float, float]]:
        """_strings(snap, band) once per snapshot (held_by_cell and step both ask)."""
        memo = self._strings_of
        if memo is not None and memo[0] is snap:
            return memo[1]
        strings = _strings(snap, self.settings.band_v)
        self._strings_of = (snap, strings)
        return strings

    def hold(self, pack: float = math.nan, tighten: bool = False) -> float:
        """CVL while stopped or without usable data: the pack voltage (`pack` when known,
        else the last known one), at most cells x float voltage, never below the floor,
        and never rising while it holds (a charger that ignores CCL 0 must not push the
        pack up and the CVL after it); one step lower every TIGHTEN_S while `tighten`
        says charging goes on. The loop starts afresh afterwards."""
        if math.isfinite(pack):
            self._last_pack = pack
        value = n_float = self.cells * self.chemistry.float_v
        if self._last_pack is not None:
            value = min(self._last_pack + self.offset, n_float)
        if self._holding and self.output is not None:
            value = min(value, self.output)
            if tighten and (self._since_down_s >= TIGHTEN_S or not self._was_over):
                value = self.output - self.settings.step_v  # charging on regardless
        self._holding = True
        self._was_over = tighten
        self._loop = None
        self._since_decrease = 0.0
        return self._set_output(self._floor_step(max(self.floor, value)), 0.0)

    def _learn_offset(self, charging: bool, pack: float, dt: float) -> None:
        """Charging with the pack at or above a CVL that has had time to act: the inverter
        reads low by the difference. Below the CVL the inverter is current-limited and its
        voltmeter is not seen: the estimate is kept."""
        out = self.output
        if out is None or not charging or self._since_down_s < SETTLE_S:
            return
        if min(pack, self._pack_v) < out - self.settings.step_v / 2:
            return
        # From the pack voltage averaged: an offset is steady, a pack swinging about the CVL
        # is not one. At the steep top the matrix's inverters swung it 0.24 V either side of
        # the CVL every other second; only the high half was learnt, and an accurate
        # voltmeter read 0.17-0.25 V low (issue 14, the full charge with a CVL-only charger).
        sample = max(-OFFSET_MAX_V * self.cells, min(0.0, out - self._pack_v))
        self.offset += (sample - self.offset) * min(1.0, dt / OFFSET_TAU_S)

    def _quantize(
        self, loop: float, hard: float, restart: bool, dt: float, idle: bool = False
    ) -> float:
        """Whole steps with hysteresis, never above `hard`; rises at most every
        RISE_EVERY_S, by the whole steps the loop gained, and not while `idle`."""
        step = self.settings.step_v
        out = self.output
        self._since_rise_s += dt
        if out is None or restart:
            out = self._floor_step(loop)
        elif loop < out - step / 2:
            out = self._floor_step(loop + step / 2)
        elif self._floor_step(loop) > out and self._since_rise_s >= RISE_EVERY_S and not idle:
            out = self._floor_step(loop)
        return self._set_output(min(out, self._floor_step(hard)), dt)

    def _floor_step(self, value: float) -> float:
        """The highest whole output step at or below `value` (at least one step)."""
        step = self.settings.step_v
        return max(step, math.floor(value / step + _EPS) * step)

    def _set_output(self, value: float, dt: float) -> float:
        fell = self.output is not None and value < self.output - _EPS
        if self.output is not None and value > self.output + _EPS:
            self._since_rise_s = 0.0
        self._since_down_s = 0.0 if fell else self._since_down_s + dt
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
        # Every cell known: NaN and infinities carry through a sum (of a few volts each,
        # which cannot overflow), so one sum in C tells, not a test per cell.
        if cells and math.isfinite(sum(cells)):
            top = max(cells)
            result.append((string.voltage, top, _near(cells, top, band)))
        elif math.isfinite(snap.max_cell):
            result.append((string.voltage, snap.max_cell, 1.0))
    if not result and math.isfinite(snap.voltage) and math.isfinite(snap.max_cell):
        result.append((snap.voltage, snap.max_cell, 1.0))
    return result


def _near(cells: Sequence[float], top: float, band: float) -> float:
    """How many cells rise with the highest: full weight at its voltage, none `band` below."""
    # sum(max(0.0, 1.0 - (top - v) / band) for v in cells): the same operations in the same
    # order, each step a map() in C instead of a Python term per cell (every tick asks, for
    # every string's cells).
    below = map(operator.sub, repeat(top), cells)  # top - v
    scaled = map(operator.truediv, below, repeat(band))  # (top - v) / band
    weights = map(operator.sub, repeat(1.0), scaled)  # 1.0 - (top - v) / band
    weight: float = sum(map(max, repeat(0.0), weights))  # none below 0
    return max(1.0, weight)
