"""Daly smart BMS: the 0xA5 protocol of its UART and RS485 port.

Follows Daly's "UART/485 Communications Protocol V1.2" (Dongguan Daly Electronics, 2020-12;
PDF in maland16/daly-bms-uart docs/):

- 9600 baud 8N1. Every frame is 13 bytes: A5, address, data ID, length (8), 8 data bytes,
  checksum (low byte of the sum of the 12 bytes before it). The host sends its own address
  (0x40 upper computer) and 8 reserved bytes; the BMS answers with its own address (0x01)
  and the same data ID. With several BMSes on one RS485 line, each is given a board number
  n in Daly's PC tool and answers requests to 0x40 + n (mr-manuel/venus-os_dbus-serialbattery
  docs, "How to connect": board 0 = 0x40 ... 15 = 0x4F).
- 0x90 total voltage (0.1 V, cumulative and gathered), current (0.1 A, offset 30000; the
  document states no sign: above the offset is charging, as Daly's own software shows it),
  SOC (0.1 %). 0x93 state, charge MOS, discharge MOS, BMS life, remaining capacity (mAh, 4
  bytes). 0x94 number of cells, of temperatures, charger and load status. 0x95 cell
  voltages: one frame per 3 cells (frame number, 3 x mV); 0x96 temperatures: one frame per 7
  sensors (frame number, 7 x degC + 40); both answered by as many frames as the cell / sensor
  counts of 0x94 need. 0x98 failure status: 7 bytes of flags (named below as the document
  names them) and a fault code.

The document describes no command to switch the MOSFETs, nor the rated capacity: this
source cannot switch (can_switch False) and reports no capacity_ah.
"""

from __future__ import annotations

from gateway.sources.packs.framing import Framer, Poll, bits, u16
from gateway.sources.packs.reading import PackError, PackReading

BAUDRATE = 9600
START = 0xA5
HOST = 0x40  # upper computer
SIZE = 13
SOC, MOS, STATUS, CELLS, TEMPS, FAILURES = 0x90, 0x93, 0x94, 0x95, 0x96, 0x98
CURRENT_OFFSET = 30000
TEMP_OFFSET = 40
CELLS_PER_FRAME, TEMPS_PER_FRAME = 3, 7

FAILURE_BITS = (
    # byte 0
    "cell volt high level 1",
    "cell volt high level 2",
    "cell volt low level 1",
    "cell volt low level 2",
    "sum volt high level 1",
    "sum volt high level 2",
    "sum volt low level 1",
    "sum volt low level 2",
    # byte 1
    "chg temp high level 1",
    "chg temp high level 2",
    "chg temp low level 1",
    "chg temp low level 2",
    "dischg temp high level 1",
    "dischg temp high level 2",
    "dischg temp low level 1",
    "dischg temp low level 2",
    # byte 2
    "chg overcurrent level 1",
    "chg overcurrent level 2",
    "dischg overcurrent level 1",
    "dischg overcurrent level 2",
    "SOC high level 1",
    "SOC high level 2",
    "SOC low level 1",
    "SOC low level 2",
    # byte 3
    "diff volt level 1",
    "diff volt level 2",
    "diff temp level 1",
    "diff temp level 2",
    None,
    None,
    None,
    None,
    # byte 4
    "chg MOS temp high alarm",
    "dischg MOS temp high alarm",
    "chg MOS temp sensor err",
    "dischg MOS temp sensor err",
    "chg MOS adhesion err",
    "dischg MOS adhesion err",
    "chg MOS open circuit err",
    "dischg MOS open circuit err",
    # byte 5
    "AFE collect chip err",
    "voltage collect dropped",
    "cell temp sensor err",
    "EEPROM err",
    "RTC err",
    "precharge failure",
    "communication failure",
    "internal communication failure",
    # byte 6
    "current module fault",
    "sum voltage detect fault",
    "short circuit protect fault",
    "low volt forbidden chg fault",
)


def checksum(body: bytes) -> int:
    return sum(body) & 0xFF


def request(data_id: int, host: int = HOST) -> bytes:
    body = bytes((START, host, data_id, 8)) + bytes(8)
    return body + bytes((checksum(body),))


class DalyFramer(Framer):
    START = bytes((START,))

    def size(self, buf: bytearray) -> int:
        if len(buf) < 4:
            return 0
        return SIZE if buf[3] == 8 else -1

    def verify(self, frame: bytes) -> bool:
        return checksum(frame[:-1]) == frame[-1]


def data_of(frame: bytes) -> bytes:
    return frame[4:12]


class DalyPoll(Poll):
    def __init__(self, host: int) -> None:
        self.ids = (SOC, MOS, STATUS, CELLS, TEMPS, FAILURES)
        super().__init__([request(i, host) for i in self.ids])
        self.host = host

    def expect(self, step: int) -> int:
        if self.ids[step] in (CELLS, TEMPS):
            status = data_of(self.answers[2][0])
            count, per = (status[0], CELLS_PER_FRAME) if step == 3 else (status[1], TEMPS_PER_FRAME)
            return -(-count // per)
        return 1

    def check(self, step: int, frame: bytes) -> bool:
        # Our own request heard back (adapters with echo) carries our address: not an answer.
        return frame[1] != self.host and frame[2] == self.ids[step]

    def result(self) -> PackReading:
        soc, mos, status, _, _, failures = (data_of(a[0]) for a in self.answers)
        n_cells, n_temps = status[0], status[1]
        cells = numbered(self.answers[3], n_cells, CELLS_PER_FRAME, "cell voltages 0x95")
        temps = numbered(self.answers[4], n_temps, TEMPS_PER_FRAME, "temperatures 0x96")
        return PackReading(
            cells=tuple(u16(c, 0) / 1000 for c in cells),
            temperatures=tuple(float(t[0] - TEMP_OFFSET) for t in temps),
            voltage=u16(soc, 0) / 10,
            current=(u16(soc, 4) - CURRENT_OFFSET) / 10,
            charge_on=bool(mos[1]),
            discharge_on=bool(mos[2]),
            alarms=bits(int.from_bytes(failures[:7], "little"), FAILURE_BITS),
            remaining_ah=int.from_bytes(mos[4:8], "big") / 1000,
            soc=u16(soc, 6) / 10,
        )


def numbered(frames: list[bytes], count: int, per: int, what: str) -> list[bytes]:
    """The values of multi-frame answers in frame-number order: 2-byte cells (per = 3) or
    1-byte temperatures (per = 7), `count` of them. The document numbers the frames from 0
    (0xFF invalid); BMSes in the field number them from 1: either is taken, gaps are not."""
    width = 2 if per == CELLS_PER_FRAME else 1
    by_number = {f[4]: f[5 : 5 + per * width] for f in frames if f[4] != 0xFF}
    needed = -(-count // per)
    first = min(by_number, default=0)
    wanted = range(first, first + needed)
    if first > 1 or any(n not in by_number for n in wanted):
        raise PackError(
            f"{what}: frames {sorted(by_number)}, expected {needed} numbered from 0 or 1"
        )
    values = b"".join(by_number[n] for n in wanted)
    return [values[i * width : (i + 1) * width] for i in range(count)]


class Daly:
    """The Daly protocol for the link; board = the board number set with Daly's PC tool when
    several BMSes share one RS485 line: requests go to address 0x40 + board."""

    family = "daly"
    can_switch = False

    def __init__(self, board: int = 0) -> None:
        if not 0 <= board <= 15:
            raise ValueError(f"daly board number {board} out of 0..15")
        self.host = HOST + board

    def framer(self) -> Framer:
        return DalyFramer()

    def poll(self) -> Poll:
        return DalyPoll(self.host)

    def switch_poll(self, charge: bool, discharge: bool) -> Poll:
        raise PackError("daly: the protocol document has no MOSFET command")
