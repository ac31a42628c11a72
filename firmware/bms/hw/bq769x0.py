"""TI BQ76920 / BQ76930 / BQ76940 (5 / 10 / 15 cells) on I2C with CRC.

    from machine import I2C, Pin
    from bms.hw.bq769x0 import Bq769x0
    from bms.hw.ntc import NtcCurve
    bq = Bq769x0(I2C(0, sda=Pin(4), scl=Pin(5)), cells=15, temps=3, sense_uohm=1000,
                 curve=NtcCurve(beta=3435, r25_ohm=10_000, series_ohm=10_000))
    hw = BoardHardware(bq, relay_pin=bq.fets, feedback_pin=bq.fets, shunt=bq)

Written from the datasheet (TI SLUSBK2I, "BQ76920, BQ76930, BQ76940"):
- Section 8.5.1 (I2C, CRC variants): 7-bit address 0x08 (0x18 on some variants). CRC-8,
  polynomial x^8 + x^2 + x + 1 (bms.hw.crc8): a write carries it over the address byte, the
  register and the data; in a read, the first data byte's CRC covers the read address byte
  and the byte, each later byte's only itself. Registers auto-increment.
- Section 8.6 (register maps): SYS_STAT 0x00 (CC_READY bit 7, DEVICE_XREADY bit 5, fault flags
  bits 3..0; a 1 written clears a bit), CELLBAL1..3 0x01..0x03 (5 cells each), SYS_CTRL1 0x04
  (ADC_EN bit 4, TEMP_SEL bit 3), SYS_CTRL2 0x05 (CC_EN bit 6, DSG_ON bit 1, CHG_ON bit 0),
  CC_CFG 0x0B (must be 0x19), VC1_HI 0x0C .. VC15_LO 0x29 (14-bit), BAT 0x2A, TS1..3 0x2C..0x31,
  CC 0x32 (signed 16-bit, 8.44 uV/LSB), ADCGAIN1 0x50 (bits 3..2 = ADCGAIN<4:3>), ADCOFFSET
  0x51 (signed, mV), ADCGAIN2 0x59 (bits 7..5 = ADCGAIN<2:0>).
- Section 8.3.1 (measurements): cell = GAIN x ADC + OFFSET with GAIN = 365 + ADCGAIN uV/LSB;
  pack = 4 x GAIN x BAT + cells x OFFSET; a thermistor input reads 382 uV/LSB across the NTC,
  which sits below a 10 kOhm pull-up to 3.3 V; the ADC and the coulomb counter update every
  250 ms (CC_READY).
- Section 8.3.1.3 (cell balancing): bleeding is paused by the chip while it measures; the
  host must not bleed adjacent cells at once. set_balance() drops a cell whose neighbour
  below is already bleeding (counted in balance_limited).

The chip's own protections (OV/UV, SCD/OCD: PROTECT1..3, OV_TRIP, UV_TRIP) open its FETs
faster than the node; this driver leaves their configuration alone. bq.fets drives CHG_ON
and DSG_ON as the node's relay and reads them back as the feedback (the chip clears them when
it trips). Failures: a NACK or a wrong CRC makes the readings NOT_AVAILABLE and counts (errors,
crc_errors); no CC_READY for stale_reads readings counts in stale; read() returns True only
after a fresh 250 ms conversion; nothing raises out of it.
"""

from bms.hw import NOT_AVAILABLE
from bms.hw.crc8 import TABLE

SYS_STAT = 0x00
CELLBAL1 = 0x01
SYS_CTRL1 = 0x04
SYS_CTRL2 = 0x05
CC_CFG = 0x0B
VC1_HI = 0x0C
ADCGAIN1 = 0x50
ADCOFFSET = 0x51
ADCGAIN2 = 0x59

CC_READY = 0x80
DEVICE_XREADY = 0x20
ADC_EN = 0x10
TEMP_SEL = 0x08
CC_EN = 0x40
FETS = 0x03  # DSG_ON | CHG_ON


class FetBits:
    """CHG_ON and DSG_ON as the node's relay: a Pin-like value() for BoardHardware."""

    def __init__(self, chip):
        self.chip = chip
        self.wanted = 0

    def value(self, v=None):
        chip = self.chip
        if v is not None:
            self.wanted = 1 if v else 0
            if chip.fets_sent != self.wanted:
                chip.write_reg(SYS_CTRL2, CC_EN | (FETS if self.wanted else 0))
                if chip.last_ok:
                    chip.fets_sent = self.wanted
            return self.wanted
        ctrl2 = chip.read_reg(SYS_CTRL2)
        if ctrl2 < 0:
            return 1 - self.wanted  # unknown: a mismatch for the node
        if ctrl2 & FETS != FETS and chip.fets_sent == 1:
            chip.fets_sent = -1  # the chip opened them (its protection): ask again later
        return 1 if ctrl2 & FETS == FETS else 0


class Bq769x0:
    """Cell monitor: cells, temps, read(), balancer_temp_dc(), set_balance(), open_wire()."""

    def __init__(
        self,
        i2c,
        cells=15,
        temps=3,
        address=0x08,
        channels=None,
        curve=None,
        sense_uohm=1000,
        balancer=None,
        stale_reads=10,
    ):
        if not 3 <= cells <= 15:
            raise ValueError("BQ769x0 cells must be 3..15")
        if channels is None:
            channels = list(range(1, cells + 1))
        if len(channels) != cells or sorted(set(channels)) != list(channels):
            raise ValueError("channels must list one rising VC input (1..15) per cell")
        if channels[0] < 1 or channels[-1] > 15:
            raise ValueError("channels must be VC inputs 1..15")
        if not 0 <= temps <= 3:
            raise ValueError("BQ769x0 temps must be 0..3 (TS1..TS3)")
        if temps and curve is None:
            raise ValueError("thermistors need an NtcCurve (curve=...)")
        if not 1 <= sense_uohm <= 100000:
            raise ValueError("sense_uohm must be 1..100000")
        self.i2c = i2c
        self.address = address
        self.cells = cells
        self.temps = temps
        self.channels = bytes(c - 1 for c in channels)
        self.curve = curve
        self.sense_uohm = sense_uohm
        self.balancer = balancer
        self.stale_reads = stale_reads
        self.gain_uv = 0
        self.offset_mv = 0
        self.errors = 0
        self.crc_errors = 0
        self.stale = 0
        self.xready = 0  # DEVICE_XREADY seen (internal chip fault)
        self.balance_limited = 0  # cells not bled because a neighbour was
        self.ready = False
        self.last_ok = False
        self.fets = FetBits(self)
        self.fets_sent = -1
        self._wr = (address << 1) & 0xFF
        self._rd = self._wr | 1
        self._one = bytearray(2)
        self._out = bytearray(2)
        # VC1_HI .. CC_LO: 40 registers, each with its CRC, in one block read
        self._block = bytearray(80)
        self._bal = bytearray(3)
        self._bal_sent = False
        self._no_conversion = 0
        self._bat = -1
        self._cc = 0
        self.setup()

    # ---- bus ----

    def _read(self, reg, buf):
        self.last_ok = False
        try:
            self.i2c.readfrom_mem_into(self.address, reg, buf)
        except OSError:
            self.errors += 1
            return False
        crc = TABLE[self._rd]
        for i in range(len(buf) >> 1):
            crc = TABLE[crc ^ buf[2 * i]]
            if crc != buf[2 * i + 1]:
                self.crc_errors += 1
                return False
            crc = 0
        self.last_ok = True
        return True

    def read_reg(self, reg):
        """One register, or -1 on error."""
        b = self._one
        return b[0] if self._read(reg, b) else -1

    def write_reg(self, reg, value):
        """Write one register with its CRC; sets last_ok."""
        out = self._out
        out[0] = value
        out[1] = TABLE[TABLE[TABLE[self._wr] ^ reg] ^ value]
        try:
            self.i2c.writeto_mem(self.address, reg, out)
        except OSError:
            self.errors += 1
            self.last_ok = False
            return False
        self.last_ok = True
        return True

    # ---- set-up ----

    def setup(self):
        """Gain and offset from the chip, ADC and coulomb counter on, FETs as wanted."""
        self.ready = False
        g1 = self.read_reg(ADCGAIN1)
        off = self.read_reg(ADCOFFSET)
        g2 = self.read_reg(ADCGAIN2)
        if g1 < 0 or off < 0 or g2 < 0:
            return False
        self.gain_uv = 365 + ((g1 & 0x0C) << 1 | g2 >> 5)
        self.offset_mv = off - 256 if off & 0x80 else off
        if not (
            self.write_reg(CC_CFG, 0x19)
            and self.write_reg(SYS_CTRL1, ADC_EN | (TEMP_SEL if self.temps else 0))
        ):
            return False
        self.fets_sent = -1
        self.fets.value(self.fets.wanted)  # writes SYS_CTRL2 with CC_EN
        if not self.last_ok:
            return False
        self._bal_sent = False
        self.ready = True
        return True

    # ---- the cell-monitor interface ----

    def read(self, cell_mv, temp_dc):
        """Fill cell_mv (mV) and temp_dc (0.1 degC); True after a fresh conversion."""
        if not self.ready and not self.setup():
            self._missing(cell_mv, temp_dc)
            return False
        stat = self.read_reg(SYS_STAT)
        if stat < 0:
            self.ready = False  # set up again: it may have been reset
            self._missing(cell_mv, temp_dc)
            return False
        fresh = False
        if stat & DEVICE_XREADY:
            self.xready += 1
            self.write_reg(SYS_STAT, DEVICE_XREADY)
        elif stat & CC_READY:
            self.write_reg(SYS_STAT, CC_READY)
            self._no_conversion = 0
            fresh = True
        else:
            self._no_conversion += 1
            if self._no_conversion == self.stale_reads:
                self.stale += 1
        b = self._block
        if not self._read(VC1_HI, b):
            self._missing(cell_mv, temp_dc)
            return False
        gain = self.gain_uv
        offset = self.offset_mv
        channels = self.channels
        for i in range(self.cells):
            k = 4 * channels[i]
            adc = (b[k] & 0x3F) << 8 | b[k + 2]
            cell_mv[i] = (adc * gain + 500) // 1000 + offset  # at most 16383 x 396 < 2**30
        adc = b[60] << 8 | b[62]  # BAT_HI 0x2A
        self._bat = (4 * adc * gain + 500) // 1000 + self.cells * offset
        curve = self.curve
        for t in range(self.temps):
            k = 64 + 4 * t  # TS1_HI 0x2C
            adc = (b[k] & 0x3F) << 8 | b[k + 2]
            # 382 uV/LSB against the 3.3 V pull-up, as a Q14 ratio: 382 x 16384 / 3.3 V
            temp_dc[t] = curve.temp_dc(adc * 6112 // 3223)
        cc = b[76] << 8 | b[78]  # CC_HI 0x32
        self._cc = cc - 0x10000 if cc & 0x8000 else cc
        if not self._bal_sent:
            self._send_balance()
        return fresh

    def _missing(self, cell_mv, temp_dc):
        for i in range(self.cells):
            cell_mv[i] = NOT_AVAILABLE
        for i in range(self.temps):
            temp_dc[i] = NOT_AVAILABLE
        self._bat = -1

    def balancer_temp_dc(self):
        """The balancer sensor's temperature if one was given, else NOT_AVAILABLE."""
        if self.balancer is None:
            return NOT_AVAILABLE
        return self.balancer.read()

    def set_balance(self, words):
        """Bleed the cells of words (4 x 16 bits), never two adjacent inputs at once."""
        bal = self._bal
        bal[0] = bal[1] = bal[2] = 0
        channels = self.channels
        last = -2
        for i in range(self.cells):
            if not words[i >> 4] >> (i & 15) & 1:
                continue
            ch = channels[i]
            if ch == last + 1:
                self.balance_limited += 1  # its neighbour below bleeds: skip this one
                continue
            bal[ch // 5] |= 1 << (ch % 5)
            last = ch
        self._send_balance()

    def _send_balance(self):
        bal = self._bal
        ok = True
        for g in range((self.channels[self.cells - 1] // 5) + 1):
            ok = self.write_reg(CELLBAL1 + g, bal[g]) and ok
        self._bal_sent = ok

    def open_wire(self):
        """The BQ769x0 has no open-wire test: 0."""
        return 0

    # ---- pack current and voltage (BoardHardware's shunt interface) ----

    def read_current_ma(self):
        """Coulomb counter of the last read(): 8.44 uV/LSB across the sense resistor."""
        if not self.ready or self._bat < 0:
            return NOT_AVAILABLE
        return self._cc * 8440 // self.sense_uohm

    def read_bus_mv(self):
        """BAT of the last read(), mV."""
        return NOT_AVAILABLE if self._bat < 0 else self._bat
