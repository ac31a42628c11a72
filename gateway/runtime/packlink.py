"""A commercial BMS behind a serial port (USB-RS485 or USB-UART adapter): the PackLink that
drives one protocol of gateway/sources/packs over pyserial, and open_link, the factory by
protocol name.

I/O: the port is opened non-blocking (pyserial timeout=0) and the event loop waits for it to
become readable (anyio.wait_readable on its file descriptor), then reads what is there. No
thread per port and no blocking call: a timeout is an ordinary anyio cancel scope, so every
wait is bounded and the link can be cancelled at any point. (pyserial-asyncio is not
available; a thread per read through anyio.to_thread would leave a blocked read running
after a timeout, holding the port.) POSIX only, as the gateway is.

RS485 is half-duplex: before each request the input is flushed (a late answer to an earlier
request, or our own echo on adapters that hear themselves, must not be taken for the answer)
and the framer forgets held bytes. Every request's answer must come within `timeout`.

A port that fails (the adapter unplugged: pyserial raises on read or write, or opening it
fails) is closed and reopened at the next read once its back-off has passed: 0.5 s, doubled
per failed attempt up to 30 s, reset by a successful open. Until then read() fails at once
with PackError, so the source sees the pack stale without waiting.
"""

from __future__ import annotations

import contextlib
import logging
import termios
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, NoReturn

import anyio
import serial  # type: ignore[import-untyped]  # pyserial ships no stubs

from gateway.record.counters import RateLimitedLog
from gateway.sources.packs import daly, jbd, jk, jk_modbus
from gateway.sources.packs.framing import Framer, PackProtocol, Poll
from gateway.sources.packs.reading import PackError, PackLink, PackReading

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 1.0  # s per request: a BMS answers in tens of ms, a JBD asleep not at all
REOPEN_MIN, REOPEN_MAX = 0.5, 30.0  # s

SerialFactory = Callable[..., Any]
# What pyserial raises when the adapter is gone (termios for tcflush on a hung-up tty).
PORT_ERRORS = (serial.SerialException, OSError, termios.error)


@dataclass
class PackLinkCounters:
    """What went wrong on one pack's line, as shown to the user."""

    readings: int = 0  # complete readings
    failed: int = 0  # reads or switches that raised PackError
    timeouts: int = 0  # requests without a complete answer in time
    skipped: int = 0  # bytes that could not start a frame (noise, echo, lost sync)
    bad_frames: int = 0  # frames with a wrong checksum or end byte
    reopens: int = 0  # times the port was opened again after failing

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class SerialPackLink:
    """One BMS on one serial port, speaking `protocol` (PackLink)."""

    def __init__(
        self,
        protocol: PackProtocol,
        port: str,
        *,
        baudrate: int,
        timeout: float = DEFAULT_TIMEOUT,
        reopen_min: float = REOPEN_MIN,
        reopen_max: float = REOPEN_MAX,
        clock: Callable[[], float] = time.monotonic,
        open_serial: SerialFactory = serial.Serial,
    ) -> None:
        self.protocol = protocol
        self.port = port
        self.baudrate = baudrate
        self.timeout = timeout
        self.name = f"{protocol.family} {port}"
        self.can_switch = protocol.can_switch
        self.counters = PackLinkCounters()
        self._framer: Framer = protocol.framer()
        self._frames: deque[bytes] = deque()
        self._serial: Any = None
        self._reopen_min, self._reopen_max = reopen_min, reopen_max
        self._backoff = reopen_min
        self._next_open = float("-inf")
        self._opened_before = False
        self._clock = clock
        self._open_serial = open_serial
        self._lock = anyio.Lock()
        self._log = RateLimitedLog(log)

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    @property
    def next_open(self) -> float:
        """Clock time from which a closed port is tried again."""
        return self._next_open

    async def read(self) -> PackReading:
        async with self._lock:
            reading: PackReading = await self._guarded(self._read)
            self.counters.readings += 1
            return reading

    async def switch(self, charge: bool, discharge: bool) -> None:
        """Send the MOSFET command, then read the states back: PackError unless both are as
        asked (a BMS holding a MOSFET off for a fault of its own refuses to switch it on)."""
        if not self.can_switch:
            raise PackError(f"{self.name}: this BMS protocol has no MOSFET command")
        async with self._lock:
            await self._guarded(
                lambda: self._exchange(self.protocol.switch_poll(charge, discharge))
            )
            reading: PackReading = await self._guarded(self._read)
        if (reading.charge_on, reading.discharge_on) != (charge, discharge):
            self.counters.failed += 1
            alarms = ", ".join(sorted(reading.alarms)) or "none"
            raise PackError(
                f"{self.name}: switch not confirmed: asked charge {_on(charge)} discharge "
                f"{_on(discharge)}, BMS reports charge {_on(reading.charge_on)} discharge "
                f"{_on(reading.discharge_on)} (alarms: {alarms})"
            )

    async def close(self) -> None:
        """Close the port (after a read in progress, which its timeout bounds)."""
        async with self._lock:
            self._close()

    # -- internals

    async def _guarded(self, action: Callable[[], Any]) -> Any:
        try:
            return await action()
        except PackError as exc:
            self.counters.failed += 1
            self._log.warning(self.name, self._clock(), "%s", exc)  # one line a minute a pack
            raise

    async def _read(self) -> PackReading:
        poll = self.protocol.poll()
        await self._exchange(poll)
        try:
            return poll.result()
        except PackError as exc:
            raise PackError(f"{self.name}: {exc}") from None

    async def _exchange(self, poll: Poll) -> None:
        port = self._port()
        while (request := poll.request()) is not None:
            try:
                port.reset_input_buffer()
                self._framer.clear()
                self._frames.clear()
                port.write(request)
            except PORT_ERRORS as exc:
                self._lost(exc)
            skipped, bad = self._framer.skipped, self._framer.bad
            try:
                with anyio.move_on_after(self.timeout):
                    while poll.waiting():
                        frame = await self._next_frame(port)
                        try:
                            poll.take(frame)
                        except PackError as exc:
                            raise PackError(f"{self.name}: {exc}") from None
            finally:
                self._count(skipped, bad)
            if poll.waiting():
                self.counters.timeouts += 1
                raise PackError(self._timeout_message(request, skipped, bad))

    async def _next_frame(self, port: Any) -> bytes:
        while not self._frames:
            await anyio.wait_readable(port.fileno())
            try:
                data = port.read(port.in_waiting or 1)
            except PORT_ERRORS as exc:
                self._lost(exc)
            self._frames.extend(self._framer.feed(data))
        return self._frames.popleft()

    def _count(self, skipped: int, bad: int) -> None:
        self.counters.skipped += self._framer.skipped - skipped
        self.counters.bad_frames += self._framer.bad - bad

    def _timeout_message(self, request: bytes, skipped: int, bad: int) -> str:
        parts = [f"{self.name}: no complete answer to {request[:6].hex(' ')} in {self.timeout} s"]
        if self._framer.pending:
            parts.append(f"{self._framer.pending} bytes of a truncated frame")
        if self._framer.bad > bad:
            parts.append(f"{self._framer.bad - bad} frame(s) with a wrong checksum")
        if self._framer.skipped > skipped:
            parts.append(f"{self._framer.skipped - skipped} garbage bytes")
        return ", ".join(parts)

    def _port(self) -> Any:
        if self._serial is not None:
            return self._serial
        now = self._clock()
        if now < self._next_open:
            raise PackError(
                f"{self.name}: port down, next attempt in {self._next_open - now:.1f} s"
            )
        try:
            self._serial = self._open_serial(
                self.port, self.baudrate, timeout=0, write_timeout=self.timeout
            )
        except (*PORT_ERRORS, ValueError) as exc:
            self._schedule_reopen()
            raise PackError(f"{self.name}: cannot open the port: {exc}") from None
        if self._opened_before:
            self.counters.reopens += 1
        self._opened_before = True
        self._backoff = self._reopen_min
        return self._serial

    def _schedule_reopen(self) -> None:
        self._next_open = self._clock() + self._backoff
        self._backoff = min(self._backoff * 2, self._reopen_max)

    def _lost(self, exc: BaseException) -> NoReturn:
        self._close()
        self._schedule_reopen()
        raise PackError(f"{self.name}: port lost: {exc}") from None

    def _close(self) -> None:
        port, self._serial = self._serial, None
        self._frames.clear()
        self._framer.clear()
        if port is not None:
            with contextlib.suppress(*PORT_ERRORS):  # already gone: nothing left to release
                port.close()


def _on(state: bool | None) -> str:
    return "unknown" if state is None else "on" if state else "off"


# protocol name -> (protocol for an address, default baud rate, what `address` means)
PROTOCOLS: dict[str, tuple[Callable[[int | None], PackProtocol], int, str]] = {
    "jbd": (lambda a: _no_address("jbd", a, jbd.Jbd()), jbd.BAUDRATE, "none (one BMS a port)"),
    "jk": (lambda a: jk.Jk(a or 0), jk.BAUDRATE, "terminal number, default 0"),
    "jk-modbus": (
        lambda a: jk_modbus.JkModbus(1 if a is None else a),
        jk_modbus.BAUDRATE,
        "Modbus device address (DIP switches), default 1",
    ),
    "daly": (
        lambda a: daly.Daly(a or 0),
        daly.BAUDRATE,
        "board number 0..15 (requests to 0x40 + board), default 0",
    ),
}


def _no_address(family: str, address: int | None, protocol: PackProtocol) -> PackProtocol:
    if address is not None:
        raise ValueError(f"{family} has no address: one BMS per port")
    return protocol


def open_link(
    protocol: str,
    port: str,
    *,
    address: int | None = None,
    baudrate: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    clock: Callable[[], float] = time.monotonic,
) -> PackLink:
    """The link to one BMS: protocol "jbd" (9600 baud), "jk" (JK RS485 0x4E57, 115200),
    "jk-modbus" (JK-PB Modbus RTU, 115200) or "daly" (9600); address as PROTOCOLS says;
    baudrate defaults to the protocol document's. The port is opened at the first read, so
    an adapter missing at start-up is retried with back-off like one that disappears.
    ValueError for an unknown protocol or an address the protocol cannot use."""
    try:
        make, default_baud, _ = PROTOCOLS[protocol]
    except KeyError:
        raise ValueError(
            f"unknown BMS protocol {protocol!r}; known: {', '.join(sorted(PROTOCOLS))}"
        ) from None
    return SerialPackLink(
        make(address), port, baudrate=baudrate or default_baud, timeout=timeout, clock=clock
    )
