"""Gateway alarms -> the alarm fields of the Pylontech (0x359) and SMA/Victron (0x35A) frames.

Severity.ALARM sets the "protection" bits of 0x359 and the alarm pairs of 0x35A; any
severity (WARNING or ALARM) sets the "alarm" (warning) bits of 0x359 and the warning pairs
of 0x35A, so an escalated condition shows in both. INVERTER_MISSING is never reported to the
inverter: it concerns the inverter itself.

A stopped direction reaches here as a WARNING (shaping.direction_stops_as_warnings), so
no protection bit and no alarm pair goes out for it. Where charging alone is stopped by a
temperature, SMA's "high/low temperature while charging" pairs of 0x35A say so (SMA
FSS-ConnectingBat-TI-en-10, 0x35A byte 1): warning active, or alarm active when it is an
alarm; with charging allowed they are "ok".
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.codec.pylontech_lv import AlarmsWarnings, AlarmsWarningsChoice
from gateway.contracts.decision import Alarm, Severity

# Faults of the battery system as a whole rather than of one measured quantity.
_SYSTEM = frozenset(
    {
        Alarm.SYSTEM,
        Alarm.CONTACTOR,
        Alarm.BATTERY_DATA_STALE,
        Alarm.NODE_MISSING,
        Alarm.NODE_TRIPPED,
    }
)
_COMMUNICATION = frozenset({Alarm.BATTERY_DATA_STALE, Alarm.NODE_MISSING})
REPORTED = frozenset(Alarm) - {Alarm.INVERTER_MISSING}

# 0x359 protection bits (set for Severity.ALARM), by ProtectionAlarms field name.
PROTECTION_BITS: Mapping[str, frozenset[Alarm]] = {
    "protection_cell_over_voltage": frozenset({Alarm.HIGH_CELL_VOLTAGE}),
    "protection_cell_under_voltage": frozenset({Alarm.LOW_CELL_VOLTAGE}),
    "protection_over_temperature": frozenset({Alarm.HIGH_TEMPERATURE}),
    "protection_under_temperature": frozenset({Alarm.LOW_TEMPERATURE}),
    "protection_discharge_over_current": frozenset({Alarm.HIGH_DISCHARGE_CURRENT}),
    "protection_charge_over_current": frozenset({Alarm.HIGH_CHARGE_CURRENT}),
    "protection_system_error": _SYSTEM,
}
# 0x359 alarm (warning) bits (set for any severity), by ProtectionAlarms field name.
WARNING_BITS: Mapping[str, frozenset[Alarm]] = {
    "alarm_high_voltage": frozenset({Alarm.HIGH_CELL_VOLTAGE}),
    "alarm_low_voltage": frozenset({Alarm.LOW_CELL_VOLTAGE}),
    "alarm_high_temperature": frozenset({Alarm.HIGH_TEMPERATURE}),
    "alarm_low_temperature": frozenset({Alarm.LOW_TEMPERATURE}),
    "alarm_discharge_high_current": frozenset({Alarm.HIGH_DISCHARGE_CURRENT}),
    "alarm_charge_high_current": frozenset({Alarm.HIGH_CHARGE_CURRENT}),
    "alarm_internal_communication": _COMMUNICATION,
}
# 0x35A conditions we evaluate, by the AlarmsWarnings field name without its alarm_/warning_
# prefix. A condition the gateway cannot tell (short circuit) is absent and sent as 0
# ("unknown"), not as a 2 ("ok") we could not vouch for. The "while charging" temperature
# pairs are evaluated in alarm_pairs from whether charging is stopped.
PAIRS: Mapping[str, frozenset[Alarm]] = {
    "general": REPORTED,
    "high_voltage": frozenset({Alarm.HIGH_CELL_VOLTAGE}),
    "low_voltage": frozenset({Alarm.LOW_CELL_VOLTAGE}),
    "high_temperature": frozenset({Alarm.HIGH_TEMPERATURE}),
    "low_temperature": frozenset({Alarm.LOW_TEMPERATURE}),
    "high_discharge_current": frozenset({Alarm.HIGH_DISCHARGE_CURRENT}),
    "high_charge_current": frozenset({Alarm.HIGH_CHARGE_CURRENT}),
    "contactor": frozenset({Alarm.CONTACTOR}),
    "bms_internal": _SYSTEM - {Alarm.CONTACTOR},  # the contactor has its own pair
    "cell_imbalance": frozenset({Alarm.CELL_IMBALANCE}),
}


def _active(alarms: Mapping[Alarm, Severity], which: frozenset[Alarm], least: Severity) -> bool:
    return any(alarms.get(a, 0) >= least for a in which)


def protection_flags(alarms: Mapping[Alarm, Severity]) -> dict[str, int]:
    """The 0x359 flag fields (ProtectionAlarms names -> 0/1) for these alarms."""
    if not alarms:  # the usual case, every second
        return dict(_ALL_CLEAR)
    flags = {}
    for name, which in PROTECTION_BITS.items():
        flags[name] = int(_active(alarms, which, Severity.ALARM))
    for name, which in WARNING_BITS.items():
        flags[name] = int(_active(alarms, which, Severity.WARNING))
    return flags


_ALL_CLEAR = dict.fromkeys([*PROTECTION_BITS, *WARNING_BITS], 0)


# The "while charging" temperature pairs: the temperature condition with charging stopped.
CHARGE_TEMPERATURE_PAIRS: Mapping[str, frozenset[Alarm]] = {
    "high_temperature_charge": frozenset({Alarm.HIGH_TEMPERATURE}),
    "low_temperature_charge": frozenset({Alarm.LOW_TEMPERATURE}),
}


def alarm_pairs(alarms: Mapping[Alarm, Severity], charging: bool = True) -> AlarmsWarnings:
    """The 0x35A frame content: 1 = active, 2 = ok, 0 = not evaluated. `charging`: whether
    charging is allowed (CCL above 0); if not, a temperature condition is also reported
    in its "while charging" pair."""
    pairs = dict.fromkeys(AlarmsWarnings._fields, int(AlarmsWarningsChoice.UNKNOWN))
    evaluated = {**PAIRS, **CHARGE_TEMPERATURE_PAIRS}
    for condition, which in evaluated.items():
        for prefix, least in (("alarm_", Severity.ALARM), ("warning_", Severity.WARNING)):
            active = _active(alarms, which, least)
            if condition in CHARGE_TEMPERATURE_PAIRS:
                active = active and not charging
            choice = AlarmsWarningsChoice.ACTIVE if active else AlarmsWarningsChoice.OK
            pairs[prefix + condition] = int(choice)
    return AlarmsWarnings(**pairs)
