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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or of `command` alone: each subcommand's module is
    imported to register it, and the simulator's alone costs a second on a small ARM
    computer, so `moat-bms run` imports only its own (the first 0x351 is due at once)."""
    parser = argparse.ArgumentParser(
        prog="moat-bms",
        description="CAN-bus battery management: gateway, configuration and simulation.",
    )
    parser.add_argument("--version", action="version", version=f"moat-bms {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in SUBCOMMANDS if command is None else (command,):
        module = importlib.import_module(f"gateway.cli.{name}")
        module.add_subparser(subparsers)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand the arguments name (the first word that is not an option), if any."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in SUBCOMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command(argv))
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
