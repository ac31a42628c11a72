"""Settings of the outputs beside the inverter's CAN frames (`outputs`).

Each output has its own section; a section left out means that output is off.
"""

from __future__ import annotations

from pydantic import Field

from gateway.contracts.section import Section
from gateway.outputs.mqtt.settings import MqttSettings
from gateway.outputs.venus.settings import VenusSettings


class OutputsSettings(Section):
    """Where else the battery is published."""

    mqtt: MqttSettings | None = Field(
        None, description="MQTT broker and Home Assistant discovery (docs/mqtt.md)"
    )
    venus: VenusSettings | None = Field(
        None,
        description="a com.victronenergy.battery service on a Victron GX's D-Bus (Venus OS); "
        "leave out for none",
    )
