"""Configuration of the inverter output: profile, timing, keepalive watch, names, overrides."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.outputs.inverter.names import BMS_NAME_LENGTH, MANUFACTURER_LENGTH, check_name
from gateway.outputs.inverter.registry import profile_class

# A Victron system stops after about 3 s without 0x351; two periods must fit in that.
MAX_PERIOD = 1.5  # s
MIN_MARGIN = 0.1  # V: the stop CVL (pack voltage rounded down to 0.1 V) must fit in it


class InverterSettings(BaseModel):
    """How the gateway talks to the inverter (see docs/inverters.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    enabled: bool = Field(
        True,
        description="Send the inverter its CAN frames and watch its 0x305 keepalive. Turn off "
        "when a Victron GX takes the limits from the D-Bus battery service (outputs.venus) "
        "instead: the gateway still decides, and every output still gets the limits.",
    )
    profile: str = Field(
        "pylontech",
        description="Inverter profile (docs/inverters.md): pylontech, victron, "
        "sma-sunny-island, deye, sol-ark, luxpower, growatt-lv, sofar or pylontech-hv.",
    )
    period: float = Field(
        1.0,
        gt=0,
        le=MAX_PERIOD,
        description="Time between two full frame sets when nothing urgent happens, s.",
    )
    watch_keepalive: bool = Field(
        True,
        description="Raise 'inverter missing' when its 0x305 keepalive stops; turn off for "
        "inverters that never send it.",
    )
    keepalive_timeout: float = Field(
        10.0,
        ge=2.0,
        le=600.0,
        description="Time without a 0x305 keepalive after which the inverter is missing, s.",
    )
    startup_grace: float = Field(
        60.0,
        ge=0.0,
        le=3600.0,
        description="Time after start-up during which a keepalive that has never arrived is "
        "not yet missing (slow-booting inverters), s.",
    )
    missing_as_warning: bool = Field(
        False,
        description="Report a missing inverter as a warning instead of an alarm (off-grid "
        "setups where the battery must keep working regardless).",
    )
    manufacturer: str | None = Field(
        None,
        description="Manufacturer name in 0x35E, at most 8 ASCII characters; unset = the "
        "profile's default (PYLON; moat-bms for victron). Deye requires it to start with "
        "PYLON, Victron must not see PYLON (it would apply its Pylontech overrides).",
    )
    bms_name: str = Field(
        "moat-bms",
        description="BMS name in 0x370/0x371 (Victron), at most 16 ASCII characters.",
    )
    capacity_ah: float | None = Field(
        None,
        gt=0,
        le=60000,
        description="Installed capacity to report instead of the nodes' rated capacity, Ah.",
    )
    dvl: float | None = Field(
        None,
        ge=1.0,
        le=300.0,
        description="Discharge voltage limit to send instead of the strategy's, V.",
    )
    fallback_cvl: float = Field(
        51.2,
        ge=1.0,
        le=300.0,
        description="Charge voltage limit sent only if no valid CVL and no pack voltage has "
        "ever been known (charging is stopped then); set it near your pack's resting "
        "voltage, V.",
    )
    cvl_margin: float = Field(
        0.5,
        ge=MIN_MARGIN,
        le=5.0,
        description="Deye: the CVL is never sent more than this below the pack voltage (W31), V.",
    )
    pad_to_8: bool | None = Field(
        None,
        description="Pad every frame to 8 bytes with zeros; unset = the profile's choice "
        "(only sma-sunny-island pads).",
    )

    @field_validator("manufacturer")
    @classmethod
    def _manufacturer_ascii(cls, name: str | None) -> str | None:
        return None if name is None else check_name(name, MANUFACTURER_LENGTH, "manufacturer name")

    @field_validator("bms_name")
    @classmethod
    def _bms_name_ascii(cls, name: str) -> str:
        return check_name(name, BMS_NAME_LENGTH, "BMS name")

    @model_validator(mode="after")
    def _fits_profile(self) -> InverterSettings:
        # Each profile owns its rules (its minimum interval, the names its inverters accept).
        profile_class(self.profile).check_settings(self)
        return self

    @property
    def manufacturer_name(self) -> str:
        """The 0x35E name: the configured one, else the profile's default."""
        if self.manufacturer is not None:
            return self.manufacturer
        return profile_class(self.profile).default_manufacturer
