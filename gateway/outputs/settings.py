"""The `outputs` configuration section: the outputs beside the inverter's CAN frames.

Each output has its own optional sub-section, off when left out. `venus` (the Victron GX
D-Bus service) is added here too, beside `mqtt`.
"""

from __future__ import annotations

from pydantic import Field

from gateway.outputs.mqtt.settings import MqttSettings
from gateway.settings import Section


class OutputsSettings(Section):
    """Outputs beside the inverter: each is off when its section is left out."""

    mqtt: MqttSettings | None = Field(
        None, description="MQTT broker and Home Assistant discovery (docs/mqtt.md)"
    )
