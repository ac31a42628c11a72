"""TI BQ76952 (3-16 cells) on I2C with CRC: the cell-monitor driver of bms.hw.board.

    from machine import I2C, Pin
    from bms.hw.bq76952 import Bq76952
    bq = Bq76952(I2C(0, sda=Pin(4), scl=Pin(5), freq=400_000), cells=16, temps=3)
    hw = BoardHardware(bq, relay_pin=bq.fets, feedback_pin=bq.fets, shunt=bq)  # FETs, CC2

Written from the BQ76952 technical reference manual (TI SLUUBY2B) and its software
development guide (TI SLUAA11B):
- I2C with CRC (TRM "I2C Communications Subsystem"; SLUAA11B section 4): 7-bit address 0x08
  (0x10 write / 0x11 read). Every data byte is followed by a CRC-8 (bms.hw.crc8); that of
  the first byte covers the address byte(s), the register and the byte, each later one only
  its byte. Registers auto-increment, so a block of direct commands is one transaction.
- Direct commands (TRM chapter 12.1, SLUAA11B section 1): Cell 1..16 Voltage 0x14..0x32 (mV,
  little endian), Stack Voltage 0x34 (userV, 10 mV by default), CC2 Current 0x3A (userA,
  mA by default, signed), Alarm Status 0x62 (FULLSCAN bit 7: a full measurement scan
  completed; a 1 written clears it), Alarm Enable 0x66, Internal Temperature 0x68 and
  TS1..TS3 0x70..0x74 (0.1 K, signed), FET Status 0x7F (CHG_FET bit 0, DSG_FET bit 2).
- Subcommands (TRM chapter 12.2, SLUAA11B section 2): the 16-bit command to 0x3E/0x3F, data
  into the transfer buffer from 0x40, then checksum (the bitwise inverse of the byte sum of
  command and data) and length (data + 4) to 0x60/0x61, which starts it; results are read
  from 0x40 once 0x3E/0x3F read back the command. Used: DEVICE_NUMBER 0x0001 (0x7695),
  MANUFACTURING_STATUS 0x0057 (FET_EN bit 4), FET_ENABLE 0x0022, ALL_FETS_OFF 0x0095,
  ALL_FETS_ON 0x0096, CB_ACTIVE_CELLS 0x0083 (a 16-bit mask of the cell inputs to bleed).

The chip keeps its own protections (over/under voltage, over-current, short circuit, over
temperature; configured in its data memory, which this driver leaves alone): they act on the
FETs faster than the node and stay as a second layer under the node's protection. The node's
relay is the FET pair: bq.fets drives ALL_FETS_ON / ALL_FETS_OFF and reports FET Status as
the relay feedback, so a FET the chip's protection opened is a relay mismatch to the node.

Cells: with fewer than 16 cells the cell inputs in use are those of the chip's "VCell Mode"
(data memory), given here as channels (1-based input numbers, lowest cell first; default:
the lowest cells - 1 inputs and VC16 for the top cell, the wiring the datasheet recommends).

Failures: a NACK or a wrong CRC makes that reading NOT_AVAILABLE (the whole block) and counts
(errors, crc_errors); read() then returns False, and a chip that stops completing scans
(no FULLSCAN for stale_reads readings) too (counted in stale). Nothing raises out of read().
"""

from bms.hw import NOT_AVAILABLE
from bms.hw.crc8 import TABLE

try:
    from time import sleep_us
except ImportError:  # CPython

    def sleep_us(us):
        import time  # noqa: PLC0415

        time.sleep(us / 1000000)


ADDRESS = 0x08
DEVICE_NUMBER = 0x7695

# Direct commands
CELL1 = 0x14
STACK = 0x34
CC2 = 0x3A
ALARM_STATUS = 0x62
ALARM_ENABLE = 0x66
INT_TEMP = 0x68
TS1 = 0x70
FET_STATUS = 0x7F
SUBCMD = 0x3E
BUFFER = 0x40
CHECKSUM = 0x60

# Subcommands
SUB_DEVICE_NUMBER = 0x0001
SUB_FET_ENABLE = 0x0022
SUB_MANUFACTURING_STATUS = 0x0057
SUB_CB_ACTIVE_CELLS = 0x0083
SUB_ALL_FETS_OFF = 0x0095
SUB_ALL_FETS_ON = 0x0096

FULLSCAN = 0x0080
# SSBC, SSA, PF, MSK_SFALERT as by default, plus FULLSCAN and ADSCAN latched (SLUAA11B 1.1)
ALARM_MASK = 0xF082
FET_EN = 0x0010


class FetSwitch:
    """The CHG and DSG FETs as the node's relay: a Pin-like value() for BoardHardware.

    value(1) / value(0) send ALL_FETS_ON / ALL_FETS_OFF when the wanted state changes (again
    at the next call if the bus failed); value() reads FET Status: 1 when both CHG and DSG
    are on, 0 otherwise, and 1 - (wanted) on a bus error so that the node sees a mismatch.
    """

    def __init__(self, chip):
        self.chip = chip
        self.wanted = 0
        self.sent = -1

    def value(self, v=None):
        chip = self.chip
        if v is not None:
            self.wanted = 1 if v else 0
            if self.sent != self.wanted and chip.subcommand(
                SUB_ALL_FETS_ON if self.wanted else SUB_ALL_FETS_OFF
            ):
                self.sent = self.wanted
            return self.wanted
        status = chip.read_u16(FET_STATUS, 1)
        if status < 0:
            return 1 - self.wanted
        return 1 if status & 0x05 == 0x05 else 0


class Bq76952:
    """Cell monitor: cells, temps, read(), balancer_temp_dc(), set_balance(), open_wire()."""

    def __init__(
        self,
        i2c,
        cells=16,
        temps=3,
        address=ADDRESS,
        channels=None,
        balancer=None,
        stale_reads=10,
        user_mv=10,
    ):
        if not 3 <= cells <= 16:
            raise ValueError("BQ76952 cells must be 3..16")
        if not 0 <= temps <= 3:
            raise ValueError("BQ76952 temps must be 0..3 (TS1..TS3)")
        if channels is None:
            channels = list(range(1, cells))
            channels.append(16)
        if len(channels) != cells or sorted(set(channels)) != list(channels):
            raise ValueError("channels must list one rising VC input (1..16) per cell")
        if channels[0] < 1 or channels[-1] > 16:
            raise ValueError("channels must be VC inputs 1..16")
        self.i2c = i2c
        self.address = address
        self.cells = cells
        self.temps = temps
        self.channels = bytes(c - 1 for c in channels)  # 0-based input of each cell
        self.balancer = balancer  # an Ntc or similar with read(); else the die temperature
        self.stale_reads = stale_reads
        self.user_mv = user_mv  # Stack Voltage units (userV), mV
        self.errors = 0  # NACKs and other bus errors
        self.crc_errors = 0
        self.stale = 0
        self.ready = False
        self.fets = FetSwitch(self)
        self._wr = (address << 1) & 0xFF
        self._rd = self._wr | 1
        # Every transfer has its own buffer of its exact size (a memoryview slice allocates).
        self._cells_buf = bytearray(64)  # 32 data bytes, each with its CRC
        self._word = bytearray(4)
        self._byte = bytearray(2)
        self._temps_buf = bytearray(4 * max(temps, 1))
        self._out = bytearray(4)
        self._sub = bytearray(2)
        self._balance = 0  # wanted CB_ACTIVE_CELLS mask
        self._balance_sent = -1
        self._no_scan = 0
        self.setup()

    # ---- bus, with CRC ----

    def _read(self, reg, buf):
        """Read len(buf) / 2 data bytes from reg, each followed by its CRC. False on an error."""
        n = len(buf) >> 1
        try:
            self.i2c.readfrom_mem_into(self.address, reg, buf)
        except OSError:
            self.errors += 1
            return False
        crc = TABLE[TABLE[TABLE[self._wr] ^ reg] ^ self._rd]
        for i in range(n):
            crc = TABLE[crc ^ buf[2 * i]]
            if crc != buf[2 * i + 1]:
                self.crc_errors += 1
                return False
            crc = 0
        return True

    def read_u16(self, reg, n=2):
        """A direct command of n (1 or 2) bytes, little endian, unsigned; -1 on error."""
        b = self._word if n == 2 else self._byte
        if not self._read(reg, b):
            return -1
        return b[0] if n == 1 else b[0] | b[2] << 8

    def _write(self, reg, data):
        """Write 2 bytes of data to reg, each followed by its CRC. False on a bus error."""
        out = self._out
        crc = TABLE[TABLE[self._wr] ^ reg]
        for i in range(2):
            crc = TABLE[crc ^ data[i]]
            out[2 * i] = data[i]
            out[2 * i + 1] = crc
            crc = 0
        try:
            self.i2c.writeto_mem(self.address, reg, out)
        except OSError:
            self.errors += 1
            return False
        return True

    def write_u16(self, reg, value):
        s = self._sub
        s[0] = value & 0xFF
        s[1] = value >> 8
        return self._write(reg, s)

    def subcommand(self, command, data=-1):
        """Send a subcommand, with 16 bits of data unless data is -1. False on a bus error."""
        if data < 0:
            return self.write_u16(SUBCMD, command)
        s = self._sub
        total = (command & 0xFF) + (command >> 8) + (data & 0xFF) + (data >> 8)
        if not self.write_u16(SUBCMD, command) or not self.write_u16(BUFFER, data):
            return False
        s[0] = ~total & 0xFF
        s[1] = 6  # two data bytes + 4
        return self._write(CHECKSUM, s)

    def subcommand_read(self, command, polls=10):
        """A subcommand's first 16-bit result (used at set-up only); -1 on error or timeout."""
        if not self.write_u16(SUBCMD, command):
            return -1
        for _ in range(polls):  # 0x3E/0x3F read back 0xFF while the chip is busy
            if self.read_u16(SUBCMD) == command:
                return self.read_u16(BUFFER)
            sleep_us(300)  # SLUAA11B: a subcommand's data is ready after about 0.5 ms
        return -1

    # ---- set-up ----

    def setup(self):
        """Identify the chip, put its FETs under host control, latch FULLSCAN, open the FETs."""
        self.ready = False
        if self.subcommand_read(SUB_DEVICE_NUMBER) != DEVICE_NUMBER:
            return False
        status = self.subcommand_read(SUB_MANUFACTURING_STATUS)
        if status < 0:
            return False
        if not status & FET_EN and not self.subcommand(SUB_FET_ENABLE):
            return False  # FET test mode: FETs follow only FET_CONTROL; normal mode wanted
        if not self.write_u16(ALARM_ENABLE, ALARM_MASK):
            return False
        self.fets.sent = -1
        self.fets.value(self.fets.wanted)
        self._balance_sent = -1
        self.ready = True
        return True

    # ---- the cell-monitor interface ----

    def read(self, cell_mv, temp_dc):
        """Fill cell_mv (mV) and temp_dc (0.1 degC); True after a completed scan."""
        if not self.ready and not self.setup():
            self._missing(cell_mv, temp_dc)
            return False
        fresh = False
        alarm = self.read_u16(ALARM_STATUS)
        if alarm >= 0 and alarm & FULLSCAN:
            self.write_u16(ALARM_STATUS, FULLSCAN)  # clear: set again by the next scan
            self._no_scan = 0
            fresh = True
        elif alarm >= 0:
            self._no_scan += 1
            if self._no_scan == self.stale_reads:
                self.stale += 1
        buf = self._cells_buf
        if self._read(CELL1, buf):
            channels = self.channels
            for i in range(self.cells):
                k = 4 * channels[i]
                cell_mv[i] = buf[k] | buf[k + 2] << 8
        else:
            fresh = False
            for i in range(self.cells):
                cell_mv[i] = NOT_AVAILABLE
        if self.temps:
            t = self._temps_buf
            if self._read(TS1, t):
                for i in range(self.temps):
                    temp_dc[i] = _decikelvin_to_dc(t[4 * i] | t[4 * i + 2] << 8)
            else:
                for i in range(self.temps):
                    temp_dc[i] = NOT_AVAILABLE
        if self._balance_sent != self._balance:
            self._send_balance()
        if alarm < 0:
            self.ready = False  # no answer: identify it again (it may have been reset)
            return False
        return fresh

    def _missing(self, cell_mv, temp_dc):
        for i in range(self.cells):
            cell_mv[i] = NOT_AVAILABLE
        for i in range(self.temps):
            temp_dc[i] = NOT_AVAILABLE

    def balancer_temp_dc(self):
        """Balancer temperature: the balancer sensor if given, else the chip's die."""
        if self.balancer is not None:
            return self.balancer.read()
        raw = self.read_u16(INT_TEMP)
        return NOT_AVAILABLE if raw < 0 else _decikelvin_to_dc(raw)

    def set_balance(self, words):
        """Bleed the cells of words (4 x 16 bits, cell 1 = bit 0 of words[0])."""
        mask = 0
        channels = self.channels
        for i in range(self.cells):
            if words[i >> 4] >> (i & 15) & 1:
                mask |= 1 << channels[i]
        self._balance = mask
        self._send_balance()

    def _send_balance(self):
        if self.subcommand(SUB_CB_ACTIVE_CELLS, self._balance):
            self._balance_sent = self._balance

    def open_wire(self):
        """Not measured by this driver (the chip's own checks act on its FETs): 0."""
        return 0

    # ---- pack current and voltage (BoardHardware's shunt interface) ----

    def read_current_ma(self):
        """CC2 Current (userA = mA by default), positive = charging; or NOT_AVAILABLE."""
        raw = self.read_u16(CC2)
        if raw < 0:
            return NOT_AVAILABLE
        return raw - 0x10000 if raw & 0x8000 else raw

    def read_bus_mv(self):
        """Stack Voltage in mV, or NOT_AVAILABLE."""
        raw = self.read_u16(STACK)
        return NOT_AVAILABLE if raw < 0 else raw * self.user_mv


def _decikelvin_to_dc(raw):
    if raw & 0x8000:
        raw -= 0x10000
    return raw - 2732  # 0.1 K -> 0.1 degC (273.15 K, rounded)
