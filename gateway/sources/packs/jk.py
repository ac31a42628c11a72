"""JK BMS (JK-B... "BD/B2A" series): the 0x4E 0x57 ("NW") protocol of its GPS / RS485 port.

Follows JK's "BMS-RS485 communication protocol" (V2.5, the platform-to-BMS protocol of the
GPS port; table and captured frames in syssi/esphome-jk-bms
docs/protocol-design-uart-ttl-gps-port.md, PDF "Communication protocol between monitoring
platform and BMS.pdf" in the same folder):

- 115200 baud 8N1 (since V20200325). Frame: 4E 57, length (2: every byte after the start,
  checksum included), terminal number (4), command (1: 0x02 write, 0x03 read one, 0x06 read
  all), frame source (1: 0 BMS, 3 PC), transport type (1: 0 request, 1 response), information
  field, record number (4), end mark 0x68, checksum (4: the high two bytes unused, the low two
  the sum of every byte from the start through the end mark).
- The information field is a list of identifier + value, each identifier with the fixed size
  of the document's table; 0x79 (cell voltages) is followed by a length byte, then 3 bytes a
  cell (number, mV).
- Temperatures 0x80 (power tube), 0x81 (box), 0x82 (battery): degC, values above 100 are
  negative (101 = -1). 0x84 current, 10 mA: with protocol version 0xC0 = 1 the top bit set
  means charging; before it, 10000 - value (10000 + 1000 = 10 A discharging).
- 0x8B warning bits, 0x8C status bits (bit 0 charge MOS on, bit 1 discharge MOS on), 0xAB and
  0xAC the charge and discharge MOS switches (write 0 off, 1 on), 0xAA the capacity setting and
  0xB9 the actual capacity (Ah).
"""

from __future__ import annotations

from gateway.sources.packs.framing import Framer, Poll, bits, need, u16
from gateway.sources.packs.reading import PackError, PackReading

BAUDRATE = 115200
STX = b"NW"  # 4E 57
END = 0x68
WRITE, READ_ALL = 0x02, 0x06
SOURCE_PC = 3
REQUEST = 0
CELLS = 0x79
CHARGE_SWITCH, DISCHARGE_SWITCH = 0xAB, 0xAC
HEADER = 11  # STX, length, terminal, command, source, transport
TRAILER = 9  # record number, end mark, checksum
MAX_LENGTH = 1024

# Value size of every identifier of the document's table (0x79 has its own length byte).
SIZES = {
    **{i: 2 for i in range(0x80, 0x85)},
    0x85: 1,
    0x86: 1,
    0x87: 2,
    0x89: 4,
    0x8A: 2,
    0x8B: 2,
    0x8C: 2,
    **{i: 2 for i in range(0x8E, 0x9D)},
    0x9D: 1,
    **{i: 2 for i in range(0x9E, 0xA9)},
    0xA9: 1,
    0xAA: 4,
    0xAB: 1,
    0xAC: 1,
    0xAD: 2,
    0xAE: 1,
    0xAF: 1,
    0xB0: 2,
    0xB1: 1,
    0xB2: 10,
    0xB3: 1,
    0xB4: 8,
    0xB5: 4,
    0xB6: 4,
    0xB7: 15,
    0xB8: 1,
    0xB9: 4,
    0xBA: 24,
    0xBB: 1,
    0xBC: 1,
    0xBD: 1,
    0xBE: 2,
    0xBF: 2,
    0xC0: 1,
}

WARNINGS = (
    "low capacity",
    "MOS tube over-temperature",
    "charging over-voltage",
    "discharge under-voltage",
    "battery over-temperature",
    "charging over-current",
    "discharge over-current",
    "cell voltage difference",
    "battery box over-temperature",
    "battery low temperature",
    "cell over-voltage",
    "cell under-voltage",
    "309_A protection",
    "309_B protection",
)


def checksum(body: bytes) -> int:
    return sum(body) & 0xFFFF


def frame(command: int, info: bytes, terminal: int = 0) -> bytes:
    """A request from the PC with this command and information field."""
    length = 2 + 4 + 3 + len(info) + TRAILER
    body = (
        STX
        + length.to_bytes(2, "big")
        + terminal.to_bytes(4, "big")
        + bytes((command, SOURCE_PC, REQUEST))
        + info
        + bytes(4)
        + bytes((END,))
    )
    return body + checksum(body).to_bytes(4, "big")


def read_all_request(terminal: int = 0) -> bytes:
    return frame(READ_ALL, b"\x00", terminal)


def switch_request(identifier: int, on: bool, terminal: int = 0) -> bytes:
    return frame(WRITE, bytes((identifier, 1 if on else 0)), terminal)


class JkFramer(Framer):
    START = STX

    def size(self, buf: bytearray) -> int:
        if len(buf) < 4:
            return 0
        length = u16(buf, 2)
        return length + 2 if HEADER + TRAILER - 2 <= length <= MAX_LENGTH else -1

    def verify(self, frame: bytes) -> bool:
        return frame[-5] == END and checksum(frame[:-4]) == u16(frame, len(frame) - 2)


def fields(info: bytes) -> dict[int, bytes]:
    """The identifier -> value pairs of an information field."""
    out: dict[int, bytes] = {}
    i = 0
    while i < len(info):
        ident = info[i]
        if ident == CELLS:
            need(info[i + 1 :], 1, "cell voltages 0x79")
            size = info[i + 1]
            value = info[i + 2 : i + 2 + size]
            i += 2 + size
        elif ident in SIZES:
            size = SIZES[ident]
            value = info[i + 1 : i + 1 + size]
            i += 1 + size
        else:
            raise PackError(f"unknown identifier 0x{ident:02X} at byte {i} of the data")
        if len(value) != size:
            raise PackError(f"identifier 0x{ident:02X} cut short: {len(value)} of {size} bytes")
        out[ident] = value
    return out


def temperature(raw: int) -> float:
    return float(raw if raw <= 100 else 100 - raw)


def parse(info: bytes) -> PackReading:
    """The information field of a read-all answer as a reading."""
    f = fields(info)
    for ident in (CELLS, 0x83, 0x84, 0x8C):
        if ident not in f:
            raise PackError(f"read-all answer lacks identifier 0x{ident:02X}")
    cells = f[CELLS]
    if len(cells) % 3:
        raise PackError(f"cell voltages 0x79: {len(cells)} bytes, not 3 per cell")
    raw = u16(f[0x84], 0)
    if f.get(0xC0, b"\x00")[0] >= 1:
        magnitude = (raw & 0x7FFF) / 100
        current = magnitude if raw & 0x8000 else -magnitude or 0.0  # no "-0.0 A"
    else:
        current = (10000 - raw) / 100
    status = u16(f[0x8C], 0)
    actual = int.from_bytes(f.get(0xB9, bytes(4)), "big")
    rated = int.from_bytes(f.get(0xAA, bytes(4)), "big")
    return PackReading(
        cells=tuple(u16(cells, i + 1) / 1000 for i in range(0, len(cells), 3)),
        temperatures=tuple(temperature(u16(f[t], 0)) for t in (0x80, 0x81, 0x82) if t in f),
        voltage=u16(f[0x83], 0) / 100,
        current=current,
        charge_on=bool(status & 1),
        discharge_on=bool(status & 2),
        alarms=bits(u16(f.get(0x8B, bytes(2)), 0), WARNINGS),
        capacity_ah=float(actual or rated) if actual or rated else None,
        soc=float(f[0x85][0]) if 0x85 in f else None,
        cycles=u16(f[0x87], 0) if 0x87 in f else None,
    )


def info_of(frame: bytes) -> bytes:
    return frame[HEADER : len(frame) - TRAILER]


class JkPoll(Poll):
    def __init__(self, terminal: int) -> None:
        super().__init__([read_all_request(terminal)])

    def check(self, step: int, frame: bytes) -> bool:
        return frame[8] == READ_ALL and frame[10] != REQUEST

    def result(self) -> PackReading:
        return parse(info_of(self.answers[0][0]))


class JkSwitchPoll(Poll):
    """Two writes (charge switch, discharge switch), each acknowledged by a write answer."""

    def __init__(self, terminal: int, charge: bool, discharge: bool) -> None:
        super().__init__(
            [
                switch_request(CHARGE_SWITCH, charge, terminal),
                switch_request(DISCHARGE_SWITCH, discharge, terminal),
            ]
        )

    def check(self, step: int, frame: bytes) -> bool:
        return frame[8] == WRITE and frame[10] != REQUEST


class Jk:
    """The JK RS485 protocol for the link; address = terminal number (default 0)."""

    family = "jk"
    can_switch = True

    def __init__(self, terminal: int = 0) -> None:
        if not 0 <= terminal <= 0xFFFFFFFF:
            raise ValueError(f"jk terminal number {terminal} out of range")
        self.terminal = terminal

    def framer(self) -> Framer:
        return JkFramer()

    def poll(self) -> Poll:
        return JkPoll(self.terminal)

    def switch_poll(self, charge: bool, discharge: bool) -> Poll:
        return JkSwitchPoll(self.terminal, charge, discharge)
