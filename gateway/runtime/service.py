"""The running gateway: python-can buses, the tick loop, persistence and the web page in one
anyio task group around the synchronous GatewayCore.

Frames are handed to the core in the event loop as they arrive; a frame that may change a
decision (a node state change, a cell beyond its alert bound) makes the core tick at once,
so a stop reaches the inverter within milliseconds instead of at the next period.
"""

from __future__ import annotations

import gc
import logging
import signal
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import can

from gateway.config.root import Settings
from gateway.contracts.frame import Frame
from gateway.core import GatewayCore, Outbox
from gateway.outputs import Output
from gateway.record.events import EventKind
from gateway.record.persist import StateStore
from gateway.runtime.canport import BusFactory, GatewayCanPort
from gateway.runtime.outputs import OutputFeed
from gateway.runtime.packs import LinkFactory, PackPoller, default_links
from gateway.sources.packs.reading import PackError, PackReading

log = logging.getLogger(__name__)

Clock = Callable[[], float]
WebServer = Callable[["Gateway"], Coroutine[Any, Any, Any]]


class MonotonicClock:
    """The gateway's clock: time.monotonic(), shifted so that at start it reads Unix time.

    Every age, timeout and rate limit of the core runs on it, so a step of the wall clock
    (NTP, an RTC fix on a Pi) changes none of them. Because it starts at Unix time, the times
    in the state file (the last full charge) stay comparable across restarts; one saved
    "in the future" after the wall clock went back is clamped by the controller. For
    display, `wall_offset()` turns a time of this clock into the wall clock's reading.
    """

    def __init__(self, monotonic: Clock | None = None, wall: Clock | None = None) -> None:
        # Looked up at construction, not at import: tests replace time.time/time.monotonic.
        self._monotonic = monotonic if monotonic is not None else time.monotonic
        self._wall = wall if wall is not None else time.time
        self._offset = self._wall() - self._monotonic()

    def __call__(self) -> float:
        return self._monotonic() + self._offset

    def wall_offset(self) -> float:
        """Seconds to add to a time of this clock to show it as the wall clock reads now."""
        return self._wall() - self()


class Gateway:
    """GatewayCore wired to real buses and a real clock."""

    def __init__(
        self,
        settings: Settings,
        *,
        config_path: Path | None = None,
        open_bus: BusFactory = can.Bus,
        clock: Clock | None = None,
        outputs: Sequence[Output] = (),
        pack_links: Mapping[str, LinkFactory] | None = None,
    ) -> None:
        """`pack_links`: the commercial packs' link factories by source name (None: every
        one this installation has, gateway/runtime/packs.py default_links)."""
        self.settings = settings
        self.config_path = config_path  # where the settings came from (the web page saves here)
        # Monotonic: the wall clock is for display only (see MonotonicClock).
        self.clock: Clock = clock if clock is not None else MonotonicClock()
        self.store = StateStore(settings.persistence.state_file)
        self.core = GatewayCore(settings, self.clock(), self.store.load())
        buses = settings.buses
        self.battery = GatewayCanPort(
            "battery",
            buses.battery.bus_kwargs(),
            self.core.battery_counters,
            reconnect_min=buses.reconnect_min_s,
            reconnect_max=buses.reconnect_max_s,
            open_bus=open_bus,
        )
        self.inverter = self.battery
        if buses.inverter is not None:
            self.inverter = GatewayCanPort(
                "inverter",
                buses.inverter.bus_kwargs(),
                self.core.inverter_counters,
                reconnect_min=buses.reconnect_min_s,
                reconnect_max=buses.reconnect_max_s,
                open_bus=open_bus,
            )
        # Commercial packs (battery.packs): a polling task per pack.
        self.packs: PackPoller | None = None
        if settings.battery.packs:
            self.packs = PackPoller(
                settings.battery.packs,
                default_links() if pack_links is None else pack_links,
                self.on_pack_reading,
                self.clock,
            )
        self.urgent_ticks = 0
        # Outputs beside the inverter's CAN frames (D-Bus, MQTT): told after every tick.
        self.outputs: list[Output] = list(outputs)
        self._feed = OutputFeed(self.outputs)

    def wall_offset(self) -> float:
        """Seconds to add to a time of the gateway's clock to show it as wall time."""
        if isinstance(self.clock, MonotonicClock):
            return self.clock.wall_offset()
        return 0.0

    # ------------------------------------------------------------------ frames

    def on_battery_batch(self, batch: list[Frame]) -> None:
        """Frames into the core in bus order. The first one that may change a decision
        ticks at once, before the rest of the batch: that tick sees every frame up to it,
        as if the batch had ended there, and the stop does not wait for the frames behind
        it (a batch grows while the reader thread is held up, and those frames keep
        coming). A later urgent frame of the same batch ticks once more at its end."""
        now = self.clock()
        core = self.core
        ticked = again = False
        for frame in batch:
            if not core.on_battery_frame(frame, now):
                continue
            if ticked:
                again = True
            else:
                ticked = True
                self.urgent_ticks += 1
                self.tick()
        if again:
            self.urgent_ticks += 1
            self.tick()

    def on_pack_reading(self, pack: int, result: PackReading | PackError, now: float) -> None:
        """A commercial pack's poll: into the core; a cut-off or an alarm ticks at once."""
        if self.core.on_pack_reading(pack, result, now):
            self.urgent_ticks += 1
            self.tick()

    def on_inverter_batch(self, batch: list[Frame]) -> None:
        now = self.clock()
        asked = False
        for frame in batch:
            asked |= self.core.on_inverter_frame(frame, now)
        if asked:  # a polling inverter (Pylontech HV) waits for the answer
            self.tick()

    def tick(self) -> Outbox:
        out = self.core.tick(self.clock())
        self.send(out)
        self.publish()
        return out

    def publish(self) -> None:
        """Hand the tick's result to every output (they neither block nor raise)."""
        self._feed.publish(self.core)

    def send(self, out: Outbox) -> None:
        # The inverter's frames first: after an urgent tick they carry the stop.
        for frame in out.inverter:
            self.inverter.send(frame)
        for frame in out.battery:
            self.battery.send(frame)
        if self.packs is not None:
            self.packs.request(out.packs)

    # ------------------------------------------------------------------ loops

    async def tick_loop(self) -> None:
        period = self.settings.timing.tick_s
        next_at = anyio.current_time()
        while True:
            self.tick()
            next_at += period
            delay = next_at - anyio.current_time()
            if delay < -period:  # fell behind (suspended?): do not try to catch up
                next_at = anyio.current_time()
                delay = 0
            await anyio.sleep(max(delay, 0))

    async def save(self) -> bool:
        """Write the state; never raises: a failed save is logged, shown as an event and
        retried at the next interval (a full disk must not stop the battery)."""
        try:
            state = self.core.persistent_state()
            ok = await anyio.to_thread.run_sync(self.store.save, state)
        except Exception as exc:  # a bug in the state must not take the gateway down
            log.exception("state not saved")
            self.store.failures += 1
            self.store.last_error = f"{type(exc).__name__}: {exc}"
            ok = False
        if not ok:
            self.core.events.add(
                self.clock(), EventKind.PERSIST, f"state not saved: {self.store.last_error}"
            )
        return ok

    async def persist_loop(self) -> None:
        while True:
            await anyio.sleep(self.settings.persistence.interval_s)
            await self.save()

    def say_stopping(self) -> None:
        """Send the STOPPING heartbeat (once) where the battery bus is open."""
        frame = self.core.stopping()
        if frame is not None:
            self.battery.send(frame)

    async def stop(self) -> None:
        """Save the state and tell the nodes the gateway is going away."""
        with anyio.CancelScope(shield=True):
            self.say_stopping()
            await self.save()
            log.info("state saved to %s", self.store.path)

    async def run(self, web: WebServer | None = None, extra: Sequence[Any] = ()) -> None:
        """Run until cancelled or SIGINT/SIGTERM; the state is saved on the way out."""
        log.info(
            "gateway: %s; %s",
            self.battery.describe(),
            "same bus for the inverter"
            if self.inverter is self.battery
            else self.inverter.describe(),
        )
        # What exists now (modules, codecs, settings, the core) lives as long as the
        # gateway: out of the garbage collector's sight, a full collection looks only at
        # what came later. It holds the interpreter meanwhile, and a stop with it: 17 to
        # 18 ms for the 4 x 16 benchmark system, 0.02 to 0.3 ms frozen (docs/performance.md).
        gc.freeze()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.battery.run, self.on_battery_batch)
                if self.inverter is not self.battery:
                    tg.start_soon(self.inverter.run, self.on_inverter_batch)
                tg.start_soon(self.tick_loop)
                if self.packs is not None:
                    tg.start_soon(self.packs.run)
                tg.start_soon(self.persist_loop)
                tg.start_soon(self._signals, tg.cancel_scope)
                if web is not None:
                    tg.start_soon(web, self)
                for output in self.outputs:
                    tg.start_soon(output.run)
                for task in extra:
                    tg.start_soon(task)
        finally:
            await self.stop()
            gc.unfreeze()

    async def _signals(self, scope: anyio.CancelScope) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log.info("received %s: stopping", signal.Signals(signum).name)
                # While the bus is still open: tell the nodes the gateway is going away.
                self.say_stopping()
                scope.cancel()
                return
