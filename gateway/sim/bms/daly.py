"""A Daly smart BMS as its UART/RS485 port answers (Daly "UART/485 Communications Protocol
V1.2"): 13-byte frames; data IDs 0x90 (voltage, current, SOC), 0x93 (MOS status, remaining
capacity), 0x94 (status: cells, sensors), 0x95 (cell voltages, 3 a frame, as many frames as
cells need), 0x96 (temperatures, 7 a frame), 0x98 (failure flags) answered with the BMS
address 0x01; anything else, or a wrong checksum, gets no answer. Frame numbers of 0x95 and
0x96 start at `first_frame` (0 as the document says; 1 as BMSes in the field do). It answers
requests to 0x40 + `board` (the upper computer's address, plus the board number that Daly's
PC tool sets for several BMSes on one line).

The document has no MOSFET command: the host cannot switch; a raised failure flag in BLOCKS
holds a MOSFET off (bit n of the 7 flag bytes, byte 0 bit 0 first).
"""

from __future__ import annotations

from gateway.sim.bms.pack import Emulator, PackState

START, BMS = 0xA5, 0x01
BLOCKS = {
    1: (True, False),  # cell volt high level 2
    3: (False, True),  # cell volt low level 2
    5: (True, False),  # sum volt high level 2
    7: (False, True),  # sum volt low level 2
    9: (True, False),  # chg temp high level 2
    11: (True, False),  # chg temp low level 2
    13: (False, True),  # dischg temp high level 2
    15: (False, True),  # dischg temp low level 2
    17: (True, False),  # chg overcurrent level 2
    19: (False, True),  # dischg overcurrent level 2
    50: (False, True),  # short circuit protect fault
}


def _frame(address: int, data_id: int, data: bytes) -> bytes:
    body = bytes((START, address, data_id, 8)) + data.ljust(8, b"\x00")
    return body + bytes((sum(body) & 0xFF,))


class DalyEmulator(Emulator):
    def __init__(self, pack: PackState | None = None, first_frame: int = 0, board: int = 0) -> None:
        self.pack = pack or PackState()
        self.first_frame = first_frame
        self.board = board

    def split(self, buf: bytearray) -> list[bytes]:
        out: list[bytes] = []
        while True:
            start = buf.find(START)
            if start < 0:
                buf.clear()
                return out
            del buf[:start]
            if len(buf) < 13:
                return out
            out.append(bytes(buf[:13]))
            del buf[:13]

    def respond(self, request: bytes) -> bytes:
        if (
            len(request) != 13
            or sum(request[:12]) & 0xFF != request[12]
            or request[3] != 8
            or request[1] != 0x40 + self.board
        ):
            return b""
        p = self.pack
        data_id = request[2]
        if data_id == 0x90:
            soc = 10 * p.remaining_mah * 100 // p.capacity_mah if p.capacity_mah else 0
            return _frame(
                BMS,
                0x90,
                (p.voltage_mv // 100).to_bytes(2, "big") * 2
                + (30000 + p.current_ma // 100).to_bytes(2, "big")
                + soc.to_bytes(2, "big"),
            )
        if data_id == 0x93:
            charge, discharge = p.conducts(BLOCKS)
            state = 1 if p.current_ma > 0 else 2 if p.current_ma < 0 else 0
            return _frame(
                BMS,
                0x93,
                bytes((state, charge, discharge, p.cycles & 0xFF))
                + p.remaining_mah.to_bytes(4, "big"),
            )
        if data_id == 0x94:
            return _frame(BMS, 0x94, bytes((len(p.cells_mv), len(p.temps_c), 0, 0, 0)))
        if data_id == 0x95:
            values = [mv.to_bytes(2, "big") for mv in p.cells_mv]
            return self._numbered(0x95, values, 3)
        if data_id == 0x96:
            return self._numbered(0x96, [bytes((t + 40,)) for t in p.temps_c], 7)
        if data_id == 0x98:
            return _frame(BMS, 0x98, p.alarms.to_bytes(7, "little") + b"\x00")
        return b""

    def _numbered(self, data_id: int, values: list[bytes], per: int) -> bytes:
        return b"".join(
            _frame(BMS, data_id, bytes((self.first_frame + n,)) + b"".join(values[i : i + per]))
            for n, i in enumerate(range(0, len(values), per))
        )
