"""Balancing policy: which cells each node bleeds.

Two rules, per series string; a node's request is their union, highest first, at most
max_cells_per_node per node:

- Top balancing: while the string's highest cell is at or above the balance start voltage,
  cells more than threshold_v above the string's lowest cell bleed. A bleeding cell goes on
  until it is within release_v of the lowest (hysteresis); the floor sent with the request
  makes the node stop at that point on its own.
- Charge-based balancing (balancecharge.py): at each top, at low current, the charge each
  cell holds above the lowest is estimated from the OCV table; the cells that owe charge
  bleed it over the rest of the day (discharge and night included) until the account, kept
  from what the nodes report bleeding, is empty, and never while the pack is below
  account_min_soc, nor in the climb to the charge target (bulk with the highest cell at the
  top: the strategy steers by that reading, which a bleeding cell's sense wires lower). Its
  floor is the cell's low limit plus a margin (account_floor_v): on the
  flat part of the curve voltages say nothing about the cells' balance, only about safety.

The nodes drop a request after about 3 s, so every step sends one to every node with cell
data (an empty mask stops bleeding at once).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from gateway.contracts.chemistry import ChemistrySpec
from gateway.contracts.decision import BalanceRequest, Phase
from gateway.contracts.snapshot import BatterySnapshot, ProtectionKind, StringSnapshot
from gateway.strategy.balancecharge import ChargeAccount, estimate_excess, tell_apart_v
from gateway.strategy.settings import BalanceSettings

BALANCING_PHASES = frozenset({Phase.ABSORPTION, Phase.FULL_CHARGE, Phase.FLOAT})
# Account floor above the chemistry's minimum cell voltage when the settings give none (LFP
# 3.10 V, the node's own default floor).
ACCOUNT_FLOOR_MARGIN_V = 0.2


class BalancingPolicy:
    """Selects bleeding cells step by step (it remembers them for the hysteresis) and keeps
    the charge account (`account`, persisted through the strategy's state)."""

    def __init__(
        self,
        settings: BalanceSettings,
        chemistry: ChemistrySpec,
        owed: Iterable[tuple[int, Sequence[float]]] = (),
    ) -> None:
        self.settings = settings
        self.start_v = chemistry.balance_start_v
        self.account = ChargeAccount(owed)
        self.account_floor_v = (
            settings.account_floor_v
            if settings.account_floor_v is not None
            else chemistry.min_cell_v + ACCOUNT_FLOOR_MARGIN_V
        )
        self._soc_of = chemistry.ocv_inverse
        self._from_v = tell_apart_v(chemistry.ocv, settings.estimate_slope_mv_per_pct)
        # The top, for the estimate: where the curve tells the cells apart, if that is its
        # top (at 90 % or more: LFP 3.348 V, 98 %), plus estimate_margin_v (a plateau cell on
        # its charge branch reads up to half the OCV hysteresis high); for a curve steep
        # throughout, the balance start voltage (so the estimate stays a top estimate).
        top_of_curve = self._from_v >= chemistry.ocv.at(90.0)
        self.estimate_v = (
            self._from_v + settings.estimate_margin_v if top_of_curve else self.start_v
        )
        self._stay: set[int] = set()  # strings at the top since their last estimate
        self._bleeding: dict[int, frozenset[int]] = {}  # node -> top-balancing cells (0-based)
        self._active: set[int] = set()  # strings balancing (start-voltage hysteresis)
        self._top_s: dict[int, float] = {}  # string -> seconds at the top at low current
        # string -> (its cells' readings, capacity, the estimate from them): see _estimate.
        self._last_estimate: dict[int, tuple[list[float], float, list[float]]] = {}
        self._idle_s = 0.0
        # Some cell bleeds by the top rule (charge_current_fraction applies to it only: the
        # account bleeds all day, and the option must not cut the charge all day).
        self.topping = False

    def step(
        self, snap: BatterySnapshot, phase: Phase, dt: float, soc: float = math.nan
    ) -> tuple[BalanceRequest, ...]:
        """Balance requests for every present node with cell data (mask 0 = stop). `soc` is
        the battery's SoC (%): below account_min_soc (or unknown) the account is not bled."""
        cfg = self.settings
        idle = math.isfinite(snap.current) and abs(snap.current) < cfg.idle_current_a
        self._idle_s = self._idle_s + dt if idle else 0.0
        allowed = (
            cfg.enabled
            and snap.valid
            and (not cfg.only_when_idle or self._idle_s >= cfg.idle_time_s)
            and (not cfg.only_in_absorption_or_float or phase in BALANCING_PHASES)
        )
        if cfg.charge_based:
            # What the nodes bled since the last step (they are the authority on it).
            self.account.bled(snap.bleeding, cfg.bleed_current_a, dt)
        from_account = allowed and cfg.charge_based and soc >= cfg.account_min_soc
        requests: list[BalanceRequest] = []
        bleeding: dict[int, frozenset[int]] = {}
        for string in snap.strings:
            nodes = [
                n
                for n in string.nodes
                if n in snap.nodes and snap.nodes[n].present and snap.cell_voltages.get(n)
            ]
            extremes = _known_extremes([snap.cell_voltages[n] for n in nodes])
            if extremes is None:
                self._active.discard(string.index)
                self._top_s.pop(string.index, None)
                continue
            lowest, highest = extremes
            if cfg.charge_based:
                self._estimate(snap, string, nodes, highest, dt)
            was_active = string.index in self._active
            active = allowed and (
                highest >= self.start_v
                or (was_active and highest >= self.start_v - cfg.threshold_v)
            )
            # The climb to the charge target: the strategy steers by the highest cell's
            # reading there (absorption starts on it), and a bleeding cell reads low by its
            # sense wires' drop (a neighbour high): the account waits, top balancing alone
            # bleeds, as before (with an inverter that follows only CVL, bleeding all the
            # climb kept a day in bulk).
            climbing = phase is Phase.BULK and highest >= self.estimate_v
            if active:
                self._active.add(string.index)
            else:
                self._active.discard(string.index)
            for node in nodes:
                voltages = snap.cell_voltages[node]
                cells: frozenset[int] = frozenset()
                floor = lowest + cfg.release_v
                if not _balancer_hot(snap, node):
                    if active:
                        cells = self._select(voltages, lowest, self._bleeding.get(node))
                    bleeding[node] = cells
                    if from_account and not climbing:
                        if cells:
                            cells = self._add_owed(node, voltages, cells, floor)
                        else:
                            owed = self._add_owed(node, voltages, cells, self.account_floor_v)
                            if owed:
                                cells, floor = owed, self.account_floor_v
                mask = sum([1 << k for k in cells]) if cells else 0
                requests.append(BalanceRequest(node, mask, floor))
        self._bleeding = bleeding
        self.topping = any(bleeding.values())
        return tuple(requests)

    def _estimate(
        self,
        snap: BatterySnapshot,
        string: StringSnapshot,
        nodes: list[int],
        highest: float,
        dt: float,
    ) -> None:
        """At the top (highest cell at or above estimate_v, |I| at most estimate_current_c,
        for estimate_settle_s): the account's new estimate. A stay at the top lasts until
        the highest cell is back under the tell-apart voltage: its first estimate replaces
        the account, later ones only raise it (as the charge phase ends the cell ahead
        relaxes towards the plateau with no charge gone but what it bled, which the account
        counted)."""
        cfg = self.settings
        if highest < self._from_v:
            self._stay.discard(string.index)
        cap = string.capacity_ah
        at_top = (
            highest >= self.estimate_v
            and cap > 0.0
            and math.isfinite(string.current)
            and abs(string.current) <= cfg.estimate_current_c * cap
        )
        held = self._top_s.get(string.index, 0.0) + dt if at_top else 0.0
        self._top_s[string.index] = held
        if held < cfg.estimate_settle_s:
            return
        fresh = string.index not in self._stay
        self._stay.add(string.index)
        voltages: list[float] = []
        for n in nodes:
            voltages.extend(snap.cell_voltages[n])  # in C, not a Python term per cell
        last = self._last_estimate.get(string.index)
        if last is not None and last[0] == voltages and last[1] == cap:
            # The readings move in 1 mV steps and stay for minutes at the top (the week
            # scenario: 98 % of the estimates were of the same readings as the step before),
            # and the table and settings never change: the same readings' estimate is given
            # again. (Only finite readings are kept, and a NaN equals none of them.)
            excess = last[2]
        else:
            if not all(math.isfinite(v) for v in voltages):
                return  # a cell unknown: its share cannot be told
            excess = estimate_excess(
                voltages,
                self._soc_of,
                self._from_v,
                cap,
                cfg.estimate_gain,
                cfg.threshold_v,
                cfg.saturated_excess_c,
            )
            self._last_estimate[string.index] = (voltages, cap, excess)
        i = 0
        for n in nodes:
            k = len(snap.cell_voltages[n])
            self.account.set(n, excess[i : i + k], replace=fresh)
            i += k

    def _add_owed(
        self, node: int, voltages: tuple[float, ...], cells: frozenset[int], floor: float
    ) -> frozenset[int]:
        """`cells` and the node's cells that owe charge (most first), within the limits."""
        cfg = self.settings
        chosen = set(cells)
        for _, k in self.account.wanted(node):
            if len(chosen) >= cfg.max_cells_per_node:
                break
            if k in chosen or k >= len(voltages) or not voltages[k] > floor:
                continue
            if cfg.avoid_adjacent and (k - 1 in chosen or k + 1 in chosen):
                continue
            chosen.add(k)
        return frozenset(chosen)

    def _select(
        self, voltages: tuple[float, ...], lowest: float, before: frozenset[int] | None
    ) -> frozenset[int]:
        cfg = self.settings
        before = before or frozenset()
        # The known cells highest first, sorted in C (every step asks for every node while
        # the string balances; all cells known nearly always: one sum in C tells).
        if math.isfinite(sum(voltages)):
            ranked = sorted(zip(voltages, range(len(voltages)), strict=True), reverse=True)
        else:
            known = [(v, k) for k, v in enumerate(voltages) if math.isfinite(v)]
            ranked = sorted(known, reverse=True)
        # No cell this close to the lowest is a candidate, nor any after it (lower still).
        least = min(cfg.threshold_v, cfg.release_v) if before else cfg.threshold_v
        chosen: set[int] = set()
        for v, k in ranked:
            if len(chosen) >= cfg.max_cells_per_node or not v - lowest > least:
                break
            if not (v - lowest > cfg.threshold_v or (k in before and v - lowest > cfg.release_v)):
                continue
            if cfg.avoid_adjacent and (k - 1 in chosen or k + 1 in chosen):
                continue
            chosen.add(k)
        return frozenset(chosen)


def _known_extremes(voltages: list[tuple[float, ...]]) -> tuple[float, float] | None:
    """The lowest and the highest known (finite) cell voltage of the nodes' cells; None
    when none is known. Every step asks for every string: where all of a node's cells are
    known (nearly always; NaN and infinities carry through a sum of a few volts each) the
    builtins find its extremes without a Python test per cell."""
    found: tuple[float, float] | None = None
    for node_volts in voltages:
        volts = node_volts
        if not math.isfinite(sum(volts)):
            volts = tuple([v for v in volts if math.isfinite(v)])
            if not volts:
                continue
        low, high = min(volts), max(volts)
        if found is not None:
            low, high = min(found[0], low), max(found[1], high)
        found = (low, high)
    return found


def _balancer_hot(snap: BatterySnapshot, node: int) -> bool:
    n = snap.nodes[node]
    hot = ProtectionKind.BALANCER_OVER_TEMP
    return hot in n.warnings or hot in n.faults
