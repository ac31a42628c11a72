"""`moat-bms config`: check a configuration file, print a commented example."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gateway.config.root import ConfigError, load_config
from gateway.sources.moat_nodes.busload import LOAD_WARNING, system_load

EXIT_INVALID = 2


def add_subparser(subparsers: Any) -> None:
    parser = subparsers.add_parser("config", help="check a configuration file or print an example")
    sub = parser.add_subparsers(title="config commands", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="validate FILE; exit status 2 names what is wrong")
    check.add_argument("file", type=Path, help="YAML configuration file")
    check.set_defaults(func=run_check)
    example = sub.add_parser("example", help="print a commented example with every default")
    example.set_defaults(func=run_example)


def run_check(args: argparse.Namespace) -> int:
    try:
        settings = load_config(args.file)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return EXIT_INVALID
    topo = settings.battery.topology
    print(
        f"{args.file}: ok -- {len(topo.strings)} string(s) of {topo.cells_in_series} "
        f"{settings.battery.chemistry.value.upper()} cells, nodes {topo.nodes}, "
        f"inverter profile {settings.inverter.profile}"
    )
    buses = settings.buses
    for bus in system_load(
        topo,
        buses.battery.bitrate,
        buses.inverter.bitrate if buses.inverter else None,
        shared_bus=buses.inverter is None,
        inverter_period_s=settings.inverter.period,
    ):
        if bus.too_high:
            print(
                f"{args.file}: warning: {bus.describe()} with worst-case bit stuffing, "
                f"more than {100 * LOAD_WARNING:.0f} %: frames will be delayed; "
                "use a higher bitrate or fewer nodes on this bus",
                file=sys.stderr,
            )
        else:
            print(f"  {bus.describe()} (worst-case bit stuffing)")
    return 0


def run_example(args: argparse.Namespace) -> int:
    from gateway.config.doc import example_yaml  # noqa: PLC0415 -- only this command needs it

    sys.stdout.write(example_yaml())
    return 0
