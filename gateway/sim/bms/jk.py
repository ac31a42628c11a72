"""A JK BMS as its GPS / RS485 port answers (JK "BMS-RS485 communication protocol" V2.5, the
0x4E 0x57 frames): command 0x06 (read all) answered with every identifier a reading needs,
command 0x02 (write) to 0xAB / 0xAC (charge / discharge MOS switch) applied and echoed in a
write answer. A request with a wrong checksum, or for another terminal number, gets no answer.

Temperatures: 0x80 (power tube), 0x81 (box), 0x82 (battery) from the pack's first three
sensors. Current in the protocol-version-1 form (0xC0 = 1: top bit = charging, 10 mA).
BLOCKS: warning bit (0x8B) -> which MOSFET the BMS holds off while it is raised.
"""

from __future__ import annotations

from gateway.sim.bms.pack import Emulator, PackState

STX = b"NW"
END = 0x68
BLOCKS = {
    1: (True, True),  # MOS tube over-temperature
    2: (True, False),  # charging over-voltage
    3: (False, True),  # discharge under-voltage
    4: (True, True),  # battery over-temperature
    5: (True, False),  # charging over-current
    6: (False, True),  # discharge over-current
    8: (True, True),  # battery box over-temperature
    9: (True, False),  # battery low temperature
    10: (True, False),  # cell over-voltage
    11: (False, True),  # cell under-voltage
}


def _frame(terminal: bytes, command: int, info: bytes) -> bytes:
    """A BMS answer (frame source 0, transport type 1)."""
    length = 2 + 4 + 3 + len(info) + 9
    body = STX + length.to_bytes(2, "big") + terminal + bytes((command, 0, 1)) + info
    body += bytes(4) + bytes((END,))
    return body + (sum(body) & 0xFFFF).to_bytes(4, "big")


def _temp(c: int) -> bytes:
    return (c if c >= 0 else 100 - c).to_bytes(2, "big")


class JkEmulator(Emulator):
    def __init__(self, pack: PackState | None = None, terminal: int = 0) -> None:
        self.pack = pack or PackState(temps_c=[30, 25, 26])
        self.terminal = terminal.to_bytes(4, "big")

    def split(self, buf: bytearray) -> list[bytes]:
        out: list[bytes] = []
        while True:
            start = buf.find(STX)
            if start < 0:
                del buf[: max(0, len(buf) - 1)]  # keep a trailing 0x4E
                return out
            del buf[:start]
            if len(buf) < 4:
                return out
            size = int.from_bytes(buf[2:4], "big") + 2
            if len(buf) < size:
                return out
            out.append(bytes(buf[:size]))
            del buf[:size]

    def respond(self, request: bytes) -> bytes:
        if (
            len(request) < 20
            or request[-5] != END
            or sum(request[:-4]) & 0xFFFF != int.from_bytes(request[-2:], "big")
            or request[4:8] != self.terminal
        ):
            return b""
        command, info = request[8], request[11:-9]
        if command == 0x06:
            return _frame(self.terminal, 0x06, self.read_all())
        if command == 0x02 and len(info) == 2 and info[0] in (0xAB, 0xAC):
            if info[0] == 0xAB:
                self.pack.charge_switch = bool(info[1])
            else:
                self.pack.discharge_switch = bool(info[1])
            return _frame(self.terminal, 0x02, info)
        return b""

    def read_all(self) -> bytes:
        p = self.pack
        charge, discharge = p.conducts(BLOCKS)
        temps = [*p.temps_c, 25, 25, 25][:3]
        cells = b"".join(bytes((i + 1,)) + mv.to_bytes(2, "big") for i, mv in enumerate(p.cells_mv))
        ma = p.current_ma
        current = 0x8000 | ma // 10 if ma > 0 else -ma // 10
        return (
            bytes((0x79, len(cells)))
            + cells
            + b"\x80"
            + _temp(temps[0])
            + b"\x81"
            + _temp(temps[1])
            + b"\x82"
            + _temp(temps[2])
            + b"\x83"
            + (p.voltage_mv // 10).to_bytes(2, "big")
            + b"\x84"
            + current.to_bytes(2, "big")
            + bytes((0x85, p.soc, 0x86, 2))
            + b"\x87"
            + p.cycles.to_bytes(2, "big")
            + b"\x89"
            + (p.cycles * p.capacity_mah // 1000).to_bytes(4, "big")
            + b"\x8a"
            + len(p.cells_mv).to_bytes(2, "big")
            + b"\x8b"
            + p.alarms.to_bytes(2, "big")
            + b"\x8c"
            + (charge | discharge << 1 | 1 << 3).to_bytes(2, "big")
            + b"\xaa"
            + (p.capacity_mah // 1000).to_bytes(4, "big")
            + bytes((0xAB, p.charge_switch, 0xAC, p.discharge_switch))
            + b"\xb9"
            + (p.capacity_mah // 1000).to_bytes(4, "big")
            + b"\xc0\x01"
        )
