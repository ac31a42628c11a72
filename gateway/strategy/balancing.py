"""Balancing policy: which cells each node bleeds.

Top balancing per series string: while the string's highest cell is at or above the
balance start voltage, cells more than threshold_v above the string's lowest cell bleed,
highest first, at most max_cells_per_node per node. A bleeding cell goes on until it is
within release_v of the lowest (hysteresis); the floor sent with the request makes the
node stop at that point on its own. The nodes drop a request after about 3 s, so every
step sends one to every node with cell data (an empty mask stops bleeding at once).
"""

from __future__ import annotations

import math

from gateway.contracts.decision import BalanceRequest, Phase
from gateway.contracts.snapshot import BatterySnapshot, ProtectionKind
from gateway.strategy.settings import BalanceSettings

BALANCING_PHASES = frozenset({Phase.ABSORPTION, Phase.FULL_CHARGE, Phase.FLOAT})


class BalancingPolicy:
    """Selects bleeding cells step by step (it remembers them for the hysteresis)."""

    def __init__(self, settings: BalanceSettings, start_v: float) -> None:
        self.settings = settings
        self.start_v = start_v
        self._bleeding: dict[int, frozenset[int]] = {}  # node -> cell indices (0-based)
        self._active: set[int] = set()  # strings balancing (start-voltage hysteresis)
        self._idle_s = 0.0

    def step(self, snap: BatterySnapshot, phase: Phase, dt: float) -> tuple[BalanceRequest, ...]:
        """Balance requests for every present node with cell data (mask 0 = stop)."""
        cfg = self.settings
        idle = math.isfinite(snap.current) and abs(snap.current) < cfg.idle_current_a
        self._idle_s = self._idle_s + dt if idle else 0.0
        allowed = (
            cfg.enabled
            and snap.valid
            and (not cfg.only_when_idle or self._idle_s >= cfg.idle_time_s)
            and (not cfg.only_in_absorption_or_float or phase in BALANCING_PHASES)
        )
        requests: list[BalanceRequest] = []
        bleeding: dict[int, frozenset[int]] = {}
        for string in snap.strings:
            nodes = [
                n
                for n in string.nodes
                if n in snap.nodes and snap.nodes[n].present and snap.cell_voltages.get(n)
            ]
            known = [v for n in nodes for v in snap.cell_voltages[n] if math.isfinite(v)]
            if not nodes or not known:
                self._active.discard(string.index)
                continue
            lowest, highest = min(known), max(known)
            was_active = string.index in self._active
            active = allowed and (
                highest >= self.start_v
                or (was_active and highest >= self.start_v - cfg.threshold_v)
            )
            if active:
                self._active.add(string.index)
            else:
                self._active.discard(string.index)
            for node in nodes:
                cells: frozenset[int] = frozenset()
                if active and not _balancer_hot(snap, node):
                    cells = self._select(snap.cell_voltages[node], lowest, self._bleeding.get(node))
                bleeding[node] = cells
                mask = sum(1 << k for k in cells)
                requests.append(BalanceRequest(node, mask, lowest + cfg.release_v))
        self._bleeding = bleeding
        return tuple(requests)

    def _select(
        self, voltages: tuple[float, ...], lowest: float, before: frozenset[int] | None
    ) -> frozenset[int]:
        cfg = self.settings
        before = before or frozenset()
        candidates = sorted(
            (
                (v, k)
                for k, v in enumerate(voltages)
                if math.isfinite(v)
                and (v - lowest > cfg.threshold_v or (k in before and v - lowest > cfg.release_v))
            ),
            reverse=True,
        )
        chosen: set[int] = set()
        for _, k in candidates:
            if len(chosen) >= cfg.max_cells_per_node:
                break
            if cfg.avoid_adjacent and (k - 1 in chosen or k + 1 in chosen):
                continue
            chosen.add(k)
        return frozenset(chosen)


def _balancer_hot(snap: BatterySnapshot, node: int) -> bool:
    n = snap.nodes[node]
    hot = ProtectionKind.BALANCER_OVER_TEMP
    return hot in n.warnings or hot in n.faults
