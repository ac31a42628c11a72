"""The web tests' battery system: a thin adapter over the real simulator
(gateway.sim.system.SimSystem: firmware nodes on a simulated bus, a GatewayCore, a simulated
inverter). The adapter adds only what the web tests need on top of it: a clock anchored at a
chosen epoch, stepping to a given time, silent nodes (their microcontroller stopped) and
protection flags raised through each node's own sensors at the firmware's configured levels.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.config.root import Settings
from gateway.contracts.snapshot import ProtectionKind
from gateway.core import GatewayCore
from gateway.sim import HouseholdLoad, SolarDay
from gateway.sim.scenarios import DEMO_COMMAND_KEY, base_setup
from gateway.sim.system import SimNode, SimSetup, SimSystem

SENSORS = 4
CAPACITY_AH = 280.0
STEP_S = 1.0  # the nodes' cycle, the gateway's tick and the physics step

LEVELS = ("info", "warning", "fault")


@dataclass
class NodeFlags:
    """Protection flags a node should raise: each is made by a sensor reading just past the
    firmware's level for it (a fault trips the node: relay open)."""

    faults: frozenset[ProtectionKind] = frozenset()
    warnings: frozenset[ProtectionKind] = frozenset()
    infos: frozenset[ProtectionKind] = frozenset()

    def by_level(self) -> list[tuple[int, ProtectionKind]]:
        return [
            (level, kind)
            for level, kinds in enumerate((self.infos, self.warnings, self.faults))
            for kind in sorted(kinds, key=lambda k: k.value)
        ]


def _past(levels: list[int], level: int, upper: bool) -> int:
    """A reading just past `levels[level]` and short of the next level."""
    return levels[level] + 1 if upper else levels[level] - 1


def apply_flag(node: SimNode, kind: ProtectionKind, level: int) -> None:
    """Set the node's sensors so that its firmware raises `kind` at `level`."""
    hw, cfg = node.hw, node.settings
    if kind is ProtectionKind.CELL_OVER_VOLTAGE:
        hw.cell_mv[1] = _past(cfg["cell_over_mv"], level, upper=True)
    elif kind is ProtectionKind.CELL_UNDER_VOLTAGE:
        hw.cell_mv[2] = _past(cfg["cell_under_mv"], level, upper=False)
    elif kind is ProtectionKind.CHARGE_OVER_TEMP:
        hw.temp_dc[0] = 10 * _past(cfg["charge_over_temp_c"], level, upper=True)
    elif kind is ProtectionKind.DISCHARGE_OVER_TEMP:
        hw.temp_dc[1] = 10 * _past(cfg["discharge_over_temp_c"], level, upper=True)
    elif kind is ProtectionKind.CHARGE_UNDER_TEMP:
        hw.temp_dc[2] = 10 * _past(cfg["charge_under_temp_c"], level, upper=False)
    else:
        raise NotImplementedError(f"no sensor reading for {kind}")
    hw.pack_mv = sum(hw.cell_mv[: hw.cells])


class BenchSystem(SimSystem):
    """A SimSystem whose clock starts at `origin` (epoch seconds) and whose nodes' sensors
    read the flags' readings over the pack's."""

    def __init__(self, setup: SimSetup, seed: int, origin: float) -> None:
        self.origin = origin
        super().__init__(setup, seed, bus="memory")
        self.flags: dict[int, NodeFlags] = {n: NodeFlags() for n in self.nodes}
        for node in self.nodes.values():
            feed = node.feed

            def feed_with_flags(pack: Any, node: SimNode = node, feed: Any = feed) -> None:
                feed(pack)
                for level, kind in self.flags[node.node_id].by_level():
                    apply_flag(node, kind, level)

            node.feed = feed_with_flags  # type: ignore[method-assign]

    def now(self) -> float:
        return self.origin + self.t


@dataclass
class Bench:
    """The simulated system around a real core. Call step(now) with increasing times."""

    now: float
    strings: list[list[int]] = field(default_factory=lambda: [[0, 1], [2, 3]])
    cells: int = 16
    soc: float = 0.62
    soc_spread: float = 0.004
    seed: int = 7
    extra: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        # The command key the simulated nodes share with the gateway (simulation only).
        gateway: dict[str, Any] = {"battery": {"command_key": DEMO_COMMAND_KEY}}
        for section, values in (self.extra or {}).items():
            gateway.setdefault(section, {}).update(values)
        setup = base_setup(
            step_s=STEP_S,
            strings=self.strings,
            cells_per_node=self.cells,
            temp_sensors=SENSORS,
            capacity_ah=CAPACITY_AH,
            soc=self.soc,
            soc_spread=self.soc_spread,
            start_hour=10.0,
            pv=SolarDay(peak_w=9000.0, start_h=10.0, cloudiness=0.4, rng=rng),
            load=HouseholdLoad(start_h=10.0, appliances_per_day=6, rng=rng),
            gateway=gateway,
        )
        # run() may step a few seconds at a time: the inverter must not drop the battery then.
        setup.inverter = setup.inverter.model_copy(update={"battery_timeout_s": 30.0})
        self.sim = BenchSystem(setup, self.seed, self.now)
        self.settings: Settings = self.sim.settings

    @property
    def core(self) -> GatewayCore:
        assert self.sim.core is not None
        return self.sim.core

    @property
    def flags(self) -> dict[int, NodeFlags]:
        return self.sim.flags

    @property
    def nodes(self) -> list[int]:
        return list(self.sim.nodes)

    def _step_to(self, now: float, step_s: float) -> None:
        sim = self.sim
        if step_s != sim.step_s:
            sim.step_s = step_s
            sim.steps = round(sim.t / step_s)
        while sim.now() < now - 1e-9:
            sim.step()
        self.now = sim.now()

    def step(self, now: float, silent: frozenset[int] = frozenset()) -> None:
        """Run the system up to `now` (whole node cycles: to the first cycle at or after it),
        the `silent` nodes stopped."""
        for node in silent:
            self.sim.nodes[node].stopped = True
        try:
            self._step_to(now, STEP_S)
        finally:
            for node in silent:
                self.sim.nodes[node].stopped = False

    def run(self, until: float, dt: float) -> None:
        """Run up to `until` in steps of `dt` seconds (fills the history quickly): at most
        4/5 of the nodes' gateway watchdog, so that they keep their relays closed."""
        watchdog_s = min(n.settings["watchdog_ms"] for n in self.sim.nodes.values()) / 1000
        dt = min(dt, 0.8 * watchdog_s)
        if dt > STEP_S:
            # to a multiple of dt first: the simulator's time is its step count times its step
            self._step_to(
                min(until, self.now + dt * math.ceil(self.sim.t / dt) - self.sim.t), STEP_S
            )
            self._step_to(self.now + dt * math.floor((until - self.now) / dt + 1e-9), dt)
        self._step_to(until, STEP_S)


@dataclass
class BenchHost:
    """A Host (gateway.web.Host) around a bench: the clock is the bench's time."""

    bench: Bench
    config_path: Path | None = None
    settings_override: Settings | None = None

    @property
    def core(self) -> GatewayCore:
        return self.bench.core

    @property
    def settings(self) -> Settings:
        return self.settings_override or self.bench.settings

    def clock(self) -> float:
        return self.bench.now
