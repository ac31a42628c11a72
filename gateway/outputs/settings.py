"""Settings of the outputs beside the inverter's CAN frames (`outputs`).

Each output has its own section; a section left out means that output is off. The MQTT
output (gateway/outputs/mqtt) adds its `mqtt` field here beside `venus`.
"""

from __future__ import annotations

from pydantic import Field

from gateway.contracts.section import Section
from gateway.outputs.venus.settings import VenusSettings


class OutputsSettings(Section):
    """Where else the battery is published."""

    venus: VenusSettings | None = Field(
        None,
        description="a com.victronenergy.battery service on a Victron GX's D-Bus (Venus OS); "
        "leave out for none",
    )
