"""Command-line options shared by the commands that open a CAN bus: python-can's own
interface / channel / bitrate, so `--interface socketcan --channel vcan0` works everywhere."""

from __future__ import annotations

import argparse
import logging
from typing import Any

log = logging.getLogger(__name__)


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


def warn_if_virtual(command: str, bus_kwargs: dict[str, Any]) -> bool:
    """Say so when a bus is python-can's `virtual` one: it lives inside one process, so
    separate `moat-bms run`, `node` and `inverter` processes never hear each other on it.
    True when it warned."""
    if bus_kwargs.get("interface") != "virtual":
        return False
    log.warning(
        "%s: python-can's virtual bus (channel %s) exists only inside this process: other "
        "moat-bms processes see nothing of it. To connect processes use a SocketCAN vcan "
        "bus (--interface socketcan --channel vcan0, docs/inspection.md), or run the whole "
        "system in one process with `moat-bms sim`",
        command,
        bus_kwargs.get("channel", "default"),
    )
    return True
