"""Inverter profiles by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.outputs.inverter.deye import DeyeProfile
from gateway.outputs.inverter.profile import InverterProfile
from gateway.outputs.inverter.pylontech import PylontechProfile
from gateway.outputs.inverter.sma_sunny_island import SmaSunnyIslandProfile
from gateway.outputs.inverter.victron import VictronProfile

if TYPE_CHECKING:
    from gateway.outputs.inverter.settings import InverterSettings

PROFILES: dict[str, type[InverterProfile]] = {
    cls.name: cls for cls in (PylontechProfile, VictronProfile, SmaSunnyIslandProfile, DeyeProfile)
}


def profile_class(name: str) -> type[InverterProfile]:
    """The profile class called `name`; ValueError listing the known names otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown inverter profile {name!r}; known profiles: {known}") from None


def make_profile(name: str, settings: InverterSettings) -> InverterProfile:
    """A new profile instance for one inverter connection; `settings.profile` must be `name`.

    Raises ValueError for an unknown name (listing the known ones) or mismatching settings.
    """
    return profile_class(name)(settings)
