"""When to send the frame set: every period, and at once when a limit drops or an alarm rises.

Pure: the service asks `due(now, report)` every tick, sends `profile.frames(report)` when it
is True and then calls `sent(now, report)`. Pass a monotonic clock (time.monotonic()): a
wall clock that jumps forward would delay nothing, but one that jumps back would stall the
period, so a backward step is treated as "due now".

Decreases are safety: a lower CVL, CCL or DCL, an enable bit cleared or an alarm that
appears or escalates is sent as soon as the profile's minimum interval allows -- a stop
(an enable bit cleared, CCL or DCL down to 0) at once, whatever the minimum interval, except
for a family whose minimum interval is absolute (SMA Sunny Island: never faster than every
200 ms, FSS-ConnectingBat-TI-en-10; issue 15 item 3), where a stop waits for it too. Increases
wait for the next period (the strategy already ramps them; there is no hurry to allow more).
Changes smaller than the frame resolution (0.1 V, 0.1 A) are not urgent: the next period
carries them, which keeps a slowly ramping limit from turning into a frame storm.

A family whose inverter polls (`periodic=False`, Pylontech HV) gets its frame set as the
answer to each poll (the core sends it and calls `sent`); `due` then only says when a drop,
a stop or a risen alarm must go out unasked, and nothing before the first answer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from gateway.contracts.decision import Alarm, Limits, Severity
from gateway.outputs.inverter.report import InverterReport

if TYPE_CHECKING:
    from gateway.outputs.inverter.profile import InverterProfile

VOLTAGE_STEP = 0.1  # V: the resolution of CVL in 0x351
CURRENT_STEP = 0.1  # A: the resolution of CCL/DCL in 0x351


def _usable(value: float) -> float:
    """A limit as the profile will treat it: NaN, infinities and negatives count as 0."""
    return value if math.isfinite(value) and value > 0 else 0.0


def _dropped(new: float, old: float, step: float) -> bool:
    return _usable(new) <= _usable(old) - step + 1e-9


def limits_dropped(new: Limits, old: Limits) -> bool:
    """True when `new` allows less than `old` by at least one frame step, clears an enable
    bit or loses its DVL."""
    return (
        _dropped(new.cvl, old.cvl, VOLTAGE_STEP)
        or _dropped(new.ccl, old.ccl, CURRENT_STEP)
        or _dropped(new.dcl, old.dcl, CURRENT_STEP)
        or (_usable(old.dvl) > 0 and _usable(new.dvl) == 0)  # DVL invalid: discharge stops
        or (old.charge_enable and not new.charge_enable)
        or (old.discharge_enable and not new.discharge_enable)
    )


def stopped(new: Limits, old: Limits) -> bool:
    """True when `new` stops a direction `old` allowed: its enable bit cleared or its current
    limit down to 0."""
    return (
        (old.charge_enable and not new.charge_enable)
        or (old.discharge_enable and not new.discharge_enable)
        or (_usable(old.ccl) > 0 and _usable(new.ccl) == 0)
        or (_usable(old.dcl) > 0 and _usable(new.dcl) == 0)
    )


def alarm_rose(new: Mapping[Alarm, Severity], old: Mapping[Alarm, Severity]) -> bool:
    """True when an alarm appears in `new` or has a higher severity than in `old`."""
    return any(severity > old.get(alarm, 0) for alarm, severity in new.items())


class Emitter:
    """Send timing for one inverter connection."""

    def __init__(
        self,
        period: float = 1.0,
        min_interval: float = 0.0,
        strict: bool = False,
        periodic: bool = True,
    ) -> None:
        if not 0 <= min_interval <= period:
            raise ValueError(f"need 0 <= min_interval ({min_interval}) <= period ({period})")
        self.period = period
        self.min_interval = min_interval
        self.strict = strict  # the minimum interval holds for stops too
        self.periodic = periodic  # False: the inverter polls; only urgent sets go out unasked
        self._last_time: float | None = None
        self._last: InverterReport | None = None

    @classmethod
    def for_profile(cls, profile: InverterProfile) -> Emitter:
        """The timing for `profile`: its configured period and its minimum interval."""
        return cls(
            profile.settings.period,
            profile.min_interval,
            profile.strict_min_interval,
            profile.periodic,
        )

    def due(self, now: float, report: InverterReport) -> bool:
        """True when the frame set for `report` should be sent at `now` (seconds)."""
        if self._last_time is None or self._last is None:
            return self.periodic
        elapsed = now - self._last_time
        if elapsed < 0 or elapsed >= self.period:
            return self.periodic or self._urgent(report)
        if elapsed < self.min_interval:
            if self.strict:
                return False
            # A stop goes out even so: it cannot repeat before an increase, and increases
            # wait for the period, so stops add at most two frame sets a period.
            return stopped(report.limits, self._last.limits)
        return self._urgent(report)

    def _urgent(self, report: InverterReport) -> bool:
        assert self._last is not None
        return limits_dropped(report.limits, self._last.limits) or alarm_rose(
            report.alarms, self._last.alarms
        )

    def sent(self, now: float, report: InverterReport) -> None:
        """Record that the frame set for `report` went out at `now`."""
        self._last_time = now
        self._last = report
