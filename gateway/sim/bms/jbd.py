"""A JBD / Overkill smart BMS as its UART/RS485 port answers (Jiabaida "Software board general
protocol V4"): registers 0x03 (basic information) and 0x04 (cell voltages) read, 0xE1 (MOS
control) written; anything else read is answered with the error status 0x80. A request with
a wrong checksum gets no answer.

The BMS's own protection holds a MOSFET off whatever 0xE1 says (BLOCKS: protection bit ->
which MOSFET it holds off, after the document's note 1); a MOSFET switched off by 0xE1 sets
bit 12, software lock-in, in the protection status.
"""

from __future__ import annotations

from gateway.sim.bms.pack import Emulator, PackState

START, END = 0xDD, 0x77
READ, WRITE = 0xA5, 0x5A
SOFTWARE_LOCK = 12
BLOCKS = {
    0: (True, False),  # cell block over-voltage
    1: (False, True),  # cell block under-voltage
    2: (True, False),  # battery over-voltage
    3: (False, True),  # battery under-voltage
    4: (True, False),  # charging over-temperature
    5: (True, False),  # charging low temperature
    6: (False, True),  # discharging over-temperature
    7: (False, True),  # discharging low temperature
    8: (True, False),  # charging over-current
    9: (False, True),  # discharging over-current
    10: (False, True),  # short circuit
    11: (True, True),  # front-end IC error
}


def _sum16(data: bytes) -> bytes:
    return ((0x10000 - sum(data)) & 0xFFFF).to_bytes(2, "big")


def answer(register: int, data: bytes, status: int = 0) -> bytes:
    body = bytes((status, len(data))) + data
    return bytes((START, register)) + body + _sum16(body) + bytes((END,))


class JbdEmulator(Emulator):
    CHECKSUM_FROM_END = 2  # the checksum's low byte, before the end byte 0x77

    def __init__(self, pack: PackState | None = None, version: int = 0x10) -> None:
        self.pack = pack or PackState()
        self.version = version

    def split(self, buf: bytearray) -> list[bytes]:
        out: list[bytes] = []
        while True:
            start = buf.find(START)
            if start < 0:
                buf.clear()
                return out
            del buf[:start]
            if len(buf) < 4 or len(buf) < buf[3] + 7:
                return out
            out.append(bytes(buf[: buf[3] + 7]))
            del buf[: buf[3] + 7]

    def respond(self, request: bytes) -> bytes:
        n = request[3]
        if (
            len(request) != n + 7
            or request[-1] != END
            or _sum16(request[2 : 4 + n]) != request[4 + n : 6 + n]
        ):
            return b""
        kind, register, data = request[1], request[2], request[4 : 4 + n]
        if kind == READ and register == 0x03:
            return answer(0x03, self.basic())
        if kind == READ and register == 0x04:
            return answer(0x04, b"".join(mv.to_bytes(2, "big") for mv in self.pack.cells_mv))
        if kind == WRITE and register == 0xE1 and n == 2:
            self.pack.charge_switch = not data[1] & 1
            self.pack.discharge_switch = not data[1] & 2
            return answer(0xE1, b"")
        return answer(register, b"", status=0x80)

    def basic(self) -> bytes:
        p = self.pack
        charge, discharge = p.conducts(BLOCKS)
        protection = p.alarms
        if not (p.charge_switch and p.discharge_switch):
            protection |= 1 << SOFTWARE_LOCK
        return (
            (p.voltage_mv // 10).to_bytes(2, "big")
            + (p.current_ma // 10).to_bytes(2, "big", signed=True)
            + (p.remaining_mah // 10).to_bytes(2, "big")
            + (p.capacity_mah // 10).to_bytes(2, "big")
            + p.cycles.to_bytes(2, "big")
            + (((2026 - 2000) << 9) | (12 << 5) | 7).to_bytes(2, "big")  # production date
            + bytes(4)  # balance status, cells 1..16 and 17..32
            + protection.to_bytes(2, "big")
            + bytes((self.version, p.soc, charge | discharge << 1))
            + bytes((len(p.cells_mv), len(p.temps_c)))
            + b"".join((2731 + 10 * t).to_bytes(2, "big") for t in p.temps_c)
        )
