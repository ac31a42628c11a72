"""The commercial packs' I/O: a task per pack that polls its link, hands each reading (or why
there is none) to the core with the gateway's monotonic clock, and carries out the switch
requests the core returns.

A link is anything implementing PackLink (gateway/sources/packs/reading.py). Which link a
pack gets is looked up by its `source` in a dict of factories (`LinkFactory`): this module
knows "pylontech-can"; the serial protocols ("jbd", "jk", "jk-modbus", "daly": the config's
names are open_link's) come from gateway/runtime/packlink.py's `open_link(protocol, port, *,
address, baudrate, timeout)` through `serial_links(open_link)`; `default_links()` has both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import anyio

from gateway.record.counters import RateLimitedLog
from gateway.runtime.packlink import open_link
from gateway.runtime.pylontech_link import BusFactory, PylontechCanLink
from gateway.sources.packs.reading import PackError, PackLink, PackReading
from gateway.sources.packs.settings import SERIAL_SOURCES, PackSettings
from gateway.sources.packs.source import PackSwitch

log = logging.getLogger(__name__)

# pack settings -> its link (not yet connected: a link opens its port on first use).
LinkFactory = Callable[[PackSettings], PackLink]
Clock = Callable[[], float]
# (pack id, its poll's result, the gateway's clock) -> the core.
Deliver = Callable[[int, PackReading | PackError, float], None]


def pylontech_link(open_bus: BusFactory | None = None) -> LinkFactory:
    """The factory of Pylontech CAN links (`open_bus`: python-can's can.Bus, or a test's)."""

    def make(cfg: PackSettings) -> PackLink:
        assert cfg.bus is not None  # PackSettings requires it for this source
        extra: dict[str, Any] = {} if open_bus is None else {"open_bus": open_bus}
        return PylontechCanLink(
            cfg.bus.bus_kwargs(),
            id_offset=cfg.id_offset,
            keepalive=cfg.keepalive,
            max_age=cfg.timeout_s,
            **extra,
        )

    return make


def serial_links(open_link: Callable[..., PackLink]) -> dict[str, LinkFactory]:
    """Factories for the serial protocols from the serial runtime's
    `open_link(protocol, port, *, address=None, baudrate=None, timeout=...)`."""

    def factory(protocol: str) -> LinkFactory:
        def make(cfg: PackSettings) -> PackLink:
            return open_link(
                protocol,
                cfg.port,
                address=cfg.address,
                baudrate=cfg.baudrate,
                timeout=min(1.0, cfg.poll_s),
            )

        return make

    return {protocol: factory(protocol) for protocol in SERIAL_SOURCES}


def default_links() -> dict[str, LinkFactory]:
    """Every link this installation has: Pylontech CAN and the serial protocols."""
    return {"pylontech-can": pylontech_link(), **serial_links(open_link)}


class PackPoller:
    """A task per configured pack: poll, deliver, switch."""

    def __init__(
        self,
        packs: Mapping[int, PackSettings],
        links: Mapping[str, LinkFactory],
        deliver: Deliver,
        clock: Clock,
    ) -> None:
        """`deliver(pack, result, now)` hands a poll's result to the core (and ticks when it
        is urgent); `clock` is the core's monotonic clock. ValueError naming the pack when
        its source has no link here."""
        missing = {p: cfg.source for p, cfg in packs.items() if cfg.source not in links}
        if missing:
            raise ValueError(
                "no link for "
                + ", ".join(f"battery.packs.{p} ({s})" for p, s in sorted(missing.items()))
                + f": this installation has {', '.join(sorted(links))}"
            )
        self.settings = dict(packs)
        self.links: dict[int, PackLink] = {p: links[cfg.source](cfg) for p, cfg in packs.items()}
        self.deliver = deliver
        self.clock = clock
        self._pending: dict[int, PackSwitch] = {}
        self.readings = 0
        self.errors = 0
        self.switches = 0
        self._log = RateLimitedLog(log, 60.0)

    def request(self, switches: list[PackSwitch]) -> None:
        """The core's switch requests: each pack's task carries out its newest one before
        its next read."""
        for switch in switches:
            self._pending[switch.pack] = switch

    async def run(self) -> None:
        """Poll every pack until cancelled; the links are closed on the way out."""
        try:
            async with anyio.create_task_group() as tg:
                for pack in self.links:
                    tg.start_soon(self.poll_loop, pack)
        finally:
            with anyio.CancelScope(shield=True):
                for link in self.links.values():
                    try:
                        await link.close()
                    except PackError as exc:
                        log.warning("%s: %s", link.name, exc)

    async def poll_loop(self, pack: int) -> None:
        period = self.settings[pack].poll_s
        next_at = anyio.current_time()
        while True:
            await self.poll_once(pack)
            next_at += period
            delay = next_at - anyio.current_time()
            if delay < -period:  # fell behind: do not try to catch up
                next_at = anyio.current_time()
                delay = 0
            await anyio.sleep(max(delay, 0))

    async def poll_once(self, pack: int) -> None:
        """Carry out the pack's pending switch request, then read it and deliver."""
        link, cfg = self.links[pack], self.settings[pack]
        switch = self._pending.pop(pack, None)
        if switch is not None:
            await self._switch(pack, link, switch, cfg.timeout_s)
        result: PackReading | PackError
        try:
            with anyio.fail_after(cfg.timeout_s):
                result = await link.read()
            self.readings += 1
        except PackError as exc:
            result = exc
        except TimeoutError:
            result = PackError(f"{link.name}: no answer within {cfg.timeout_s} s")
        if isinstance(result, PackError):
            self.errors += 1
            self._log.warning(("read", pack), self.clock(), "pack %d: %s", pack, result)
        self.deliver(pack, result, self.clock())

    async def _switch(self, pack: int, link: PackLink, switch: PackSwitch, bound: float) -> None:
        what = f"charge {_on(switch.charge)}, discharge {_on(switch.discharge)}"
        key, now = ("switch", pack), self.clock()
        if not link.can_switch:
            self._log.warning(key, now, "pack %d: %s cannot switch (%s)", pack, link.name, what)
            return
        try:
            with anyio.fail_after(bound):
                await link.switch(switch.charge, switch.discharge)
            self.switches += 1
            log.info("pack %d: %s (%s)", pack, what, switch.reason)
        except (PackError, TimeoutError) as exc:
            self._log.warning(key, now, "pack %d: %s failed: %s", pack, what, exc)


def _on(flag: bool) -> str:
    return "on" if flag else "off"
