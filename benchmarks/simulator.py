"""5. Simulator speed: simulated seconds per CPU second of gateway/sim SimSystem (battery
physics, the real firmware nodes, GatewayCore and the simulated inverter, in lockstep).

Two systems, each on python-can's virtual bus (the default, `make demo`) and on the
simulator's in-memory bus (gateway/sim/membus.py: the same run, without a deep copy and a
locked queue per frame and receiver):

- the demo system, two strings of two 16-cell nodes, at the default timing: 50 ms node
  cycles and physics steps, a gateway tick every 100 ms; 120 simulated seconds after 5 s
  of start-up; target 250 times real time;
- the week scenario's system (one 16-cell node with sun and household load) at the coarse
  timing the long scenarios use (1 s steps for nodes, physics and ticks), two simulated
  hours after ten minutes; target 3,000 times real time (a week in under 3.5 CPU minutes).
"""

from __future__ import annotations

import logging
import time

from benchmarks.common import Result
from gateway.sim.scenarios import SCENARIOS
from gateway.sim.system import SimSetup, SimSystem

DEMO_STRINGS = [[0, 1], [2, 3]]
CYCLE_MS = 50  # the nodes' default cycle (firmware config cycle_ms)
TICK_S = 0.1  # the gateway's default tick
TARGET_DEMO = 250.0
TARGET_WEEK = 3000.0


def demo_setup() -> SimSetup:
    """The demo system's nodes at their default cycle and the gateway at its default tick."""
    return SimSetup(
        strings=DEMO_STRINGS,
        cells_per_node=16,
        node_period_ms=CYCLE_MS,
        node_config={"cycle_ms": CYCLE_MS},
        gateway={"timing": {"tick_s": TICK_S}},
    )


def run(quick: bool = False) -> Result:
    sim_seconds = 30.0 if quick else 120.0
    week_seconds = 1800.0 if quick else 7200.0
    res = Result("simulator", "Simulator speed (simulated s per CPU s)")
    res.params = {
        "demo_simulated_s": sim_seconds,
        "demo_topology": DEMO_STRINGS,
        "node_cycle_ms": CYCLE_MS,
        "tick_s": TICK_S,
        "week_simulated_s": week_seconds,
        "week_step_s": 1.0,
    }
    logging.getLogger("gateway").setLevel(logging.ERROR)
    for bus in ("virtual", "memory"):
        with SimSystem(demo_setup(), seed=1, bus=bus) as sim:
            sim.run(5.0)  # start-up: nodes boot, relays close
            start = time.process_time()
            sim.run(sim_seconds)
            cpu = time.process_time() - start
        speed = sim_seconds / cpu
        res.add(
            f"4 nodes x 16 cells, 50 ms / 100 ms, {bus} bus",
            speed,
            "x real time",
            1.0,
            "real time",
            f">= {TARGET_DEMO:g}",
            speed >= TARGET_DEMO,
        )
    for bus in ("virtual", "memory"):
        sim, _ = SCENARIOS["week"].build(0, bus=bus)
        with sim:
            sim.run(600.0)  # past the start-up
            start = time.process_time()
            sim.run(week_seconds)
            cpu = time.process_time() - start
        speed = week_seconds / cpu
        res.add(
            f"week scenario, 1 s steps, {bus} bus",
            speed,
            "x real time",
            1.0,
            "real time",
            f">= {TARGET_WEEK:,.0f}",
            speed >= TARGET_WEEK,
        )
    return res
