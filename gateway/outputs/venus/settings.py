"""Settings of the Venus OS D-Bus output (`outputs.venus`)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from gateway.contracts.section import Section

SERVICE_PREFIX = "com.victronenergy.battery."
# The part after the prefix names the device under /Settings/Devices/ too: one object-path
# element (letters, digits, underscore), as D-Bus requires for both.
_DEVICE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_CUSTOM_NAME = 64  # characters; the GX's rename dialog keeps names short


class VenusSettings(Section):
    """The battery as a com.victronenergy.battery service on a Venus OS D-Bus (docs/venus.md)."""

    bus: str = Field(
        "system",
        description="the D-Bus to register on: system, session or a D-Bus address "
        "(unix:path=/run/dbus/system_bus_socket, tcp:host=gx.local,port=78)",
    )
    service_name: str = Field(
        "com.victronenergy.battery.moat_bms",
        description="the D-Bus service name: com.victronenergy.battery.<device>; <device> "
        "(letters, digits, _) also names the device in the GX settings",
    )
    device_instance: int = Field(
        100,
        ge=0,
        le=999,
        description="VRM device instance asked for: where com.victronenergy.settings runs "
        "(every GX) the GX may give the next free one; elsewhere used as is",
    )
    custom_name: str = Field(
        "",
        max_length=MAX_CUSTOM_NAME,
        description="name shown on the GX and VRM; a rename on the GX is kept (next to the "
        "state file) and wins over this",
    )
    retry_min_s: float = Field(
        1.0, gt=0, le=60, description="first delay before reconnecting to a D-Bus that is gone, s"
    )
    retry_max_s: float = Field(
        30.0, gt=0, le=600, description="longest delay between reconnects (doubling back-off), s"
    )

    @field_validator("service_name")
    @classmethod
    def _service_name(cls, name: str) -> str:
        device = name.removeprefix(SERVICE_PREFIX)
        if device == name or not _DEVICE.fullmatch(device):
            raise ValueError(
                f"must be {SERVICE_PREFIX}<device> with <device> of letters, digits and _ "
                f"(not starting with a digit), got {name!r}"
            )
        return name

    @field_validator("custom_name")
    @classmethod
    def _printable(cls, name: str) -> str:
        if not name.isprintable():
            raise ValueError(f"must be printable text, got {name!r}")
        return name

    @property
    def device(self) -> str:
        """The device's name: the service name's last part (moat_bms)."""
        return self.service_name.removeprefix(SERVICE_PREFIX)
