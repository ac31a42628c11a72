"""JK inverter BMS (JK-PB series): Modbus RTU on its RS485 port.

Follows JK's "BMS RS485 Modbus V1.1" register map (PDF in syssi/esphome-jk-bms
docs/pb2a16s20p/BMS RS485 Modbus V1.1.pdf): 115200 baud 8N1, device address 1..15 (the DIP
switches), function 0x03 to read and 0x10 to write, CRC-16/Modbus. The map has four blocks,
each addressed by its base plus the *byte* offset of a field: settings 0x1000, live data
0x1200, device information 0x1400, commands 0x1600. A read of N registers answers 2N bytes
laid out as the block is, without the gaps a standard Modbus device would leave (noted in
syssi/esphome-jk-bms esp32-jk-pb-modbus-example.yaml); values big-endian.

Read here, from the data block 0x1200: CellVol0..31 (mV, offsets 0..62), CellSta (64, bit n =
cell n present), TempMos (138, 0.1 degC, signed), BatVol (144, mV), BatCurrent (152, mA,
signed; the map states no sign, taken as charging positive as the BMS's display
shows it), TempBat1/2 (156/158), Alarms (160, 32 bits as named below), SOC (167, %),
SOCCapRemain (168, mAh), SOCFullChargeCap (172, mAh), SOCCycleCount (176), Charge and
Discharge (192/193, the MOSFET states), the temperature sensors present (208: bit 0 MOS,
bits 1.. battery sensors, 1 = present). Switched: BatChargeEN (0x1070) and BatDisChargeEN
(0x1074), UINT32, 1 on, 0 off.

Alarm bit 19 ("modify PWD. in time", a reminder to change the default password) is not a
fault and is not reported.
"""

from __future__ import annotations

from gateway.sources.packs.framing import Framer, Poll, bits, need, u16
from gateway.sources.packs.reading import PackError, PackReading

BAUDRATE = 115200
READ, WRITE = 0x03, 0x10
DATA = 0x1200
READ_BYTES = 210  # offsets 0..209: through the temperature sensors present (208)
CHARGE_EN, DISCHARGE_EN = 0x1070, 0x1074

ALARMS = (
    "balance wire resistance too high",
    "MOS over-temperature protection",
    "cell count does not match the setting",
    "current sensor error",
    "cell over-voltage protection",
    "battery over-voltage protection",
    "charge over-current protection",
    "charge short-circuit protection",
    "charge over-temperature protection",
    "charge low-temperature protection",
    "internal communication error",
    "cell under-voltage protection",
    "battery under-voltage protection",
    "discharge over-current protection",
    "discharge short-circuit protection",
    "discharge over-temperature protection",
    "charge MOS abnormal",
    "discharge MOS abnormal",
    "GPS disconnected",
    None,  # bit 19: "modify PWD. in time", a reminder (module docstring)
    "discharge on failed",
    "battery over-temperature alarm",
    "temperature sensor anomaly",
    "parallel module anomaly",
)


def crc16(data: bytes) -> int:
    """CRC-16/Modbus (poly 0xA001 reflected, init 0xFFFF); sent low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(body: bytes) -> bytes:
    return body + crc16(body).to_bytes(2, "little")


def read_request(address: int, register: int, count: int) -> bytes:
    return with_crc(bytes((address, READ)) + register.to_bytes(2, "big") + count.to_bytes(2, "big"))


def write_request(address: int, register: int, value: bytes) -> bytes:
    count = len(value) // 2
    return with_crc(
        bytes((address, WRITE))
        + register.to_bytes(2, "big")
        + count.to_bytes(2, "big")
        + bytes((len(value),))
        + value
    )


class ModbusFramer(Framer):
    """Answers of one device address: 0x03 (byte count), 0x10 (echo), exceptions."""

    def __init__(self, address: int) -> None:
        super().__init__()
        self.START = bytes((address,))

    def size(self, buf: bytearray) -> int:
        if len(buf) < 3:
            return 0
        function = buf[1]
        if function == READ:
            return 5 + buf[2]
        if function == WRITE:
            return 8
        if function & 0x80 and function & 0x7F in (READ, WRITE):
            return 5
        return -1

    def verify(self, frame: bytes) -> bool:
        return crc16(frame[:-2]) == int.from_bytes(frame[-2:], "little")


def s16(data: bytes, i: int) -> int:
    return int.from_bytes(data[i : i + 2], "big", signed=True)


def u32(data: bytes, i: int) -> int:
    return int.from_bytes(data[i : i + 4], "big")


def parse(data: bytes) -> PackReading:
    """The data block from offset 0 (READ_BYTES bytes) as a reading."""
    need(data, READ_BYTES, "data block 0x1200")
    present = u32(data, 64)
    sensors = data[208]
    temps = [(0, 138), (1, 156), (2, 158)]
    return PackReading(
        cells=tuple(u16(data, 2 * i) / 1000 for i in range(32) if present >> i & 1),
        temperatures=tuple(s16(data, at) / 10 for bit, at in temps if sensors >> bit & 1),
        voltage=u32(data, 144) / 1000,
        current=int.from_bytes(data[152:156], "big", signed=True) / 1000,
        charge_on=bool(data[192]),
        discharge_on=bool(data[193]),
        alarms=bits(u32(data, 160), ALARMS),
        soc=float(data[167]),
        remaining_ah=int.from_bytes(data[168:172], "big", signed=True) / 1000,
        capacity_ah=u32(data, 172) / 1000,
        cycles=u32(data, 176),
    )


def answer(frame: bytes, function: int) -> None:
    """PackError for a Modbus exception answer to `function`."""
    if frame[1] == function | 0x80:
        raise PackError(f"Modbus exception {frame[2]} to function 0x{function:02X}")


class JkModbusPoll(Poll):
    def __init__(self, address: int) -> None:
        super().__init__([read_request(address, DATA, READ_BYTES // 2)])

    def check(self, step: int, frame: bytes) -> bool:
        answer(frame, READ)
        return frame[1] == READ

    def result(self) -> PackReading:
        frame = self.answers[0][0]
        if frame[2] != READ_BYTES:
            raise PackError(f"data block: {frame[2]} bytes, expected {READ_BYTES}")
        return parse(frame[3:-2])


class JkModbusSwitchPoll(Poll):
    def __init__(self, address: int, charge: bool, discharge: bool) -> None:
        super().__init__(
            [
                write_request(address, CHARGE_EN, int(charge).to_bytes(4, "big")),
                write_request(address, DISCHARGE_EN, int(discharge).to_bytes(4, "big")),
            ]
        )

    def check(self, step: int, frame: bytes) -> bool:
        answer(frame, WRITE)
        # The echo names the register written: an echo of the other write is not this one's.
        return frame[1] == WRITE and frame[2:6] == self.requests[step][2:6]


class JkModbus:
    """The JK-PB Modbus protocol for the link; address = the BMS's Modbus address."""

    family = "jk-modbus"
    can_switch = True

    def __init__(self, address: int = 1) -> None:
        if not 1 <= address <= 247:
            raise ValueError(f"jk-modbus address {address} out of 1..247")
        self.address = address

    def framer(self) -> Framer:
        return ModbusFramer(self.address)

    def poll(self) -> Poll:
        return JkModbusPoll(self.address)

    def switch_poll(self, charge: bool, discharge: bool) -> Poll:
        return JkModbusSwitchPoll(self.address, charge, discharge)
