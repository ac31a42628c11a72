"""A python-can bus that stays up: opened the python-can way, reopened with back-off when the
adapter disappears or goes bus-off, counted.

Receiving runs in a reader thread (python-can's recv blocks) that hands frames to the event
loop in batches; sending never blocks the caller: a frame the adapter refuses is counted and
dropped, because the next period sends fresh values anyway.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import can

from gateway.contracts.frame import Frame
from gateway.record.counters import BusCounters, RateLimitedLog

log = logging.getLogger(__name__)

# SocketCAN error frames carry the error class in the identifier (linux/can/error.h).
CAN_ERR_BUSOFF = 0x40
CAN_ERR_RESTARTED = 0x100
MAX_BATCH = 256

BusFactory = Callable[..., can.BusABC]
Deliver = Callable[[list[Frame]], None]


def frame_of(msg: can.Message) -> Frame:
    """python-can's Message as the gateway's Frame."""
    return Frame(
        msg.arbitration_id,
        bytes(msg.data),
        msg.is_extended_id,
        msg.is_remote_frame,
        msg.is_error_frame,
    )


class GatewayCanPort:
    """One of the gateway's CAN buses, with reconnect, counters and a non-blocking send."""

    def __init__(
        self,
        name: str,
        bus_kwargs: dict[str, Any],
        counters: BusCounters,
        *,
        reconnect_min: float = 1.0,
        reconnect_max: float = 30.0,
        open_bus: BusFactory = can.Bus,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.bus_kwargs = bus_kwargs
        self.counters = counters
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.open_bus = open_bus
        self.clock = clock
        self.bus: can.BusABC | None = None
        self.last_error = ""
        self.bus_off = 0
        self._log = RateLimitedLog(log, 60.0)
        self._failed: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def connected(self) -> bool:
        return self.bus is not None

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.bus_kwargs.items()]
        return f"{self.name} bus ({', '.join(parts) or 'python-can defaults'})"

    def send(self, frame: Frame) -> bool:
        """Queue one frame without blocking. False when it was not sent."""
        bus = self.bus
        if bus is None:
            self.counters.send_failed += 1
            return False
        msg = can.Message(arbitration_id=frame.id, data=frame.data, is_extended_id=frame.extended)
        try:
            bus.send(msg, timeout=0)
        except can.CanOperationError as exc:
            # Queue full or a transient controller error: drop this frame, keep the bus.
            self.counters.send_failed += 1
            self._log.warning(
                ("send", type(exc)), self.clock(), "%s: send failed: %s", self.describe(), exc
            )
            return False
        except (can.CanError, OSError, ValueError) as exc:
            self.counters.send_failed += 1
            self._broken(exc)
            return False
        self.counters.sent += 1
        return True

    async def run(self, deliver: Deliver) -> None:
        """Keep the bus open and hand every received batch of frames to `deliver`, in the
        event loop. Runs until cancelled."""
        backoff = self.reconnect_min
        self._loop = asyncio.get_running_loop()
        while True:
            try:
                bus = self.open_bus(**self.bus_kwargs)
            except (can.CanError, OSError, ValueError, ImportError) as exc:
                self.last_error = str(exc)
                self._log.warning(
                    ("open",), self.clock(), "%s: cannot open: %s (retrying)", self.describe(), exc
                )
                await anyio.sleep(backoff)
                backoff = min(backoff * 2, self.reconnect_max)
                continue
            log.info("%s: open", self.describe())
            self.bus = bus
            self._failed = asyncio.Event()
            stop = threading.Event()
            reader = threading.Thread(
                target=self._read, args=(bus, deliver, stop), name=f"can-{self.name}", daemon=True
            )
            reader.start()
            opened_at = self.clock()
            try:
                await self._failed.wait()
            finally:
                stop.set()
                self.bus = None
                # Shielded: when the gateway stops (cancelled), the adapter must still be
                # released, after the reader has let go of it.
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(reader.join, 1.0, abandon_on_cancel=True)
                try:
                    bus.shutdown()
                except (can.CanError, OSError) as exc:
                    log.debug("%s: shutdown: %s", self.describe(), exc)
            self.counters.reconnects += 1
            # A bus that held for a while starts the back-off afresh.
            if self.clock() - opened_at > self.reconnect_max:
                backoff = self.reconnect_min
            await anyio.sleep(backoff)
            backoff = min(backoff * 2, self.reconnect_max)

    def _broken(self, exc: BaseException) -> None:
        """Mark the bus failed (from any thread): run() reopens it."""
        self.last_error = str(exc)
        loop, failed = self._loop, self._failed
        if loop is None or failed is None:
            return
        self._log.warning(
            ("broken", type(exc)), self.clock(), "%s failed: %s (reopening)", self.describe(), exc
        )
        loop.call_soon_threadsafe(failed.set)

    def _read(self, bus: can.BusABC, deliver: Deliver, stop: threading.Event) -> None:
        loop = self._loop
        assert loop is not None
        while not stop.is_set():
            try:
                msg = bus.recv(timeout=0.1)
                if msg is None:
                    continue
                batch = [msg]
                while len(batch) < MAX_BATCH:
                    more = bus.recv(timeout=0)
                    if more is None:
                        break
                    batch.append(more)
            except (can.CanError, OSError, ValueError) as exc:
                self._broken(exc)
                return
            frames = [frame_of(m) for m in batch]
            if any(f.error and f.id & CAN_ERR_BUSOFF for f in frames):
                self.bus_off += 1
                self._broken(can.CanOperationError("bus-off"))
                loop.call_soon_threadsafe(deliver, frames)
                return
            loop.call_soon_threadsafe(deliver, frames)
