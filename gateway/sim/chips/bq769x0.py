"""TI BQ76920/30/40 as its I2C interface answers, with CRC (written from TI SLUSBK2I).

Registers 0x00..0x59 as the datasheet's register map (section 8.6); the measurements are
stored as the ADC codes the chip would produce for the analog values set here, using the
chip's own factory gain and offset (ADCGAIN1/2, ADCOFFSET). convert() is one 250 ms
conversion: it latches CC_READY (when CC_EN is set). A read's first data byte carries a CRC
over the read address byte and the byte, every later byte over itself; a write's CRC covers
address, register and byte; a write with a wrong CRC is ignored and counted.

Faults: stuck (no more conversions), bad_crc (the next N bytes sent carry a wrong CRC),
trip() (its protection clears CHG_ON/DSG_ON and sets SCD), xready() (DEVICE_XREADY).
adjacent_bleeds counts the times two adjacent cells of a group were set to bleed at once
(what the datasheet forbids the host to do).
"""

from gateway.sim.chips.crc import crc8

ADC_GAIN = 12  # ADCGAIN<4:0>: 377 uV/LSB
ADC_OFFSET = 0xFB  # -5 mV


class FakeBq769x0:
    def __init__(self, address: int = 0x08, inputs: int = 15) -> None:
        self.address = address
        self.inputs = inputs
        self.regs = bytearray(0x60)
        self.regs[0x50] = (ADC_GAIN >> 3) << 2  # ADCGAIN<4:3> in bits 3..2
        self.regs[0x59] = (ADC_GAIN & 0x07) << 5  # ADCGAIN<2:0> in bits 7..5
        self.regs[0x51] = ADC_OFFSET
        self.stuck = False
        self.bad_crc = 0
        self.crc_rejected = 0
        self.adjacent_bleeds = 0

    @property
    def gain_uv(self) -> int:
        return 365 + ADC_GAIN

    @property
    def offset_mv(self) -> int:
        return ADC_OFFSET - 256

    def _set14(self, reg: int, code: int) -> None:
        code = max(0, min(0x3FFF, code))
        self.regs[reg] = code >> 8
        self.regs[reg + 1] = code & 0xFF

    def set_cells(self, mv: list[int], channels: list[int] | None = None) -> None:
        """Cell voltages on the VC inputs of channels (1-based; default VC1..)."""
        if channels is None:
            channels = list(range(1, len(mv) + 1))
        for i in range(15):
            self._set14(0x0C + 2 * i, 0)
        for k, ch in enumerate(channels):
            self._set14(0x0C + 2 * (ch - 1), round((mv[k] - self.offset_mv) * 1000 / self.gain_uv))
        bat = round((sum(mv) - len(mv) * self.offset_mv) * 1000 / (4 * self.gain_uv))
        self.regs[0x2A] = bat >> 8
        self.regs[0x2B] = bat & 0xFF

    def set_ts_volts(self, volts: list[float]) -> None:
        for i, v in enumerate(volts):
            self._set14(0x2C + 2 * i, round(v / 382e-6))

    def set_current(self, ma: int, sense_uohm: int) -> None:
        cc = round(ma * sense_uohm / 8440)
        cc = max(-32768, min(32767, cc)) & 0xFFFF
        self.regs[0x32] = cc >> 8
        self.regs[0x33] = cc & 0xFF

    def convert(self) -> None:
        if not self.stuck and self.regs[0x05] & 0x40:
            self.regs[0x00] |= 0x80

    def trip(self) -> None:
        self.regs[0x05] &= ~0x03 & 0xFF
        self.regs[0x00] |= 0x02  # SCD

    def xready(self) -> None:
        self.regs[0x00] |= 0x20

    @property
    def fets_on(self) -> bool:
        return self.regs[0x05] & 0x03 == 0x03

    @property
    def balance_mask(self) -> int:
        """Bleeding inputs: bit i = VC input i + 1."""
        return self.regs[0x01] | self.regs[0x02] << 5 | self.regs[0x03] << 10

    # ---- I2C ----

    def read_mem(self, memaddr: int, buf: bytearray) -> None:
        crc = crc8(0, self.address << 1 | 1)
        for i in range(len(buf) >> 1):
            value = self.regs[(memaddr + i) % len(self.regs)]
            crc = crc8(crc, value)
            buf[2 * i] = value
            if self.bad_crc:
                self.bad_crc -= 1
                crc ^= 0x21
            buf[2 * i + 1] = crc
            crc = 0

    def write_mem(self, memaddr: int, buf: bytes | bytearray) -> None:
        crc = crc8(crc8(0, self.address << 1), memaddr)
        for i in range(len(buf) >> 1):
            crc = crc8(crc, buf[2 * i])
            if crc != buf[2 * i + 1]:
                self.crc_rejected += 1
                return
            crc = 0
        for i in range(len(buf) >> 1):
            reg = memaddr + i
            value = buf[2 * i]
            if reg == 0x00:
                self.regs[0] &= ~value & 0xFF  # a 1 clears the flag
            elif 0x01 <= reg <= 0x03:
                self.regs[reg] = value & 0x1F
                if value & (value >> 1):
                    self.adjacent_bleeds += 1
            elif 0x04 <= reg <= 0x0B:
                self.regs[reg] = value
