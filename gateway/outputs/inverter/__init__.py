"""Inverter output: the Pylontech-compatible frame sets, their timing and the 0x305 watch.

The data path: strategy Decision + BatterySnapshot -> build_report -> InverterReport ->
profile.frames() -> CAN bus, paced by an Emitter; KeepaliveWatch turns the inverter's 0x305
frames into an INVERTER_MISSING alarm.
"""

from gateway.outputs.inverter.emitter import Emitter
from gateway.outputs.inverter.keepalive import KeepaliveStatus, KeepaliveWatch
from gateway.outputs.inverter.profile import InverterProfile
from gateway.outputs.inverter.registry import PROFILES, make_profile
from gateway.outputs.inverter.report import InverterReport, build_report
from gateway.outputs.inverter.settings import InverterSettings

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
]
