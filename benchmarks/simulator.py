"""5. Simulator speed: simulated seconds per wall second of gateway/sim SimSystem (battery
physics, the real firmware nodes, GatewayCore and the simulated inverter on python-can
virtual buses, 100 ms steps)."""

from __future__ import annotations

import logging
import time

from benchmarks.common import Result
from gateway.sim.system import SimSetup, SimSystem

SYSTEMS = (("1 node x 16 cells", [[0]]), ("4 nodes x 16 cells", [[0, 1], [2, 3]]))


def run(quick: bool = False) -> Result:
    sim_seconds = 30.0 if quick else 120.0
    res = Result("simulator", "Simulator speed")
    res.params = {"simulated_s": sim_seconds, "node_period_ms": 100}
    logging.getLogger("gateway").setLevel(logging.ERROR)
    for label, strings in SYSTEMS:
        with SimSystem(SimSetup(strings=strings, cells_per_node=16), seed=1) as sim:
            sim.run(5.0)  # start-up: nodes boot, relays close
            start = time.perf_counter()
            sim.run(sim_seconds)
            wall = time.perf_counter() - start
        res.add(label, sim_seconds / wall, "simulated s per wall s", 1.0, "real time")
    return res
