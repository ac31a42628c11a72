"""Command-line options shared by the commands that open a CAN bus: python-can's own
interface / channel / bitrate, so `--interface socketcan --channel vcan0` works everywhere."""

from __future__ import annotations

import argparse
from typing import Any


def add_bus_options(parser: argparse.ArgumentParser, what: str, prefix: str = "") -> None:
    group = parser.add_argument_group(what)
    dash = f"{prefix}-" if prefix else ""
    group.add_argument(f"--{dash}interface", help="python-can interface (socketcan, virtual, ...)")
    group.add_argument(f"--{dash}channel", help="python-can channel (can0, vcan0, ...)")
    group.add_argument(f"--{dash}bitrate", type=int, help="bit rate, bit/s")


def bus_overrides(args: argparse.Namespace, prefix: str = "") -> dict[str, Any]:
    """The bus options given on the command line, as CanBusSettings keys."""
    under = f"{prefix}_" if prefix else ""
    out: dict[str, Any] = {}
    for key in ("interface", "channel", "bitrate"):
        value = getattr(args, f"{under}{key}", None)
        if value is not None:
            out[key] = value
    return out
