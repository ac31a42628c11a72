"""4. Scaling: gateway CPU time per simulated second for 16, 256 and 1,024 cells, and the bus
load of each system (gateway/sources/moat_nodes/busload.py, from the DBC and the topology).

GatewayCore gets every node's frames at their DBC periods, stamped with simulated time, and
ticks every tick_s of simulated time; time.process_time() counts the CPU it takes.
"""

from __future__ import annotations

import time

from benchmarks.common import Result, settings
from gateway.core import GatewayCore
from gateway.sim.nodeframes import timed_frame_mix
from gateway.sources.moat_nodes import busload

# Parallel strings keep the pack voltage in the low-voltage range the Pylontech profile
# expects; cells = nodes x cells per node.
SYSTEMS = (
    ("16 cells (1 x 16)", [[0]], 16),
    ("256 cells (4 x 64)", [[0], [1], [2], [3]], 64),
    ("1,024 cells (16 x 64)", [[n] for n in range(16)], 64),
)
MIX_SECONDS = 40


def cpu_per_sim_second(strings: list[list[int]], cells: int, sim_seconds: int) -> float:
    s = settings(strings, cells)
    mix = timed_frame_mix(s.battery.topology, MIX_SECONDS)
    core = GatewayCore(s, 0.0)
    tick_s = s.timing.tick_s
    t0 = 1000.0

    def play(seconds: int) -> float:
        nonlocal t0
        start = time.process_time()
        next_tick = t0
        for rep in range(seconds // MIX_SECONDS):
            base = t0 + rep * MIX_SECONDS
            for t, frame in mix:
                now = base + t
                while now >= next_tick:
                    core.tick(next_tick)
                    next_tick += tick_s
                if core.on_battery_frame(frame, now):
                    core.tick(now)
        t0 += seconds
        return time.process_time() - start

    play(MIX_SECONDS)  # warm up
    return play(sim_seconds) / sim_seconds


def run(quick: bool = False) -> Result:
    sim_seconds = 40 if quick else 120
    res = Result("scaling", "Scaling: gateway CPU per simulated second")
    res.params = {"simulated_s": sim_seconds, "bitrate_for_load": 500_000}
    base_per_cell = None
    for label, strings, cells in SYSTEMS:
        s = settings(strings, cells)
        total = len(s.battery.topology.nodes) * cells
        cpu = cpu_per_sim_second(strings, cells, sim_seconds)
        per_cell = cpu / total
        if base_per_cell is None:
            base_per_cell = per_cell
        res.add(f"{label}: CPU", cpu * 1000, "ms per simulated s", 1000.0, "real time")
        res.add(
            f"{label}: CPU per cell vs 16 cells",
            per_cell * 1000,
            "ms per cell-s",
            base_per_cell * 1000,
            "16 cells",
            "<= 1 (linear or better)",
            per_cell <= base_per_cell * 1.05,
        )
        (bus,) = busload.system_load(s.battery.topology, 500_000, None, shared_bus=True)
        res.add(f"{label}: bus load", 100 * bus.load, "% of 500 kbit/s", 50.0, "warning level")
    res.notes.append(
        "bus load: worst-case bit stuffing, inverter frames on the same bus, 4 sensors a node"
    )
    return res
