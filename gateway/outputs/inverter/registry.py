"""Inverter profiles by name, loaded when first asked for (python-can's interface registry
is the model): the settings check a name without importing any profile module, and adding a
profile is one file and one line here."""

from __future__ import annotations

import functools
import importlib
from typing import Any, Protocol

# name -> "module:Class"
PROFILES: dict[str, str] = {
    "pylontech": "gateway.outputs.inverter.pylontech:PylontechProfile",
    "victron": "gateway.outputs.inverter.victron:VictronProfile",
    "sma-sunny-island": "gateway.outputs.inverter.sma_sunny_island:SmaSunnyIslandProfile",
    "deye": "gateway.outputs.inverter.deye:DeyeProfile",
    "sol-ark": "gateway.outputs.inverter.sol_ark:SolArkProfile",
    "luxpower": "gateway.outputs.inverter.luxpower:LuxpowerProfile",
    "growatt-lv": "gateway.outputs.inverter.growatt_lv:GrowattLvProfile",
    "pylontech-hv": "gateway.outputs.inverter.pylontech_hv:PylontechHvProfile",
    "sofar": "gateway.outputs.inverter.sofar:SofarProfile",
}


class ProfileClass(Protocol):
    """What the settings need of a profile class (gateway/outputs/inverter/profile.py)."""

    name: str
    min_interval: float
    default_manufacturer: str

    def check_settings(self, settings: Any) -> None:
        """Raise ValueError when `settings` (InverterSettings) do not suit this profile."""

    def __call__(self, settings: Any) -> Any:
        """A new profile instance."""


@functools.cache  # asked every tick (the 0x35E default name): import_module once per name
def profile_class(name: str) -> ProfileClass:
    """The profile class called `name`; ValueError listing the known names otherwise."""
    try:
        target = PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown inverter profile {name!r}; known profiles: {known}") from None
    module, _, attr = target.partition(":")
    cls: ProfileClass = getattr(importlib.import_module(module), attr)
    return cls
