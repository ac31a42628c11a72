"""TI INA226 / INA228 shunt monitors on I2C: pack current and pack voltage.

    from machine import I2C, Pin
    from bms.hw.ina22x import Ina228
    shunt = Ina228(I2C(0, sda=Pin(0), scl=Pin(1)), address=0x40, shunt_uohm=100)  # 100 uOhm
    shunt.read_current_ma()   # mA, positive = charging (IN+ on the charger side)
    shunt.read_bus_mv()       # mV at VBUS

BoardHardware(shunt=...) takes the pack current (and, without a pack_adc, the pack voltage)
from it instead of an ADC hall sensor.

Written from the datasheets: INA226 (TI SBOS547B, section 7 "Registers": configuration 00h,
shunt voltage 01h at 2.5 uV/LSB, bus voltage 02h at 1.25 mV/LSB, mask/enable 06h with the
conversion-ready flag CVRF bit 3, manufacturer ID FEh = 5449h; section 6.5.5.3: 16-bit
registers, most significant byte first) and INA228 (TI SLYS021A, section 7.6 "Register
Maps": CONFIG 0h with ADCRANGE bit 4, ADC_CONFIG 1h, VSHUNT 4h and VBUS 5h as 20-bit values
in bits 23..4 of 24-bit registers at 312.5 nV (78.125 nV with ADCRANGE) and 195.3125 uV per
LSB, DIAG_ALRT Bh with the conversion-ready flag CNVRF bit 1, MANUFACTURER_ID 3Eh = 5449h).
The INA226 measures bus voltages up to 36 V, the INA228 up to 85 V.

The current is computed from the shunt voltage here (no calibration register): mA = nV /
uOhm. Everything stays within MicroPython's small ints. A bus error is a missing reading
(NOT_AVAILABLE) and counts in errors; so is a chip that stopped converting (its ready flag
not set for stale_reads readings, counted in stale). A chip that never answered is set up
again at the next reading, so one that was unplugged or reset at boot comes back.
"""

from bms.hw import NOT_AVAILABLE

MANUFACTURER_TI = 0x5449


class _ShuntMonitor:
    def __init__(self, i2c, address, shunt_uohm, stale_reads):
        if not 1 <= shunt_uohm <= 1000000:
            raise ValueError("shunt_uohm must be 1..1000000")
        if stale_reads < 1:
            raise ValueError("stale_reads must be >= 1")
        self.i2c = i2c
        self.address = address
        self.shunt_uohm = shunt_uohm
        self.stale_reads = stale_reads
        self.errors = 0  # bus errors and a wrong manufacturer ID
        self.stale = 0  # readings refused because no conversion completed
        self.ready = False  # set up and answering
        self._not_converted = 0
        self._b2 = bytearray(2)
        self._b3 = bytearray(3)
        self.setup()

    def setup(self):
        """Check the chip and configure continuous conversions; False if it did not answer."""
        try:
            self.i2c.readfrom_mem_into(self.address, self._ID_REG, self._b2)
            if (self._b2[0] << 8 | self._b2[1]) != MANUFACTURER_TI:
                self.errors += 1
                self.ready = False
                return False
            self._configure()
        except OSError:
            self.errors += 1
            self.ready = False
            return False
        self.ready = True
        self._not_converted = 0
        return True

    def _write16(self, reg, value):
        b = self._b2
        b[0] = value >> 8
        b[1] = value & 0xFF
        self.i2c.writeto_mem(self.address, reg, b)

    def _read16(self, reg):
        b = self._b2
        self.i2c.readfrom_mem_into(self.address, reg, b)
        return b[0] << 8 | b[1]

    def read_current_ma(self):
        """Pack current in mA (positive = into the battery), or NOT_AVAILABLE."""
        if not self.ready and not self.setup():
            return NOT_AVAILABLE
        try:
            if self._converted():
                self._not_converted = 0
            else:
                self._not_converted += 1
                if self._not_converted >= self.stale_reads:
                    self.stale += 1
                    return NOT_AVAILABLE
            return self._shunt_nv() // self.shunt_uohm
        except OSError:
            self.errors += 1
            self.ready = False  # set up again: the chip may have been reset
            return NOT_AVAILABLE

    def read_bus_mv(self):
        """Voltage at VBUS in mV, or NOT_AVAILABLE."""
        if not self.ready and not self.setup():
            return NOT_AVAILABLE
        if self._not_converted >= self.stale_reads:
            return NOT_AVAILABLE
        try:
            return self._bus_mv()
        except OSError:
            self.errors += 1
            self.ready = False
            return NOT_AVAILABLE


class Ina226(_ShuntMonitor):
    """INA226: 16-bit shunt (2.5 uV/LSB, +-81.92 mV) and bus (1.25 mV/LSB, up to 36 V)."""

    _ID_REG = 0xFE
    # CONFIG 00h: averages 16 (AVG=010), bus and shunt 1.1 ms (100), shunt and bus
    # continuous (MODE=111): a conversion every 35 ms, one per node cycle or better.
    CONFIG = 0x4000 | 0b010 << 9 | 0b100 << 6 | 0b100 << 3 | 0b111

    def __init__(self, i2c, address=0x40, shunt_uohm=100, stale_reads=5):
        super().__init__(i2c, address, shunt_uohm, stale_reads)

    def _configure(self):
        self._write16(0x00, self.CONFIG)

    def _converted(self):
        return bool(self._read16(0x06) & 0x0008)  # reading MASK/ENABLE clears CVRF

    def _shunt_nv(self):
        raw = self._read16(0x01)
        if raw & 0x8000:
            raw -= 0x10000
        return raw * 2500  # at most 32768 x 2500 < 2**30

    def _bus_mv(self):
        return self._read16(0x02) * 5 // 4


class Ina228(_ShuntMonitor):
    """INA228: 20-bit shunt (312.5 or 78.125 nV/LSB) and bus (195.3125 uV/LSB, up to 85 V)."""

    _ID_REG = 0x3E
    # ADC_CONFIG 1h: continuous bus, shunt and temperature (MODE=Fh), bus and shunt 1052 us
    # (101), temperature 50 us (000), averages 16 (010): a conversion every 35 ms.
    ADC_CONFIG = 0xF << 12 | 0b101 << 9 | 0b101 << 6 | 0b000 << 3 | 0b010

    def __init__(self, i2c, address=0x40, shunt_uohm=100, low_range=False, stale_reads=5):
        self.low_range = low_range  # ADCRANGE: +-40.96 mV instead of +-163.84 mV
        super().__init__(i2c, address, shunt_uohm, stale_reads)

    def _configure(self):
        self._write16(0x00, 0x0010 if self.low_range else 0x0000)
        self._write16(0x01, self.ADC_CONFIG)

    def _converted(self):
        return bool(self._read16(0x0B) & 0x0002)  # CNVRF, cleared by this read

    def _read20(self, reg):
        b = self._b3
        self.i2c.readfrom_mem_into(self.address, reg, b)
        return (b[0] << 16 | b[1] << 8 | b[2]) >> 4

    def _shunt_nv(self):
        raw = self._read20(0x04)
        if raw & 0x80000:
            raw -= 0x100000
        # 312.5 nV = 625/2, 78.125 nV = 625/8; at most 524288 x 625 < 2**30
        return raw * 625 // (8 if self.low_range else 2)

    def _bus_mv(self):
        return self._read20(0x05) * 25 // 128  # 195.3125 uV = 25/128 mV
