"""The outputs a configuration asks for (`outputs.*`), ready for Gateway(outputs=...) or
SimSystem.outputs. Each is imported only when configured: a gateway without D-Bus never
loads the D-Bus library."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.config.root import Settings
    from gateway.outputs.seam import Output


def build_outputs(settings: Settings, state_file: Path) -> list[Output]:
    """The configured outputs; `state_file` is the gateway's (outputs keep theirs beside it)."""
    outputs: list[Output] = []
    venus = settings.outputs.venus
    if venus is not None:
        from gateway.outputs.venus.service import VenusOutput  # noqa: PLC0415

        bus = settings.buses.battery
        connection = f"CAN {bus.interface or ''} {bus.channel or ''}".strip()
        topology, inverter = settings.battery.topology, settings.inverter
        outputs.append(VenusOutput(venus, topology, inverter, connection, state_file))
    return outputs
