"""TI INA226 and INA228 shunt monitors as their I2C registers answer.

From the datasheets (INA226 SBOS547B section 7, INA228 SLYS021A section 7.6): registers
most significant byte first; the INA226's shunt voltage 01h (2.5 uV/LSB, signed) and bus
voltage 02h (1.25 mV/LSB), CVRF in MASK/ENABLE 06h, cleared by reading it; the INA228's
VSHUNT 4h and VBUS 5h with 20-bit values in bits 23..4 (312.5 or 78.125 nV and
195.3125 uV per LSB), CNVRF in DIAG_ALRT Bh, cleared by reading it. Both report TI's
manufacturer ID 5449h.

set(current_ma, bus_mv) is the analog side (the shunt resistance is the board's); the
converted values appear at the next conversion, which happens when convert() is called
(the simulator or the test calls it; stuck = True stops it).
"""

TI_ID = 0x5449


class _FakeShuntMonitor:
    WIDTH = 2  # bytes of a measurement register
    POWER_ON: tuple[tuple[int, int], ...] = ()  # (register, value after reset)
    WRITABLE: tuple[int, ...] = ()
    WIDE: tuple[int, ...] = ()  # registers of WIDTH bytes

    def __init__(self, address: int = 0x40, shunt_uohm: int = 100) -> None:
        self.address = address
        self.shunt_uohm = shunt_uohm
        self.regs: dict[int, int] = {}
        self.stuck = False  # conversions stopped
        self.current_ma = 0
        self.bus_mv = 0
        self.writes: list[tuple[int, int]] = []
        self.reset()

    def reset(self) -> None:
        self.regs.clear()
        for reg, value in self.POWER_ON:
            self.regs[reg] = value

    def set(self, current_ma: int, bus_mv: int) -> None:
        self.current_ma = current_ma
        self.bus_mv = bus_mv

    def convert(self) -> None:
        """One conversion of the analog inputs into the result registers."""
        if not self.stuck:
            self._convert()

    def _convert(self) -> None:
        raise NotImplementedError

    def _after_read(self, memaddr: int) -> None:
        """Flags that a read clears."""

    def read_mem(self, memaddr: int, buf: bytearray) -> None:
        value = self.regs.get(memaddr, 0)
        size = self.WIDTH if memaddr in self.WIDE else 2
        for i in range(len(buf)):
            shift = 8 * (size - 1 - i)
            buf[i] = (value >> shift) & 0xFF if shift >= 0 else 0
        self._after_read(memaddr)

    def write_mem(self, memaddr: int, buf: bytes | bytearray) -> None:
        value = buf[0] << 8 | buf[1]
        self.writes.append((memaddr, value))
        if memaddr in self.WRITABLE:
            self.regs[memaddr] = value


class FakeIna226(_FakeShuntMonitor):
    POWER_ON = ((0x00, 0x4127), (0x01, 0), (0x02, 0), (0x06, 0), (0xFE, TI_ID), (0xFF, 0x2260))
    WRITABLE = (0x00, 0x05, 0x06, 0x07)

    def _convert(self) -> None:
        shunt = self.current_ma * self.shunt_uohm // 2500  # nV / 2500 nV per LSB
        shunt = max(-32768, min(32767, shunt))
        self.regs[0x01] = shunt & 0xFFFF
        self.regs[0x02] = min(0x7FFF, self.bus_mv * 4 // 5)
        self.regs[0x06] = self.regs.get(0x06, 0) | 0x0008

    def _after_read(self, memaddr: int) -> None:
        if memaddr == 0x06:
            self.regs[0x06] &= ~0x0008


class FakeIna228(_FakeShuntMonitor):
    POWER_ON = (
        (0x00, 0),
        (0x01, 0xFB68),
        (0x04, 0),
        (0x05, 0),
        (0x0B, 0x0001),
        (0x3E, TI_ID),
        (0x3F, 0x2281),
    )
    WRITABLE = (0x00, 0x01, 0x02, 0x03, 0x0B)
    WIDE = (0x04, 0x05, 0x07, 0x08)
    WIDTH = 3

    def _convert(self) -> None:
        nv_per_lsb8 = 625 if self.regs[0x00] & 0x0010 else 2500  # x8: 78.125 / 312.5 nV
        shunt = self.current_ma * self.shunt_uohm * 8 // nv_per_lsb8
        shunt = max(-0x80000, min(0x7FFFF, shunt))
        self.regs[0x04] = (shunt & 0xFFFFF) << 4
        self.regs[0x05] = min(0xFFFFF, self.bus_mv * 128 // 25) << 4
        self.regs[0x0B] |= 0x0002

    def _after_read(self, memaddr: int) -> None:
        if memaddr == 0x0B:
            self.regs[0x0B] &= ~0x0002
