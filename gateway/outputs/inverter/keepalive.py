"""Is the inverter there? Watches its 0x305 keepalive (about one a second).

Pure: the service calls `on_keepalive(now)` for every 0x305 frame and `status(now)` or
`alarms(now)` every tick. Pass a monotonic clock (time.monotonic()); should the clock step
back anyway, the watch restarts its timeout from the new time rather than waiting for the
old one to come round again.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from gateway.contracts.decision import Alarm, Severity

if TYPE_CHECKING:
    from gateway.outputs.inverter.settings import InverterSettings


class KeepaliveStatus(StrEnum):
    STARTING = "starting"  # no keepalive yet, still within the start-up grace
    OK = "ok"  # a keepalive within the timeout
    MISSING = "missing"  # none within the timeout (or ever, after the grace)
    OFF = "off"  # not watched (an inverter that never sends 0x305)


class KeepaliveWatch:
    """Watch of the inverter keepalive.

    Before the first keepalive the inverter counts as starting for max(startup_grace,
    timeout) after `start`; after that it is missing when `timeout` passes without one.
    """

    def __init__(
        self,
        start: float,
        timeout: float = 10.0,
        startup_grace: float = 60.0,
        missing_as_warning: bool = False,
        enabled: bool = True,
    ) -> None:
        if timeout <= 0 or startup_grace < 0:
            raise ValueError(f"need timeout > 0 and startup_grace >= 0: {timeout}, {startup_grace}")
        self.timeout = timeout
        self.startup_grace = startup_grace
        self.missing_as_warning = missing_as_warning
        self.enabled = enabled
        self._start = start
        self._last: float | None = None

    @classmethod
    def from_settings(cls, settings: InverterSettings, start: float) -> KeepaliveWatch:
        """The watch configured by `settings`, started at `start`."""
        return cls(
            start,
            timeout=settings.keepalive_timeout,
            startup_grace=settings.startup_grace,
            missing_as_warning=settings.missing_as_warning,
            # No CAN output, no keepalive to expect (the inverter cannot know of us).
            enabled=settings.watch_keepalive and settings.enabled,
        )

    def on_keepalive(self, now: float) -> None:
        """A 0x305 frame arrived at `now`."""
        self._last = now

    def status(self, now: float) -> KeepaliveStatus:
        """Whether the inverter is there at `now`."""
        if not self.enabled:
            return KeepaliveStatus.OFF
        if self._last is None:
            self._start = min(self._start, now)
            if now - self._start < max(self.startup_grace, self.timeout):
                return KeepaliveStatus.STARTING
            return KeepaliveStatus.MISSING
        self._last = min(self._last, now)
        return KeepaliveStatus.OK if now - self._last < self.timeout else KeepaliveStatus.MISSING

    def alarms(self, now: float) -> dict[Alarm, Severity]:
        """{INVERTER_MISSING: severity} while the inverter is missing, else {}."""
        if self.status(now) is not KeepaliveStatus.MISSING:
            return {}
        severity = Severity.WARNING if self.missing_as_warning else Severity.ALARM
        return {Alarm.INVERTER_MISSING: severity}
