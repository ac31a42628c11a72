"""A register-level model of the MCP2515 behind an SPI bus, for testing the driver.

It decodes the SPI instructions of the datasheet (RESET 0xC0, READ 0x03, WRITE 0x02,
BIT MODIFY 0x05, READ STATUS 0xA0, RTS 0x8n, READ RX BUFFER 0x90..0x96, LOAD TX BUFFER
0x40..0x45) one chip-select window at a time, keeps the 128 registers, enforces what the
chip enforces (bit timing, filters and masks are writable in configuration mode only; BIT
MODIFY works on a subset of registers), transmits on RTS, and accepts frames from the
bus through the masks and filters into RXB0 / RXB1 with roll-over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CANSTAT, CANCTRL, EFLG, CANINTF = 0x0E, 0x0F, 0x2D, 0x2C
CNF3, CNF2, CNF1 = 0x28, 0x29, 0x2A
TXB_CTRL = (0x30, 0x40, 0x50)
RXB_CTRL = (0x60, 0x70)
FILTERS = (0x00, 0x04, 0x08, 0x10, 0x14, 0x18)
MASKS = (0x20, 0x24)
TXREQ = 0x08
MODE_CONFIG, MODE_NORMAL, MODE_LOOPBACK = 0x80, 0x00, 0x40
CONFIG_ONLY = {CNF1, CNF2, CNF3, *range(0x00, 0x0C), *range(0x10, 0x1C), *range(0x20, 0x28)}
BIT_MODIFIABLE = {CANCTRL, CNF1, CNF2, CNF3, 0x2B, CANINTF, EFLG, 0x0C, 0x0D, *TXB_CTRL, *RXB_CTRL}


@dataclass
class Sent:
    can_id: int
    ext: bool
    rtr: bool
    data: bytes


class FakePin:
    """The chip-select pin (active low)."""

    def __init__(self, chip: FakeMcp2515) -> None:
        self.chip = chip
        self.level = 1

    def value(self, v: int | None = None) -> int:
        if v is None:
            return self.level
        if self.level == 1 and v == 0:
            self.chip.begin()
        elif self.level == 0 and v == 1:
            self.chip.end()
        self.level = v
        return v


class FakeIntPin:
    """The chip's INT output on a machine.Pin input with an IRQ handler."""

    IRQ_FALLING = 4

    def __init__(self, chip: FakeMcp2515) -> None:
        self.chip = chip
        chip.int_pin = self
        self.handler: Any = None
        self.interrupts = 0

    def irq(self, handler: Any = None, trigger: int = 0) -> None:
        assert trigger == self.IRQ_FALLING
        self.handler = handler

    def fall(self) -> None:
        self.interrupts += 1
        if self.handler is not None:
            self.handler(self)


class FakeSpi:
    """machine.SPI: write, readinto, write_readinto (only while selected)."""

    def __init__(self, chip: FakeMcp2515) -> None:
        self.chip = chip

    def write(self, buf: bytes | bytearray) -> None:
        self.chip.exchange(bytes(buf))

    def write_readinto(self, out: bytes | bytearray, into: bytearray) -> None:
        assert len(out) == len(into)
        into[:] = self.chip.exchange(bytes(out))


class FakeMcp2515:
    def __init__(self) -> None:
        self.regs = bytearray(128)
        self.cs = FakePin(self)
        self.spi = FakeSpi(self)
        self.sent: list[Sent] = []
        self.hold_tx = False  # keep transmit requests pending (a busy bus)
        self.instructions: list[int] = []
        self.errors: list[str] = []  # writes the real chip would ignore or refuse
        self.resets = 0
        self._tx = b""
        self._selected = False
        self._rx_read: int | None = None
        self.int_pin: FakeIntPin | None = None
        self.power_on()

    # ---- chip state ----

    def power_on(self) -> None:
        """Register values after reset (a brown-out does the same)."""
        self.regs[:] = bytes(128)
        self.regs[CANSTAT] = MODE_CONFIG
        self.regs[CANCTRL] = 0x87

    @property
    def mode(self) -> int:
        return self.regs[CANSTAT] & 0xE0

    def _write(self, addr: int, value: int) -> None:
        if addr in CONFIG_ONLY and self.mode != MODE_CONFIG:
            self.errors.append(f"write 0x{addr:02X} outside configuration mode")
            return
        if addr == CANSTAT:
            return
        self.regs[addr] = value
        if addr == CANCTRL:
            self.regs[CANSTAT] = (self.regs[CANSTAT] & 0x1F) | (value & 0xE0)

    def _status(self) -> int:
        intf = self.regs[CANINTF]
        status = intf & 0x03
        for n, bit in enumerate((0x04, 0x10, 0x40)):
            if self.regs[TXB_CTRL[n]] & TXREQ:
                status |= bit
        status |= (intf >> 2 & 1) << 3 | (intf >> 3 & 1) << 5 | (intf >> 4 & 1) << 7
        return status

    # ---- SPI ----

    def begin(self) -> None:
        self._selected = True
        self._tx = b""

    def exchange(self, out: bytes) -> bytes:
        assert self._selected, "SPI transfer without chip select"
        start = len(self._tx)
        self._tx += out
        return self._respond(self._tx)[start : start + len(out)]

    def end(self) -> None:
        self._selected = False
        tx = self._tx
        if not tx:
            return
        op = tx[0]
        self.instructions.append(op)
        if op == 0xC0:
            self.resets += 1
            self.power_on()
        elif op == 0x02:
            for i, value in enumerate(tx[2:]):
                self._write(tx[1] + i, value)
        elif op == 0x05:
            addr, mask, value = tx[1], tx[2], tx[3]
            if addr not in BIT_MODIFIABLE:
                self.errors.append(f"bit modify of 0x{addr:02X}")
            elif addr == EFLG:
                mask &= 0xC0  # only the overflow flags can be cleared
                self.regs[EFLG] = (self.regs[EFLG] & ~mask) | (value & mask)
            else:
                self._write(addr, (self.regs[addr] & ~mask) | (value & mask))
        elif op & 0xF8 == 0x40:
            base = (0x31, 0x36, 0x41, 0x46, 0x51, 0x56)[op & 0x07]
            for i, value in enumerate(tx[1:]):
                self.regs[base + i] = value
        elif op & 0xF8 == 0x80:
            for n in range(3):
                if op & (1 << n):
                    self.regs[TXB_CTRL[n]] |= TXREQ
            self._transmit()
        elif op & 0xF9 == 0x90:
            n = (op >> 2) & 1
            self.regs[CANINTF] &= ~(1 << n)

    def _respond(self, tx: bytes) -> bytes:
        op = tx[0]
        out = bytearray(len(tx))
        if op == 0x03 and len(tx) > 2:
            for i in range(2, len(tx)):
                out[i] = self.regs[(tx[1] + i - 2) & 0x7F]
        elif op == 0xA0:
            for i in range(1, len(tx)):
                out[i] = self._status()
        elif op & 0xF9 == 0x90:
            n = (op >> 2) & 1
            start = (0x61 if op & 0x02 == 0 else 0x66) + 0x10 * n
            for i in range(1, len(tx)):
                out[i] = self.regs[start + i - 1]
        return bytes(out)

    # ---- the bus ----

    def _transmit(self) -> None:
        if self.hold_tx or self.mode not in (MODE_NORMAL, MODE_LOOPBACK):
            return
        # The highest TXP priority first; among equal priorities the highest buffer number
        # (datasheet 3.2).
        order = sorted((2, 1, 0), key=lambda n: -(self.regs[TXB_CTRL[n]] & 0x03) * 4 - n)
        for n in order:
            ctrl = TXB_CTRL[n]
            if not self.regs[ctrl] & TXREQ:
                continue
            base = ctrl + 1
            sidh, sidl, eid8, eid0, dlc = self.regs[base : base + 5]
            ext = bool(sidl & 0x08)
            can_id = sidh << 3 | sidl >> 5
            if ext:
                can_id = can_id << 18 | (sidl & 3) << 16 | eid8 << 8 | eid0
            length = dlc & 0x0F
            data = bytes(self.regs[base + 5 : base + 5 + min(length, 8)])
            self.sent.append(Sent(can_id, ext, bool(dlc & 0x40), data))
            self.regs[ctrl] &= ~TXREQ
            self.regs[CANINTF] |= 0x04 << n

    def release_tx(self) -> None:
        """The bus frees up: pending transmit requests go out."""
        self.hold_tx = False
        self._transmit()

    def _field(self, addr: int) -> int:
        sidh, sidl, eid8, eid0 = self.regs[addr : addr + 4]
        return (sidh << 3 | sidl >> 5) << 18 | (sidl & 3) << 16 | eid8 << 8 | eid0

    def _accepts(self, buffer: int, can_id: int, ext: bool) -> bool:
        if self.regs[RXB_CTRL[buffer]] & 0x60 == 0x60:
            return True
        mask = self._field(MASKS[buffer])
        wire = can_id if ext else can_id << 18
        for f in (FILTERS[:2], FILTERS[2:])[buffer]:
            filter_ext = bool(self.regs[f + 1] & 0x08)
            if filter_ext != ext:
                continue
            bits = mask if ext else mask & ~0x3FFFF  # standard frames compare the SID only
            if (wire ^ self._field(f)) & bits == 0:
                return True
        return False

    def deliver(self, can_id: int, data: bytes, ext: bool = False, rtr: bool = False) -> bool:
        """A frame on the bus; True if it landed in a receive buffer. With CANINTE's receive
        bits set and an INT pin attached, the pin falls and its handler runs."""
        landed = self._deliver(can_id, data, ext, rtr)
        if landed and self.regs[0x2B] & 0x03 and self.int_pin is not None:
            self.int_pin.fall()
        return landed

    def _deliver(self, can_id: int, data: bytes, ext: bool, rtr: bool) -> bool:
        if self.mode not in (MODE_NORMAL, MODE_LOOPBACK):
            return False
        target = None
        if self._accepts(0, can_id, ext):
            if not self.regs[CANINTF] & 0x01:
                target = 0
            elif self.regs[RXB_CTRL[0]] & 0x04 and not self.regs[CANINTF] & 0x02:
                target = 1  # roll-over
            else:
                self.regs[EFLG] |= 0x40
                return False
        elif self._accepts(1, can_id, ext):
            if self.regs[CANINTF] & 0x02:
                self.regs[EFLG] |= 0x80
                return False
            target = 1
        if target is None:
            return False
        base = 0x61 + 0x10 * target
        if ext:
            self.regs[base] = (can_id >> 21) & 0xFF
            self.regs[base + 1] = ((can_id >> 18) & 7) << 5 | 0x08 | (can_id >> 16) & 3
            self.regs[base + 2] = (can_id >> 8) & 0xFF
            self.regs[base + 3] = can_id & 0xFF
            self.regs[base + 4] = len(data) | (0x40 if rtr else 0)
        else:
            self.regs[base] = can_id >> 3
            self.regs[base + 1] = (can_id & 7) << 5 | (0x10 if rtr else 0)
            self.regs[base + 2] = 0
            self.regs[base + 3] = 0
            self.regs[base + 4] = len(data)
        self.regs[base + 5 : base + 5 + len(data)] = data
        self.regs[CANINTF] |= 1 << target
        return True
