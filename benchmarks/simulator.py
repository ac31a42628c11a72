"""5. Simulator speed: simulated seconds per wall second of gateway/sim SimSystem (battery
physics, the real firmware nodes, GatewayCore and the simulated inverter).

Two figures per system: on python-can's virtual bus (the default, `make demo`) and on the
simulator's in-memory bus (gateway/sim/membus.py: the same run, without a deep copy and a
locked queue per frame and receiver). The week scenario's system (one node, 1 s steps)
must run a simulated week within ten CPU minutes on the in-memory bus, as `make test` runs
it: 1,008 simulated seconds per second."""

from __future__ import annotations

import logging
import time

from benchmarks.common import Result
from gateway.sim.scenarios import SCENARIOS
from gateway.sim.system import SimSetup, SimSystem

SYSTEMS = (("1 node x 16 cells", [[0]]), ("4 nodes x 16 cells", [[0, 1], [2, 3]]))
WEEK_IN_TEN_MINUTES = 7 * 86400 / 600


def run(quick: bool = False) -> Result:
    sim_seconds = 30.0 if quick else 120.0
    week_seconds = 1800.0 if quick else 7200.0
    res = Result("simulator", "Simulator speed")
    res.params = {
        "simulated_s": sim_seconds,
        "node_period_ms": 100,
        "week_simulated_s": week_seconds,
        "week_step_s": 1.0,
    }
    logging.getLogger("gateway").setLevel(logging.ERROR)
    for bus in ("virtual", "memory"):
        for label, strings in SYSTEMS:
            setup = SimSetup(strings=strings, cells_per_node=16)
            with SimSystem(setup, seed=1, bus=bus) as sim:
                sim.run(5.0)  # start-up: nodes boot, relays close
                start = time.process_time()
                sim.run(sim_seconds)
                cpu = time.process_time() - start
            res.add(
                f"{label}, {bus} bus", sim_seconds / cpu, "simulated s per CPU s", 1.0, "real time"
            )
    for bus in ("virtual", "memory"):
        sim, _ = SCENARIOS["week"].build(0, bus=bus)
        with sim:
            sim.run(600.0)  # past the start-up
            start = time.process_time()
            sim.run(week_seconds)
            cpu = time.process_time() - start
        speed = week_seconds / cpu
        fig = res.add(
            f"week scenario, {bus} bus",
            speed,
            "simulated s per CPU s",
            WEEK_IN_TEN_MINUTES,
            "a week in 10 CPU min",
        )
        if bus == "memory":
            fig.target = f">= {WEEK_IN_TEN_MINUTES:.0f}"
            fig.met = speed >= WEEK_IN_TEN_MINUTES
    return res
