"""What one commercial BMS tells about its pack, whatever its protocol: the contract between a
protocol (one module per BMS family in this folder, pure: bytes in, PackReading out) and the
source that places packs in the topology like nodes.

Units as in the BatterySnapshot: volts, amperes (positive = charging), degrees Celsius,
ampere-hours, per cent. None marks what the BMS does not report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class PackError(Exception):
    """A reading failed: timeout, bad checksum, garbled or truncated answer, port gone. The
    message names the pack's port and what was wrong; the reading is then stale, never
    guessed."""


@dataclass(frozen=True, slots=True)
class PackLimits:
    """The limits a battery's own BMS asks of an inverter (Pylontech CAN 0x351)."""

    charge_voltage: float  # V
    charge_current: float  # A, >= 0
    discharge_current: float  # A, >= 0


@dataclass(frozen=True, slots=True)
class PackReading:
    """One complete reading of a pack (all requests of one poll answered and verified)."""

    cells: tuple[float, ...]  # cell voltages, V, cell 1 first
    temperatures: tuple[float, ...]  # every sensor the BMS reports, degC
    voltage: float  # pack voltage, V
    current: float  # A, + = charging
    charge_on: bool | None  # the BMS's charge switch (MOSFET) is on
    discharge_on: bool | None  # the BMS's discharge switch is on
    # The BMS's own protection flags now raised, named as its document names them
    # ("cell over-voltage", ...): a pack with any alarm has cut off or is about to.
    alarms: frozenset[str] = frozenset()
    capacity_ah: float | None = None  # full (or rated) capacity as the BMS reports it
    remaining_ah: float | None = None
    soc: float | None = None  # per cent, the BMS's own estimate
    cycles: int | None = None
    # A battery that reports no cell voltages (cells == ()) may still report its lowest and
    # highest cell (Pylontech CAN 0x373), and the limits its own BMS asks for.
    cell_range: tuple[float, float] | None = None  # V, lowest and highest
    limits: PackLimits | None = None


class PackLink(Protocol):
    """One BMS behind one port (runtime side: owns its I/O, reopens a lost port itself)."""

    name: str  # e.g. "jbd /dev/ttyUSB0"
    can_switch: bool  # the BMS accepts commands to switch its charge/discharge MOSFETs

    async def read(self) -> PackReading:
        """Poll the BMS once; PackError when no complete, verified answer came in time."""
        ...

    async def switch(self, charge: bool, discharge: bool) -> None:
        """Set the charge and discharge switches; PackError when not confirmed."""
        ...

    async def close(self) -> None: ...
