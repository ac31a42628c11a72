"""Reports and frame decoding shared by the inverter tests."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import cantools

from gateway.contracts.decision import Alarm, Limits, Severity
from gateway.contracts.frame import Frame
from gateway.outputs.inverter import InverterReport, InverterSettings, make_profile
from gateway.outputs.inverter.profile import InverterProfile

NAN = math.nan

NORMAL_LIMITS = Limits(
    cvl=55.2, ccl=100.0, dcl=150.0, dvl=48.0, charge_enable=True, discharge_enable=True
)


def report(**changes: Any) -> InverterReport:
    """A healthy 16s LFP battery, resting at 53.27 V, with `changes` applied."""
    base = InverterReport(
        limits=NORMAL_LIMITS,
        alarms={},
        soc=73.456,
        soh=98.0,
        voltage=53.27,
        current=-12.3,
        temperature=24.5,
        min_cell_voltage=3.321,
        max_cell_voltage=3.334,
        min_cell_temperature=20.0,
        max_cell_temperature=24.5,
        capacity_ah=280.0,
        modules_online=2,
        modules_blocking_charge=0,
        modules_blocking_discharge=0,
        modules_offline=1,
        manufacturer="PYLON",
        bms_name="moat-bms",
        firmware_version=0x0102,
        hardware_version=3,
    )
    return dataclasses.replace(base, **changes)


def limits(**changes: Any) -> Limits:
    return dataclasses.replace(NORMAL_LIMITS, **changes)


UNKNOWN_MEASUREMENTS: dict[str, Any] = {
    "soc": NAN,
    "soh": NAN,
    "voltage": NAN,
    "current": NAN,
    "temperature": NAN,
    "min_cell_voltage": NAN,
    "max_cell_voltage": NAN,
    "min_cell_temperature": NAN,
    "max_cell_temperature": NAN,
    "capacity_ah": NAN,
}

ALARMS = {
    Alarm.HIGH_CELL_VOLTAGE: Severity.ALARM,
    Alarm.HIGH_TEMPERATURE: Severity.WARNING,
    Alarm.CELL_IMBALANCE: Severity.WARNING,
    Alarm.INVERTER_MISSING: Severity.ALARM,
}


def profile(name: str, **settings: Any) -> InverterProfile:
    return make_profile(name, InverterSettings(profile=name, **settings))


def last_frames(name: str, *reports: InverterReport, **settings: Any) -> list[Frame]:
    """The frames of the last of `reports`, sent in order through one profile instance (a
    profile remembers what it last knew)."""
    p = profile(name, **settings)
    for r in reports[:-1]:
        p.frames(r)
    return p.frames(reports[-1])


def decode(
    db: cantools.database.can.Database, frames: list[Frame], padded: bool
) -> dict[int, dict[str, Any]]:
    """Decode every frame with the DBC; check its length and that any padding is zero."""
    decoded: dict[int, dict[str, Any]] = {}
    for frame in frames:
        frame_id, data = frame.id, frame.data
        message = db.get_message_by_frame_id(frame_id)
        assert len(data) == (8 if padded else message.length), hex(frame_id)
        assert data[message.length :] == bytes(len(data) - message.length), hex(frame_id)
        assert frame_id not in decoded, f"{frame_id:#x} sent twice"
        decoded[frame_id] = message.decode(data[: message.length], decode_choices=False)
    return decoded


def text(signals: dict[str, Any], prefix: str, first: int, count: int) -> str:
    """ASCII characters from signals named prefix + number."""
    return bytes(signals[f"{prefix}{i}"] for i in range(first, first + count)).decode("ascii")
