"""A Pylontech LV CAN battery on its python-can bus, as a PackLink.

The bus is opened the python-can way (`battery.packs.<id>.bus`) and reopened with back-off
when it fails. Each read takes the frames that arrived since the last one (without
blocking: python-can queues them), answers the battery with the inverter's 0x305 keepalive
and returns what the frames say (gateway/sources/packs/pylontech_can.py). A battery switches
its own charge and discharge: it takes no commands.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import can

from gateway.contracts.frame import Frame
from gateway.record.counters import RateLimitedLog
from gateway.runtime.canport import frame_of
from gateway.sources.packs.pylontech_can import PylontechCanBattery
from gateway.sources.packs.reading import PackError, PackReading

log = logging.getLogger(__name__)

BusFactory = Callable[..., can.BusABC]
# More frames than this per read are not taken (a flooded bus must not hold the loop).
MAX_FRAMES_PER_READ = 1000


class PylontechCanLink:
    """One Pylontech-speaking battery at an id offset on one CAN bus."""

    can_switch = False

    def __init__(
        self,
        bus_kwargs: dict[str, Any],
        *,
        id_offset: int = 0,
        keepalive: bool = True,
        max_age: float = 5.0,
        reconnect_min: float = 1.0,
        reconnect_max: float = 30.0,
        open_bus: BusFactory = can.Bus,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = f"pylontech-can {bus_kwargs.get('channel')}" + (
            f" +0x{id_offset:X}" if id_offset else ""
        )
        self.bus_kwargs = bus_kwargs
        self.battery = PylontechCanBattery(id_offset, max_age)
        self.send_keepalive = keepalive
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.open_bus = open_bus
        self.clock = clock
        self.bus: can.BusABC | None = None
        self._retry_at = -float("inf")
        self._backoff = reconnect_min
        self._malformed_seen = 0
        self._log = RateLimitedLog(log, 60.0)

    def _open(self, now: float) -> can.BusABC:
        if self.bus is not None:
            return self.bus
        if now < self._retry_at:
            raise PackError(f"{self.name}: bus closed, reopening in {self._retry_at - now:.0f} s")
        try:
            self.bus = self.open_bus(**self.bus_kwargs)
        except (can.CanError, OSError, ValueError, ImportError) as exc:
            self._retry_at = now + self._backoff
            self._backoff = min(2 * self._backoff, self.reconnect_max)
            raise PackError(f"{self.name}: cannot open the bus: {exc}") from None
        self._backoff = self.reconnect_min
        return self.bus

    def _lost(self, now: float, exc: Exception) -> PackError:
        bus, self.bus = self.bus, None
        if bus is not None:
            with contextlib.suppress(can.CanError, OSError):  # it failed already
                bus.shutdown()
        self._retry_at = now + self._backoff
        return PackError(f"{self.name}: bus failed: {exc}")

    async def read(self) -> PackReading:
        now = self.clock()
        bus = self._open(now)
        battery = self.battery
        try:
            for _ in range(MAX_FRAMES_PER_READ):
                msg = bus.recv(0)
                if msg is None:
                    break
                battery.on_frame(frame_of(msg), now)
            if self.send_keepalive:
                frame: Frame = battery.keepalive()
                msg = can.Message(arbitration_id=frame.id, data=frame.data, is_extended_id=False)
                bus.send(msg)
        except (can.CanError, OSError) as exc:
            raise self._lost(now, exc) from None
        if battery.malformed != self._malformed_seen:
            self._malformed_seen = battery.malformed
            self._log.warning(
                "malformed",
                now,
                "%s: %d malformed frames so far (%s)",
                self.name,
                battery.malformed,
                battery.last_malformed,
            )
        try:
            return battery.reading(now)
        except PackError as exc:
            raise PackError(f"{self.name}: {exc}") from None

    async def switch(self, charge: bool, discharge: bool) -> None:
        raise PackError(f"{self.name}: a Pylontech CAN battery takes no switch commands")

    async def close(self) -> None:
        bus, self.bus = self.bus, None
        if bus is not None:
            bus.shutdown()
