"""`moat-bms inverter`: a simulated hybrid inverter in real time on any python-can bus: it
reads the gateway's Pylontech frames, sends the 0x305 keepalive and drives the battery
current the nodes of `moat-bms node` carry."""

from __future__ import annotations

import argparse
import contextlib
import logging
from typing import Any

from gateway.cli.options import add_bus_options
from gateway.cli.realtime import open_bus, run_realtime

log = logging.getLogger(__name__)
STEP_S = 0.1


def add_subparser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "inverter",
        help="run a simulated hybrid inverter in real time",
        description="Run a simulated hybrid inverter on a CAN bus: it obeys the Pylontech "
        "limits it receives, sends 0x305 and the battery current (dbc/simulation.dbc).",
    )
    parser.add_argument("--pv", type=float, default=3000.0, help="PV power, W (default 3000)")
    parser.add_argument("--load", type=float, default=500.0, help="house load, W (default 500)")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    add_bus_options(parser, "CAN bus (the inverter bus)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gateway.sim.power import Constant  # noqa: PLC0415 -- keeps --help fast
    from gateway.sim.standalone import StandaloneInverter  # noqa: PLC0415

    if args.pv < 0 or args.load < 0:
        print("moat-bms inverter: --pv and --load must be at least 0")
        return 2
    with contextlib.ExitStack() as stack:
        bus = open_bus(args)
        stack.callback(bus.shutdown)
        inverter = StandaloneInverter(bus, Constant(args.pv), Constant(args.load))
        next_report = 0.0

        def step(t: float) -> None:
            nonlocal next_report
            current = inverter.step(t)
            if t >= next_report:
                next_report = t + 10.0
                log.info("inverter: %s, battery %+.1f A", inverter.inverter.status, current)

        with contextlib.suppress(KeyboardInterrupt):
            run_realtime(step, STEP_S, args.duration)
    return 0
