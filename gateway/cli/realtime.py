"""The wall-clock loop of the standalone simulated parts (`moat-bms node`, `moat-bms inverter`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import can

from gateway.cli.options import bus_overrides, warn_if_virtual
from gateway.config.sections import CanBusSettings


def open_bus(args: Any) -> can.BusABC:
    """A python-can bus from the command line's options; what they leave out comes from
    python-can's config file and CAN_* variables, as for `moat-bms run`."""
    factory: Callable[..., can.BusABC] = can.Bus
    kwargs = CanBusSettings(**bus_overrides(args)).bus_kwargs()
    warn_if_virtual("moat-bms", kwargs)
    return factory(**kwargs)


def run_realtime(step: Callable[[float], object], period_s: float, duration: float | None) -> None:
    """Call step(t) every period_s wall seconds (t: seconds since start) until duration
    has passed (None: until Ctrl-C). After an overrun the grid moves instead of bursting."""
    start = time.monotonic()
    due = start
    while duration is None or due - start < duration:
        step(time.monotonic() - start)
        due += period_s
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            due = time.monotonic()
