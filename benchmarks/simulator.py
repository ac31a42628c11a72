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

The CPU figures move with whatever else runs on the machine. Beside them, on each bus, the
Python bytecodes executed per simulated second (sys.settrace 'opcode' events over 2 s of
the demo system and 60 s of the week): a figure the load does not change, with the same
count before issue 21 as its reference (python-can's virtual bus is Python code, its
queue and copies included; its locks are C).
"""

from __future__ import annotations

import logging
import sys
import time
from types import FrameType

from benchmarks.common import Result
from gateway.sim.scenarios import SCENARIOS
from gateway.sim.system import SimSetup, SimSystem

DEMO_STRINGS = [[0, 1], [2, 3]]
CYCLE_MS = 50  # the nodes' default cycle (firmware config cycle_ms)
TICK_S = 0.1  # the gateway's default tick
TARGET_DEMO = 250.0
TARGET_WEEK = 3000.0
# Bytecodes per simulated second before issue 21 (commit 64dc2c2), counted as
# bytecodes_per_s() counts them (CPython 3.11).
BYTECODES_BEFORE = {
    ("demo", "memory"): 1_489_150,
    ("week", "memory"): 43_941,
    ("demo", "virtual"): 1_910_938,
    ("week", "virtual"): 58_040,
}


def bytecodes_per_s(sim: SimSystem, seconds: float) -> float:
    """Python bytecodes executed per simulated second over the next `seconds`."""
    ops = 0

    def local(frame: FrameType, event: str, arg: object) -> object:
        nonlocal ops
        if event == "opcode":
            ops += 1
        return local

    def enter(frame: FrameType, event: str, arg: object) -> object:
        frame.f_trace_opcodes = True
        return local

    sys.settrace(enter)
    try:
        sim.run(seconds)
    finally:
        sys.settrace(None)
    return ops / seconds


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
        with SimSystem(demo_setup(), seed=1, bus=bus) as sim:
            sim.run(5.0)
            ops = bytecodes_per_s(sim, 2.0)
        res.add(
            f"4 nodes x 16 cells, 50 ms / 100 ms, {bus} bus: bytecodes",
            ops,
            "per simulated s",
            BYTECODES_BEFORE["demo", bus],
            "before issue 21",
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
    for bus in ("virtual", "memory"):
        sim, _ = SCENARIOS["week"].build(0, bus=bus)
        with sim:
            sim.run(600.0)
            ops = bytecodes_per_s(sim, 60.0)
        res.add(
            f"week scenario, 1 s steps, {bus} bus: bytecodes",
            ops,
            "per simulated s",
            BYTECODES_BEFORE["week", bus],
            "before issue 21",
        )
    return res
