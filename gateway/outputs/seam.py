"""The output seam: one small interface for everything that publishes the battery.

An output is told the battery's state after every tick (`publish`, synchronous, in the
tick's thread: it must neither block nor raise; it keeps the newest view or queues it) and
does its I/O in `run`, a task started beside the CAN ports that retries on its own and
returns only when cancelled. A broker or a D-Bus that is gone must never delay a tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from gateway.contracts.decision import Decision
    from gateway.contracts.snapshot import BatterySnapshot
    from gateway.outputs.inverter.report import InverterReport
    from gateway.record.events import Event
    from gateway.soc import SocState


@dataclass(frozen=True, slots=True)
class BatteryView:
    """One tick's result, as every output sees it. Read only."""

    time: float  # the core's clock, s (monotonic in production, simulated in the simulator)
    snapshot: BatterySnapshot  # the battery as measured
    soc: SocState  # SoC, SoH, counters
    decision: Decision  # limits, phase, alarms, node requests
    report: InverterReport | None  # what the inverter is told (after the profile's shaping)
    events: tuple[Event, ...]  # events recorded since the previous view


class Output(Protocol):
    """Something that publishes the battery (D-Bus service, MQTT client, ...)."""

    name: str

    def publish(self, view: BatteryView) -> None:
        """Take the newest view. Called after every tick; must not block or raise."""
        ...

    async def run(self) -> None:
        """The output's I/O until cancelled: connect, publish, reconnect with back-off."""
        ...

    def describe(self) -> str:
        """One line for the web page: connected, or what is wrong and when it retries."""
        ...
