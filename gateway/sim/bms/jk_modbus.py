"""A JK inverter BMS (JK-PB) as its RS485 Modbus RTU port answers ("BMS RS485 Modbus V1.1"):
function 0x03 reads the settings block 0x1000 and the data block 0x1200, addressed by base +
byte offset, N registers answering 2N bytes without gaps; function 0x10 writes BatChargeEN
(0x1070) and BatDisChargeEN (0x1074). A read outside the blocks gets exception 2 (illegal
data address), an unknown function exception 1; a wrong CRC or another address, silence.

Temperatures: TempMos, TempBat1, TempBat2 from the pack's first three sensors (present bits at
data offset 208). BLOCKS: alarm bit (data offset 160) -> which MOSFET it holds off.
"""

from __future__ import annotations

from gateway.sim.bms.pack import Emulator, PackState

SETTINGS, DATA = 0x1000, 0x1200
SETTINGS_SIZE, DATA_SIZE = 0x11C, 0x110
BLOCKS = {
    1: (True, True),  # MOS over-temperature
    3: (True, True),  # current sensor error
    4: (True, False),  # cell over-voltage
    5: (True, False),  # battery over-voltage
    6: (True, False),  # charge over-current
    7: (True, False),  # charge short circuit
    8: (True, False),  # charge over-temperature
    9: (True, False),  # charge low temperature
    11: (False, True),  # cell under-voltage
    12: (False, True),  # battery under-voltage
    13: (False, True),  # discharge over-current
    14: (False, True),  # discharge short circuit
    15: (False, True),  # discharge over-temperature
    16: (True, False),  # charge MOS abnormal
    17: (False, True),  # discharge MOS abnormal
}


def crc(data: bytes) -> bytes:
    value = 0xFFFF
    for byte in data:
        value ^= byte
        for _ in range(8):
            value = (value >> 1) ^ 0xA001 if value & 1 else value >> 1
    return value.to_bytes(2, "little")


def _put(image: bytearray, at: int, value: int, size: int, signed: bool = False) -> None:
    image[at : at + size] = value.to_bytes(size, "big", signed=signed)


class JkModbusEmulator(Emulator):
    def __init__(self, pack: PackState | None = None, address: int = 1) -> None:
        self.pack = pack or PackState(temps_c=[30, 25, 26])
        self.address = address

    def split(self, buf: bytearray) -> list[bytes]:
        # Requests: 8 bytes for 0x03, 9 + byte count for 0x10; resynchronised on the CRC.
        out: list[bytes] = []
        while len(buf) >= 8:
            size = 9 + buf[6] if buf[1] == 0x10 else 8
            if len(buf) < size:
                break
            if crc(bytes(buf[: size - 2])) != bytes(buf[size - 2 : size]):
                del buf[:1]
                continue
            out.append(bytes(buf[:size]))
            del buf[:size]
        return out

    def respond(self, request: bytes) -> bytes:
        if request[0] != self.address or crc(request[:-2]) != request[-2:]:
            return b""
        function, register = request[1], int.from_bytes(request[2:4], "big")
        count = int.from_bytes(request[4:6], "big")
        if function == 0x03:
            base = DATA if register >= DATA else SETTINGS
            block = self.block(base) if SETTINGS <= register < DATA + 0x200 else None
            offset = register - base
            if block is None or offset + 2 * count > len(block):
                return self.exception(function, 2)
            data = bytes(block[offset : offset + 2 * count])
            return self.reply(bytes((function, len(data))) + data)
        if function == 0x10:
            value = int.from_bytes(request[7 : 7 + request[6]], "big")
            if register == SETTINGS + 0x70:
                self.pack.charge_switch = bool(value)
            elif register == SETTINGS + 0x74:
                self.pack.discharge_switch = bool(value)
            else:
                return self.exception(function, 2)
            return self.reply(request[1:6])
        return self.exception(function, 1)

    def reply(self, pdu: bytes) -> bytes:
        body = bytes((self.address,)) + pdu
        return body + crc(body)

    def exception(self, function: int, code: int) -> bytes:
        return self.reply(bytes((function | 0x80, code)))

    def block(self, base: int) -> bytearray | None:
        if base == SETTINGS:
            image = bytearray(SETTINGS_SIZE)
            _put(image, 0x6C, len(self.pack.cells_mv), 4)
            _put(image, 0x70, int(self.pack.charge_switch), 4)
            _put(image, 0x74, int(self.pack.discharge_switch), 4)
            _put(image, 0x7C, self.pack.capacity_mah, 4)
            return image
        if base == DATA:
            return self.data()
        return None

    def data(self) -> bytearray:
        p = self.pack
        image = bytearray(DATA_SIZE)
        for i, mv in enumerate(p.cells_mv):
            _put(image, 2 * i, mv, 2)
        _put(image, 64, (1 << len(p.cells_mv)) - 1, 4)
        temps = p.temps_c[:3]
        for at, c in zip((138, 156, 158), temps, strict=False):
            _put(image, at, 10 * c, 2, signed=True)
        image[208] = (1 << len(temps)) - 1
        _put(image, 144, p.voltage_mv, 4)
        _put(image, 148, abs(p.voltage_mv * p.current_ma // 1000), 4)
        _put(image, 152, p.current_ma, 4, signed=True)
        _put(image, 160, p.alarms, 4)
        image[167] = p.soc
        _put(image, 168, p.remaining_mah, 4, signed=True)
        _put(image, 172, p.capacity_mah, 4)
        _put(image, 176, p.cycles, 4)
        charge, discharge = p.conducts(BLOCKS)
        image[192], image[193] = charge, discharge
        return image
