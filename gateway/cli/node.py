"""`moat-bms node`: one simulated battery node (the real firmware on simulated hardware and
its own pack) in real time on any python-can bus, e.g. socketcan vcan0."""

from __future__ import annotations

import argparse
import contextlib
import logging
from typing import Any

from gateway.cli.options import add_bus_options
from gateway.cli.realtime import open_bus, run_realtime

log = logging.getLogger(__name__)


def add_subparser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "node",
        help="run one simulated battery node in real time",
        description="Run the node firmware on simulated hardware with its own simulated pack, "
        "in real time on a CAN bus. The pack's current comes from `moat-bms inverter` on the "
        "same bus (SimBatteryCurrent, dbc/simulation.dbc).",
    )
    parser.add_argument("--node-id", type=int, default=0, help="node id 0..15 (default 0)")
    parser.add_argument("--cells", type=int, default=16, help="cells in series (default 16)")
    parser.add_argument("--chemistry", default="lfp", choices=("lfp", "nmc", "lto"))
    parser.add_argument("--capacity", type=float, default=100.0, help="pack capacity, Ah")
    parser.add_argument("--soc", type=float, default=50.0, help="initial state of charge, %%")
    parser.add_argument(
        "--strings", type=int, default=1, help="parallel strings sharing the current (default 1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the pack's cells")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    add_bus_options(parser, "CAN bus")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gateway.sim.standalone import StandaloneNode  # noqa: PLC0415 -- keeps --help fast

    if not 0 <= args.node_id <= 15:
        print(f"moat-bms node: --node-id must be 0..15, got {args.node_id}")
        return 2
    if not 0 <= args.soc <= 100 or args.strings < 1 or args.cells < 1:
        print("moat-bms node: --soc must be 0..100, --strings and --cells at least 1")
        return 2
    with contextlib.ExitStack() as stack:
        bus = open_bus(args)
        stack.callback(bus.shutdown)
        listener = open_bus(args)
        stack.callback(listener.shutdown)
        node = StandaloneNode(
            bus,
            listener,
            node_id=args.node_id,
            cells=args.cells,
            chemistry=args.chemistry,
            capacity_ah=args.capacity,
            soc=args.soc / 100,
            strings=args.strings,
            seed=args.seed,
        )
        log.info("node %d: %d %s cells on %s", args.node_id, args.cells, args.chemistry, bus)
        with contextlib.suppress(KeyboardInterrupt):
            run_realtime(node.step, node.node.config.cycle_ms / 1000, args.duration)
    return 0
