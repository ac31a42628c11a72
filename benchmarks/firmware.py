"""3. Firmware cycle cost: Node.step() for 16 and 64 cells in bytecodes and Python calls per
cycle (counted on CPython with sys.settrace: figures that carry over to a microcontroller's
interpreter), timed on CPython and on MicroPython (the official WebAssembly port under
node), heap allocated per steady-state cycle and heap in use after start-up.

MicroPython: tests/mpy/run.mjs runs the firmware suite, whose allocation scenario measures a
steady-state node (active, balancing, gateway frames arriving; gc disabled, gc.mem_alloc()
before and after 2,000 cycles of 50 ms) and writes its figures as JSON. CPython: the same
loop here, timed with time.perf_counter.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from benchmarks.common import ROOT, Result
from bms import codec
from bms.can import Frame
from bms.can.loopback import LoopbackBus
from bms.config import load_config
from bms.hw.sim import SimHardware
from bms.node import Node
from tests.firmware.gateway_commands import GatewayCommands

CYCLE_MS = 50
NODE = 1
HEARTBEAT_ID = codec.GATEWAY_HEARTBEAT_ID
RELAY_ID = codec.RELAY_COMMAND_ID | NODE
BALANCE_ID = codec.BALANCE_COMMAND_ID | NODE
CYCLES = 2000


# The cost of one steady-state cycle before issue 21 (commit 64dc2c2), counted as
# cycle_cost() counts on CPython 3.11: bytecodes and Python calls per Node.step().
COST_BEFORE = {16: (9036, 67.4), 64: (13160, 74.7)}


class SteadyNode:
    """One node in steady state (the MicroPython suite's loop): active, balancing, the
    gateway's commands arriving, its frames taken after every cycle."""

    def __init__(self, cells: int) -> None:
        self.hw = SimHardware(cells=cells, temps=4)
        self.bus = LoopbackBus(tx_capacity=3)
        self.node = Node(load_config({"node_id": NODE, "cells": cells}), self.hw, self.bus)
        for i in range(cells):
            self.hw.cell_mv[i] = 3400
        self.hw.pack_mv = cells * 3400
        self.frame = Frame()
        self.commands = GatewayCommands(NODE, codec.RELAY_COMMAND_REQUEST_CLOSE, 0b1011, 3200)
        self.t = 0
        self.k = 0
        for _ in range(8200 // CYCLE_MS):  # settle: active, every stream running, balancing
            self.before()
            self.node.step(self.t)
            self.after()
        if self.node.state != 2 or self.hw.balance_mask != 0b1011:
            raise RuntimeError(f"node not in steady state (state {self.node.state})")

    def before(self) -> None:
        """The world before a cycle: commands arrive, two cells and the current move."""
        hw = self.hw
        self.commands.inject(self.bus, self.t)
        d = self.k & 7
        hw.cell_mv[5] = 3400 + d
        hw.cell_mv[6] = 3400 - d
        hw.current_ma = 2000 + d if hw.relay_closed else 0  # no current through an open relay

    def after(self) -> None:
        while self.bus.take(self.frame):
            pass
        self.t += CYCLE_MS
        self.k += 1


def cpython_cycle_us(cells: int, cycles: int = CYCLES) -> float:
    """Microseconds per Node.step() in steady state."""
    steady = SteadyNode(cells)
    node = steady.node
    elapsed = 0.0
    for _ in range(cycles):
        steady.before()
        start = time.perf_counter()
        node.step(steady.t)
        elapsed += time.perf_counter() - start
        steady.after()
    return elapsed / cycles * 1e6


def cycle_cost(cells: int, cycles: int = 400) -> tuple[float, float]:
    """Bytecodes and Python function calls per steady-state Node.step(), counted with
    sys.settrace ('opcode' and 'call' events): figures that carry over to another
    interpreter, where a time does not. Built-ins (MicroPython's ticks_diff, CPython's
    operator.sub in its place) run no bytecode of their own and are not counted."""
    steady = SteadyNode(cells)
    node = steady.node
    ops = calls = 0

    def local(frame: FrameType, event: str, arg: object) -> object:
        nonlocal ops
        if event == "opcode":
            ops += 1
        return local

    def enter(frame: FrameType, event: str, arg: object) -> object:
        nonlocal calls
        calls += 1
        frame.f_trace_opcodes = True
        return local

    for _ in range(cycles):
        steady.before()
        sys.settrace(enter)
        try:
            node.step(steady.t)
        finally:
            sys.settrace(None)
        steady.after()
    return ops / cycles, calls / cycles


def micropython_figures() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mpy.json"
        done = subprocess.run(
            ["node", str(ROOT / "tests" / "mpy" / "run.mjs"), str(path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or not path.exists():
            raise RuntimeError(f"MicroPython suite failed:\n{done.stdout}\n{done.stderr}")
        figures: dict[str, object] = json.loads(path.read_text())
        return figures


def run(quick: bool = False) -> Result:
    res = Result("firmware", "Firmware cycle cost (Node.step, 50 ms cycle)")
    mpy = micropython_figures()
    res.params = {
        "cycle_ms": CYCLE_MS,
        "cycles": CYCLES,
        "micropython": mpy.get("micropython"),
        "heap_modules_bytes": mpy.get("heap_modules_bytes"),
    }
    for cells in (16, 64):
        cpy = cpython_cycle_us(cells, CYCLES // 4 if quick else CYCLES)
        ops, calls = cycle_cost(cells, 100 if quick else 400)
        ops_before, calls_before = COST_BEFORE[cells]
        res.add(
            f"{cells} cells: bytecodes per cycle",
            ops,
            "bytecodes",
            ops_before,
            "before issue 21",
            target=f"<= {ops_before / 2:,.0f} (half)",
            met=ops <= ops_before / 2,
        )
        res.add(
            f"{cells} cells: Python calls per cycle",
            calls,
            "calls",
            calls_before,
            "before issue 21",
            target=f"<= {calls_before / 2:.1f} (half)",
            met=calls <= calls_before / 2,
        )
        m = mpy[f"cells{cells}"]
        assert isinstance(m, dict)
        budget = CYCLE_MS * 1000
        res.add(f"{cells} cells: CPython", cpy, "us/cycle", budget, "50 ms cycle")
        res.add(
            f"{cells} cells: MicroPython (WebAssembly)",
            float(m["wasm_cycle_us"]),
            "us/cycle",
            budget,
            "50 ms cycle",
        )
        res.add(
            f"{cells} cells: MicroPython heap allocated per cycle",
            float(m["alloc_bytes_per_cycle"]),
            "bytes",
            target="== 0",
            met=m["alloc_bytes_per_cycle"] == 0,
        )
        res.add(
            f"{cells} cells: MicroPython heap in use after start-up",
            float(m["heap_in_use_after_startup"]),
            "bytes",
            float(m["heap_in_use_after_startup"]) - float(m["heap_node_bytes"]),
            "modules and suite before the node",
        )
    for key, label in (
        ("mcp2515_alloc_bytes_per_cycle", "MCP2515 driver: MicroPython heap allocated per cycle"),
        (
            "pyb_full_mailbox_alloc_bytes_per_cycle",
            "pyb.CAN, every mailbox busy: MicroPython heap allocated per cycle",
        ),
    ):
        if key in mpy:
            value = float(mpy[key])  # type: ignore[arg-type]
            res.add(label, value, "bytes", target="== 0", met=value == 0)
    res.notes.append(
        "MicroPython figures from tests/mpy/run.mjs (WebAssembly port under node: slower than "
        "CPython, and not an MCU's speed); heap in use includes the firmware's bytecode "
        f"({mpy.get('heap_modules_bytes')} bytes)"
    )
    return res
