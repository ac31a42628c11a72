"""Charge-based balancing: the charge each cell holds above its string's lowest, bled all day.

Top balancing (balancing.py) bleeds only while the string's highest cell is in the steep top
of the curve, a few hours a day: at 0.1 A well under 1 Ah. The bleeding a cell needs does
not have to happen there. At the top the voltages tell the cells apart; on the flat part
(the rest of the day, the night, a discharge) they tell nothing. So at every top this
account estimates, per cell, how much charge (Ah) it holds above the string's lowest cell,
and the balancing policy bleeds that charge over the rest of the day, also while
discharging, counting what the nodes report bleeding (balancer current x time).

The estimate (`estimate_excess`), from readings at the top at low current:
- a cell's SoC is read from the chemistry's OCV table only where the table rises at least
  `estimate_slope_mv_per_pct` (the "tell-apart" voltage: LFP 3.348 V, 98 %); a cell below it
  counts as at that point's SoC, the most a cell there can hold. Its excess over the lowest
  is then a lower bound: a cell on the plateau may hold far less (the weak-cell case: 11 Ah
  less; the bound says 1.6 Ah), never more;
- in Ah at the string's rated capacity, times `estimate_gain` (< 1): the rated capacity
  overstates a weaker lowest cell's (a cell 20 % weaker is still covered at 0.8);
- only cells more than `threshold_v` above the string's lowest count (the readings' noise);
- the bound saturates: a cell at the very top (its bound at least three quarters of the most
  it can be, 100 % less the tell-apart SoC) while the lowest is on the plateau may hold any
  excess above it. Such a cell's account is `saturated_excess_c` of the capacity (2.5 %,
  about a day of a 0.1 A balancer at 100 Ah) if that is more. The bound says at least 1.5 %
  (LFP, gain 1), so an overshoot stays below 1 % of the capacity; for the other cells to look
  saturated in turn it would take 1.5 %, so it cannot swing back and forth.

Every top replaces the account (it is not added to; within one stay at the top the largest
estimate holds, less what was bled since, as the cell ahead relaxes out of the steep part
when the charge phase ends): a cell that the next top shows no longer ahead is not bled
further, so an over-estimate cannot grow into a limit cycle; the
most it can cost is one top's account.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from gateway.contracts.chemistry import Curve


def tell_apart_v(ocv: Curve, slope_mv_per_pct: float) -> float:
    """The voltage from which up the OCV table rises at least `slope_mv_per_pct` in every
    segment: above it a cell's voltage tells its SoC (LFP: 3.348 V, 98 %)."""
    points = ocv.points
    v = points[-1][1]
    for (s0, v0), (s1, v1) in zip(points[-2::-1], points[::-1], strict=False):
        if (v1 - v0) * 1000.0 < slope_mv_per_pct * (s1 - s0):
            break
        v = v0
    return v


def estimate_excess(
    voltages: Sequence[float],
    soc_of: Curve,
    from_v: float,
    capacity_ah: float,
    gain: float,
    threshold_v: float,
    saturated_c: float = 0.0,
) -> list[float]:
    """Per cell (in `voltages`' order, every reading finite), the charge (Ah) it holds at
    least above the lowest: see the module docstring. `soc_of` is SoC (%) by voltage (the
    inverse of the chemistry's OCV table)."""
    lowest = min(voltages)
    socs = [soc_of.at(max(v, from_v)) for v in voltages]
    base = min(socs)
    # The lowest unreadable (on the flat part): a bound at three quarters of the most it can
    # be (LFP: the cell at 99.5 %, 3.418 V, or more) says little of the truth above it.
    saturated = base + 0.75 * (100.0 - base) if lowest < from_v else math.inf
    excess = []
    for v, s in zip(voltages, socs, strict=True):
        if v - lowest <= threshold_v:
            excess.append(0.0)
            continue
        bound = gain * (s - base) / 100.0 * capacity_ah
        excess.append(max(bound, saturated_c * capacity_ah) if s >= saturated else bound)
    return excess


class ChargeAccount:
    """Per node and cell, the charge (Ah) still to bleed, from the last top's estimate."""

    def __init__(self, saved: Iterable[tuple[int, Sequence[float]]] = ()) -> None:
        self.owed: dict[int, list[float]] = {
            node: [max(0.0, a) if math.isfinite(a) else 0.0 for a in cells] for node, cells in saved
        }

    def set(self, node: int, excess: Sequence[float], replace: bool = True) -> None:
        """The top's estimate for a node's cells: replaces what was owed, or (replace=False,
        later in the same stay at the top) raises it."""
        owed = self.owed.get(node)
        if replace or owed is None or len(owed) != len(excess):
            self.owed[node] = list(excess)
        else:
            # Cell by cell the larger (lengths equal, checked above), in C: at the top every
            # step raises the account so.
            self.owed[node] = list(map(max, owed, excess))

    def bled(self, bleeding: Mapping[int, int], amps: float, dt: float) -> None:
        """Count dt seconds of bleeding at `amps` for the cells the nodes report bleeding."""
        if dt <= 0.0:
            return
        ah = amps * dt / 3600.0
        for node, mask in bleeding.items():
            cells = self.owed.get(node)
            if not mask or cells is None:
                continue
            # Only the cells bleeding (a few; not a test per cell): bit k is cell k + 1.
            bits = mask & ((1 << len(cells)) - 1)  # the node's cells (>= 0: the loop ends)
            while bits:
                bit = bits & -bits  # the lowest bit set
                bits ^= bit
                k = bit.bit_length() - 1
                if cells[k] > 0.0:
                    cells[k] = max(0.0, cells[k] - ah)

    def wanted(self, node: int) -> list[tuple[float, int]]:
        """(Ah owed, cell index) of the node's cells that still owe charge, most first."""
        owed = self.owed.get(node, ())
        if not owed or max(owed) <= 0.0:
            # Owing nothing, the usual case, told in C (the amounts are finite and never
            # negative: __init__, set and bled keep them so).
            return []
        # Sorted in C, most first; the cells that owe nothing (0.0: never negative) come
        # last and are left out.
        ranked = sorted(zip(owed, range(len(owed)), strict=True), reverse=True)
        return ranked[: len(owed) - owed.count(0.0)]

    def saved(self) -> tuple[tuple[int, tuple[float, ...]], ...]:
        """The account as the strategy's state keeps it (nodes that owe nothing left out)."""
        return tuple(
            (node, tuple(round(a, 4) for a in cells))
            for node, cells in sorted(self.owed.items())
            if any(a > 0.0 for a in cells)
        )
