"""The `moat-bms` command: a thin set of subcommand modules over the gateway library.

Each subcommand lives in its own module with `add_subparser(subparsers)`, which registers
its arguments and sets `func` to the function that runs it and returns the exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from gateway import __version__

# Subcommand modules, in the order `--help` lists them.
SUBCOMMANDS: tuple[str, ...] = ("run", "config", "sim", "node", "inverter")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="moat-bms",
        description="CAN-bus battery management: gateway, configuration and simulation.",
    )
    parser.add_argument("--version", action="version", version=f"moat-bms {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"gateway.cli.{name}")
        module.add_subparser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2) if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    status: int = func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
