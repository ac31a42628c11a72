"""A small simulated battery system for the web tests: a real GatewayCore fed with node frames
built by the generated codec from simulated packs (gateway.sim physics), and a simulated
inverter that obeys the limits the core sends it. Deterministic for a given seed and times.

The full system simulator (firmware nodes on a simulated bus) will replace this driver; it
stands in for the nodes only as far as the web page needs: states, relays, cells, bleeding,
temperatures, protection flags.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.config.root import Settings, validate
from gateway.contracts.frame import Frame
from gateway.contracts.snapshot import ProtectionKind
from gateway.core import GatewayCore
from gateway.sim import (
    Battery,
    CellParams,
    HouseholdLoad,
    SimInverter,
    SimInverterSettings,
    SolarDay,
    nodeframes,
)

SENSORS = 4
CAPACITY_AH = 280.0


def bench_settings(
    strings: list[list[int]], cells: int, extra: dict[str, Any] | None = None
) -> Settings:
    data: dict[str, Any] = {
        "battery": {
            "topology": {"strings": strings, "cells_per_node": cells, "capacity_ah": CAPACITY_AH}
        },
        # The bench steps up to 10 s at a time when it fills the history.
        "strategy": {"max_step_s": 15.0},
        "soc": {"max_step_s": 15.0},
    }
    for section, values in (extra or {}).items():
        data.setdefault(section, {}).update(values)
    return validate(data)


@dataclass
class NodeFlags:
    """Protection flags a bench node reports; a fault trips it (relay open)."""

    faults: frozenset[ProtectionKind] = frozenset()
    warnings: frozenset[ProtectionKind] = frozenset()
    infos: frozenset[ProtectionKind] = frozenset()


@dataclass
class Bench:
    """The core and its simulated surroundings. Call step(now) with increasing times."""

    now: float
    strings: list[list[int]] = field(default_factory=lambda: [[0, 1], [2, 3]])
    cells: int = 16
    soc: float = 0.62
    soc_spread: float = 0.004
    seed: int = 7
    extra: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        self.settings = bench_settings(self.strings, self.cells, self.extra)
        self.core = GatewayCore(self.settings, self.now)
        self.battery = Battery.build(
            rng,
            self.strings,
            self.cells,
            params=CellParams().scaled(CAPACITY_AH),
            soc=self.soc,
            soc_spread=self.soc_spread,
            sensors=SENSORS,
        )
        # The bench may step 10 s at a time: the inverter must not drop the battery then.
        self.inverter = SimInverter(SimInverterSettings(battery_timeout_s=30.0))
        self.pv = SolarDay(peak_w=9000.0, start_h=10.0, cloudiness=0.4, rng=rng)
        self.load = HouseholdLoad(start_h=10.0, appliances_per_day=6, rng=rng)
        self.origin = self.now
        self.flags: dict[int, NodeFlags] = {n: NodeFlags() for n in self.nodes}
        self.counter = 0

    @property
    def nodes(self) -> list[int]:
        return [n for s in self.strings for n in s]

    def step(self, now: float, silent: frozenset[int] = frozenset()) -> None:
        """Advance the physics to `now`, send the frames of every node but the `silent`
        ones and tick the core."""
        dt = now - self.now
        if dt > 0:
            t = now - self.origin
            current = self.inverter.step(now, self.battery.bus_voltage, self.pv(t), self.load(t))
            self.battery.step(dt, current)
        self.now = now
        self.counter += 1
        core = self.core
        balance = {b.node: b.cells for b in core.decision.balance} if core.decision else {}
        for node in self.nodes:
            pack = self.battery.packs[node]
            tripped = bool(self.flags[node].faults)
            self.battery.set_relay(node, not tripped)
            pack.balance_mask = 0 if tripped else balance.get(node, 0)
            if node in silent:
                continue
            for frame in self.node_frames(node):
                core.on_battery_frame(frame, now)
        for frame_id, data in self.inverter.due_frames(now):
            core.on_inverter_frame(Frame(frame_id, data), now)
        for frame in core.tick(now).inverter:
            self.inverter.on_frame(frame.id, frame.data, now)

    def run(self, until: float, dt: float) -> None:
        """Step every `dt` seconds up to `until` (fills the history quickly)."""
        while self.now + dt <= until:
            self.step(self.now + dt)

    def node_frames(self, node: int) -> list[Frame]:
        pack = self.battery.packs[node]
        flags = self.flags[node]
        tripped = bool(flags.faults)
        cells = [round(v, 3) for v in pack.cell_voltages()]
        temps = [round(t if t is not None else -40.0, 1) for t in pack.temperatures()]
        low = min(range(len(cells)), key=cells.__getitem__)
        high = max(range(len(cells)), key=cells.__getitem__)
        frames = [
            nodeframes.node_state(
                node,
                self.counter,
                state=3 if tripped else 2,
                relay=0 if tripped else 1,
                faults=flags.faults,
                warnings=flags.warnings,
                infos=flags.infos,
            ),
            nodeframes.pack_status(node, round(pack.voltage, 3), round(pack.measured_current_a, 3)),
            nodeframes.cell_extremes(node, cells[low], cells[high], low + 1, high + 1),
        ]
        t_low = min(range(len(temps)), key=temps.__getitem__)
        t_high = max(range(len(temps)), key=temps.__getitem__)
        frames.append(
            nodeframes.temperature_extremes(
                node,
                temps[t_low],
                temps[t_high],
                t_low + 1,
                t_high + 1,
                round(pack.balancer_temp_c, 1),
            )
        )
        for group in range(0, len(cells), 4):
            volts = tuple((cells[group : group + 4] + [0.0] * 4)[:4])
            frames.append(nodeframes.cell_voltages(node, group // 4, volts))
        for group in range(0, len(temps), 3):
            values = tuple((temps[group : group + 3] + [0.0] * 3)[:3])
            frames.append(nodeframes.cell_temperatures(node, group // 3, values))
        frames.append(nodeframes.balance_state(node, pack.balance_mask))
        frames.append(
            nodeframes.node_info(
                node, self.cells, SENSORS, capacity_ah=CAPACITY_AH, version=(1, 4, 2)
            )
        )
        return frames


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
