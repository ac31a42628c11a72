"""JBD / Overkill Solar / Xiaoxiang "smart BMS": the 0xDD protocol of its UART and RS485 port.

Follows Jiabaida's "Software board general protocol V4" (bilingual PDF, as kept in
syssi/esphome-jk-bms docs/JK-Jiabaida_communication_protocol_v4.0.pdf; the same register map
is written out in Overkill Solar's JBD_REGISTER_MAP.md, FurTrader/OverkillSolarBMS):

- 9600 baud 8N1. Request DD, A5 (read) or 5A (write), register, length, data, checksum (2),
  77. Answer DD, register, status (0 = ok, 0x80 = error), length, data, checksum, 77.
  Checksum: 0x10000 minus the sum of the bytes from the status (request: register) through
  the data, high byte first; all values high byte first.
- 0x03 basic information: total voltage (10 mV), current (10 mA, signed, + = charging),
  residual and nominal capacity (10 mAh), cycles, production date, balance (2 x 16 bits),
  protection status (bits named in the document's note 1), version, RSOC (%), FET control
  status (bit 0 charge, bit 1 discharge, 1 = on), cells, NTC count, NTCs (0.1 K, 2731 = 0 degC).
- 0x04 cell voltages, mV each.
- MOS control: write 0xE1 with data 00 XX, XX bit 0 = software off for charge, bit 1 for
  discharge (0 releases both); acknowledged by an empty 0xE1 answer. The BMS's own
  protection still holds a MOSFET off whatever the command says, so the link reads the state
  back after switching.

Bit 12 of the protection status ("Software Lock-in") is the state our own MOS command set: it
is not reported as an alarm (the MOSFET states say it), else a pack switched off by the
gateway would look faulted and never be switched on again.
"""

from __future__ import annotations

from gateway.sources.packs.framing import Framer, Poll, bits, need, u16
from gateway.sources.packs.reading import PackError, PackReading

BAUDRATE = 9600
START, END = 0xDD, 0x77
READ, WRITE = 0xA5, 0x5A
BASIC, CELLS, MOS = 0x03, 0x04, 0xE1
KELVIN_OFFSET = 2731  # 0.1 K

PROTECTION = (
    "cell block over-voltage",
    "cell block under-voltage",
    "battery over-voltage",
    "battery under-voltage",
    "charging over-temperature",
    "charging low temperature",
    "discharging over-temperature",
    "discharging low temperature",
    "charging over-current",
    "discharging over-current",
    "short circuit",
    "front-end IC error",
    None,  # bit 12: software lock-in (our own MOS command, see the module docstring)
)


def checksum(body: bytes) -> int:
    return (0x10000 - sum(body)) & 0xFFFF


def frame(kind: int, register: int, data: bytes = b"") -> bytes:
    """A request (kind READ or WRITE) to register."""
    body = bytes((register, len(data))) + data
    return bytes((START, kind)) + body + checksum(body).to_bytes(2, "big") + bytes((END,))


def read_request(register: int) -> bytes:
    return frame(READ, register)


def mos_request(charge: bool, discharge: bool) -> bytes:
    """0xE1 write: bit 0 switches charge off, bit 1 discharge."""
    return frame(WRITE, MOS, bytes((0, (0 if charge else 1) | (0 if discharge else 2))))


class JbdFramer(Framer):
    START = bytes((START,))

    def size(self, buf: bytearray) -> int:
        if len(buf) < 4:
            return 0
        # An answer's status is 0 or 0x80; checked before trusting the length, so that a
        # stray 0xDD in noise does not make the framer wait for 250 bytes.
        return buf[3] + 7 if buf[2] in (0, 0x80) else -1

    def verify(self, frame: bytes) -> bool:
        n = frame[3]
        return frame[-1] == END and checksum(frame[2 : 4 + n]) == int.from_bytes(
            frame[4 + n : 6 + n], "big"
        )


def payload(frame: bytes, register: int) -> bytes:
    """The data of a verified answer from register; PackError for the BMS's error status."""
    if frame[1] != register:
        raise PackError(f"answer for register 0x{frame[1]:02X}, expected 0x{register:02X}")
    if frame[2] != 0:
        raise PackError(f"register 0x{register:02X}: BMS answered error status 0x{frame[2]:02X}")
    return frame[4 : 4 + frame[3]]


def parse(basic: bytes, cells: bytes) -> PackReading:
    """The data of a 0x03 and a 0x04 answer as a reading."""
    need(basic, 23, "basic information 0x03")
    n_cells, n_ntc = basic[21], basic[22]
    need(basic, 23 + 2 * n_ntc, f"basic information 0x03 with {n_ntc} NTCs")
    if len(cells) != 2 * n_cells:
        raise PackError(f"cell voltages 0x04: {len(cells)} bytes for {n_cells} cells")
    fet = basic[20]
    return PackReading(
        cells=tuple(u16(cells, 2 * i) / 1000 for i in range(n_cells)),
        temperatures=tuple(
            round((u16(basic, 23 + 2 * i) - KELVIN_OFFSET) / 10, 1) for i in range(n_ntc)
        ),
        voltage=u16(basic, 0) / 100,
        current=int.from_bytes(basic[2:4], "big", signed=True) / 100,
        charge_on=bool(fet & 1),
        discharge_on=bool(fet & 2),
        alarms=bits(u16(basic, 16), PROTECTION),
        remaining_ah=u16(basic, 4) / 100,
        capacity_ah=u16(basic, 6) / 100,
        cycles=u16(basic, 8),
        soc=float(basic[19]),
    )


class JbdPoll(Poll):
    def __init__(self) -> None:
        super().__init__([read_request(BASIC), read_request(CELLS)])

    def check(self, step: int, frame: bytes) -> bool:
        register = (BASIC, CELLS)[step]
        if frame[1] != register:
            return False
        payload(frame, register)
        return True

    def result(self) -> PackReading:
        return parse(payload(self.answers[0][0], BASIC), payload(self.answers[1][0], CELLS))


class JbdSwitchPoll(Poll):
    def __init__(self, charge: bool, discharge: bool) -> None:
        super().__init__([mos_request(charge, discharge)])

    def check(self, step: int, frame: bytes) -> bool:
        if frame[1] != MOS:
            return False
        payload(frame, MOS)
        return True


class Jbd:
    """The JBD protocol for the link (no address: one BMS per port)."""

    family = "jbd"
    can_switch = True

    def framer(self) -> Framer:
        return JbdFramer()

    def poll(self) -> Poll:
        return JbdPoll()

    def switch_poll(self, charge: bool, discharge: bool) -> Poll:
        return JbdSwitchPoll(charge, discharge)
