"""Inverter output: the Pylontech-compatible frame sets, their timing and the 0x305 watch.

The data path: strategy Decision + BatterySnapshot -> build_report -> InverterReport ->
profile.frames() -> CAN bus, paced by an Emitter; KeepaliveWatch turns the inverter's 0x305
frames into an INVERTER_MISSING alarm.
"""

from gateway.outputs.inverter.emitter import Emitter
from gateway.outputs.inverter.keepalive import KeepaliveStatus, KeepaliveWatch
from gateway.outputs.inverter.profile import InverterProfile
from gateway.outputs.inverter.registry import PROFILES, profile_class
from gateway.outputs.inverter.report import InverterReport, build_report
from gateway.outputs.inverter.settings import InverterSettings


def make_profile(name: str, settings: InverterSettings) -> InverterProfile:
    """A new profile instance for one inverter connection; `settings.profile` must be `name`.

    Raises ValueError for an unknown name (listing the known ones) or mismatching settings.
    """
    profile = profile_class(name)(settings)
    assert isinstance(profile, InverterProfile)
    return profile


__all__ = [
    "PROFILES",
    "Emitter",
    "InverterProfile",
    "InverterReport",
    "InverterSettings",
    "KeepaliveStatus",
    "KeepaliveWatch",
    "build_report",
    "make_profile",
    "profile_class",
]
