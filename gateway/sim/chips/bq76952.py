"""TI BQ76952 as its I2C interface answers, with CRC (written from TI SLUUBY2B / SLUAA11B).

The direct-command space (0x00..0x7F, little endian): cell voltages 0x14..0x32, Stack
Voltage 0x34 (10 mV), CC2 Current 0x3A (mA), Alarm Status 0x62 (bits cleared by writing 1),
Alarm Enable 0x66, temperatures 0x68..0x74 (0.1 K), FET Status 0x7F. Reads and writes carry
a CRC-8 after every data byte: the first covers the address byte(s), the register and the
byte, the later ones only their byte. A write with a wrong CRC is ignored and counted.

Subcommands: a write to 0x3E/0x3F runs the command's read side (the result appears in the
transfer buffer 0x40.., with checksum 0x60 and length 0x61; 0x3E/0x3F read back the
command); a write to 0x60/0x61 with the right checksum and length runs its write side with
the data in the buffer. Modelled: DEVICE_NUMBER, MANUFACTURING_STATUS (FET_EN), FET_ENABLE,
ALL_FETS_ON/OFF, CB_ACTIVE_CELLS. The FETs are on when FET_EN is set, the host allowed them
and the chip's own protection has not tripped (trip()).

Faults: bad_crc (the next N bytes the chip sends carry a wrong CRC), busy (0x3E/0x3F read
0xFF that many times after a subcommand, while the chip fetches its data), stuck (scans stop:
FULLSCAN never sets again), trip() (its protection opens the FETs); NACKs come from FakeI2C.
"""

from gateway.sim.chips.crc import crc8

DEVICE_NUMBER = 0x7695


class FakeBq76952:
    def __init__(self, address: int = 0x08, cells: int = 16) -> None:
        self.address = address
        self.cells = cells
        self.regs = bytearray(0x80)
        self.buffer = bytearray(32)
        self.stuck = False
        self.bad_crc = 0
        self.crc_rejected = 0  # host writes with a wrong CRC
        self.subcommands: list[int] = []
        self.fet_en = False
        self.fets_allowed = True  # ALL_FETS_OFF clears it
        self.tripped = False
        self.balance_mask = 0
        self.subcommand = 0
        self.busy = 0  # reads of 0x3E/0x3F answered 0xFF after each subcommand
        self.busy_reads = 0
        self._set16(0x66, 0xF800)  # Alarm Enable: Default Alarm Mask
        self._fet_status()

    # ---- the analog side ----

    def _set16(self, reg: int, value: int) -> None:
        self.regs[reg] = value & 0xFF
        self.regs[reg + 1] = (value >> 8) & 0xFF

    def _get16(self, reg: int) -> int:
        return self.regs[reg] | self.regs[reg + 1] << 8

    def set_cells(self, mv: list[int], channels: list[int] | None = None) -> None:
        """Cell voltages on the inputs of channels (1-based; default VC1.. and VC16 on top)."""
        if channels is None:
            channels = list(range(1, len(mv)))
            channels.append(16)
        for i in range(16):
            self._set16(0x14 + 2 * i, 0)
        for k, ch in enumerate(channels):
            self._set16(0x14 + 2 * (ch - 1), mv[k])
        self._set16(0x34, sum(mv) // 10)

    def set_current(self, ma: int) -> None:
        self._set16(0x3A, ma & 0xFFFF)

    def set_temps(self, temps_c: list[float | None], die_c: float = 30.0) -> None:
        """TS1..TS3 (None: an open thermistor reads far below -40 degC, as the TRM says)."""
        for i, t in enumerate(temps_c):
            dk = -2000 if t is None else round(t * 10 + 2731.5)
            self._set16(0x70 + 2 * i, dk & 0xFFFF)
        self._set16(0x68, round(die_c * 10 + 2731.5))

    def scan(self) -> None:
        """A full measurement scan completed (FULLSCAN latched if enabled)."""
        if not self.stuck:
            raw = 0x0080 | 0x0002
            self._set16(0x62, self._get16(0x62) | (raw & self._get16(0x66)))

    def trip(self) -> None:
        """The chip's own protection (e.g. its over-current) switched the FETs off."""
        self.tripped = True
        self._fet_status()

    def _fet_status(self) -> None:
        on = self.fet_en and self.fets_allowed and not self.tripped
        self.regs[0x7F] = 0x05 if on else 0x00

    # ---- I2C ----

    def read_mem(self, memaddr: int, buf: bytearray) -> None:
        crc = crc8(crc8(crc8(0, self.address << 1), memaddr), self.address << 1 | 1)
        for i in range(len(buf) >> 1):
            reg = memaddr + i
            if SUBCMD_LO <= reg <= SUBCMD_LO + 1:
                if self.busy_reads:  # still fetching the data: 0xFF, as the TRM says
                    value = 0xFF
                    if reg == SUBCMD_LO + 1 or len(buf) == 2:
                        self.busy_reads -= 1
                else:
                    value = (self.subcommand >> (8 * (reg - SUBCMD_LO))) & 0xFF
            elif BUFFER <= reg < BUFFER + 32:
                value = self.buffer[reg - BUFFER]
            else:
                value = self.regs[reg & 0x7F]
            crc = crc8(crc, value)
            buf[2 * i] = value
            if self.bad_crc:
                self.bad_crc -= 1
                crc ^= 0x5A
            buf[2 * i + 1] = crc
            crc = 0

    def write_mem(self, memaddr: int, buf: bytes | bytearray) -> None:
        n = len(buf) >> 1
        crc = crc8(crc8(0, self.address << 1), memaddr)
        for i in range(n):  # check every CRC before anything is written
            crc = crc8(crc, buf[2 * i])
            if crc != buf[2 * i + 1]:
                self.crc_rejected += 1
                return
            crc = 0
        for i in range(n):
            self._write_byte(memaddr + i, buf[2 * i])
        if memaddr == SUBCMD_LO and n == 2:
            self._subcommand_read_side(buf[0] | buf[2] << 8)
        elif memaddr == CHECKSUM_REG and n == 2:
            self._subcommand_write_side(buf[0], buf[2])

    def _write_byte(self, reg: int, value: int) -> None:
        if reg in (0x62, 0x63):  # Alarm Status: a 1 clears the bit
            self.regs[reg] &= ~value & 0xFF
        elif reg in (0x66, 0x67):
            self.regs[reg] = value
        elif BUFFER <= reg < BUFFER + 32:
            self.buffer[reg - BUFFER] = value
        elif reg in (CHECKSUM_REG, CHECKSUM_REG + 1):
            self.regs[reg] = value

    # ---- subcommands ----

    def _result(self, value: int, size: int) -> None:
        for i in range(size):
            self.buffer[i] = (value >> (8 * i)) & 0xFF
        total = (self.subcommand & 0xFF) + (self.subcommand >> 8) + sum(self.buffer[:size])
        self.regs[CHECKSUM_REG] = ~total & 0xFF
        self.regs[CHECKSUM_REG + 1] = size + 4

    def _subcommand_read_side(self, command: int) -> None:
        self.subcommand = command
        self.busy_reads = self.busy
        self.subcommands.append(command)
        if command == 0x0001:
            self._result(DEVICE_NUMBER, 2)
        elif command == 0x0057:
            self._result(0x0010 if self.fet_en else 0, 2)
        elif command == 0x0083:
            self._result(self.balance_mask, 2)
        elif command == 0x0022:
            self.fet_en = not self.fet_en
        elif command == 0x0095:
            self.fets_allowed = False
        elif command == 0x0096:
            self.fets_allowed = True
        self._fet_status()

    def _subcommand_write_side(self, checksum: int, length: int) -> None:
        size = length - 4
        total = (self.subcommand & 0xFF) + (self.subcommand >> 8) + sum(self.buffer[:size])
        if checksum != ~total & 0xFF or not 0 <= size <= 32:
            self.crc_rejected += 1
            return
        if self.subcommand == 0x0083 and size == 2:
            self.balance_mask = self.buffer[0] | self.buffer[1] << 8
            self.subcommands.append(0x10083)  # marks the write of CB_ACTIVE_CELLS


SUBCMD_LO = 0x3E
BUFFER = 0x40
CHECKSUM_REG = 0x60
