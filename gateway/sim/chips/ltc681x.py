"""A daisy chain of LTC6811-1 / LTC6813-1 as their SPI port answers (written from their
datasheets; see bms.hw.ltc681x for the sections).

One chip-select window is one command: CMD0 CMD1 PEC0 PEC1, then for a write 8 bytes per chip
(the farthest chip's first), for a read 8 bytes per chip clocked out (the nearest chip's
first), each group of 6 data bytes with its PEC. A command with a wrong PEC is ignored, as is
a chip's write data with a wrong PEC. A byte alone in a window (the host waking the isoSPI
link) does nothing.

Analog side per chip: cell voltages (mV, cells on C1..), GPIO voltages (mV) and VREF2. ADCV
converts the cells into the cell registers (100 uV codes), ADAX the GPIOs and VREF2, ADOW
models the open-wire test currents, CLRCELL sets the cell registers to 0xFFFF.

Faults: stuck (conversions stop), bad_pec (the next N groups sent have a wrong PEC),
open_wire(chip, n) (sense wire C(n) of a chip is broken: n = 0..cells). An open wire C(n)
floats: under ADCV both cells next to it read the mean of the two, under the pull-up current
it rises to C(n+1), under the pull-down current it falls to C(n-1) (the behaviour the
datasheet's detection rule relies on).
"""

from gateway.sim.chips.crc import pec15


class FakeCs:
    """The chip-select pin of the chain (active low)."""

    def __init__(self, chain: "FakeLtc681xChain") -> None:
        self.chain = chain
        self.level = 1

    def value(self, v: int | None = None) -> int:
        if v is None:
            return self.level
        if self.level == 1 and v == 0:
            self.chain.begin()
        elif self.level == 0 and v == 1:
            self.chain.end()
        self.level = v
        return v


class FakeLtcChip:
    def __init__(self, inputs: int) -> None:
        self.inputs = inputs
        self.cell_mv = [3300] * inputs
        self.gpio_mv = [1500] * 9  # mV, ints
        self.ref_mv = 3000
        self.cfga = bytearray(6)
        self.cfgb = bytearray(6)
        self.cell_codes = [0xFFFF] * 18
        self.aux_codes = [0xFFFF] * 12  # G1..G5, REF, G6..G9, reserved
        self.open_wires: list[int] = []  # broken sense wires C(n)

    def dcc(self) -> int:
        """Bleed outputs: bit i = cell i + 1."""
        a, b = self.cfga, self.cfgb
        return a[4] | (a[5] & 0x0F) << 8 | (b[0] >> 4) << 12 | (b[1] & 0x03) << 16

    def _raw(self, n: int) -> int:
        """Voltage of C(n) above C(0), mV."""
        v = 0
        for i in range(n):
            v += self.cell_mv[i]
        return v

    def _pin(self, n: int, pull: int) -> int:
        """Voltage of C(n) with the test current (pull: 0 none, 1 up, -1 down)."""
        if n in self.open_wires:
            if pull > 0 and n < self.inputs:
                return self._raw(n + 1)
            if pull < 0 and n > 0:
                return self._raw(n - 1)
            if pull == 0 and 0 < n < self.inputs:
                return (self._raw(n - 1) + self._raw(n + 1)) // 2
        return self._raw(n)

    def convert_cells(self, pull: int) -> None:
        for i in range(self.inputs):
            code = (self._pin(i + 1, pull) - self._pin(i, pull)) * 10
            self.cell_codes[i] = max(0, min(0xFFFE, code))

    def convert_aux(self) -> None:
        for i in range(5):
            self.aux_codes[i] = self.gpio_mv[i] * 10
        self.aux_codes[5] = self.ref_mv * 10
        for i in range(4):
            self.aux_codes[6 + i] = self.gpio_mv[5 + i] * 10


class FakeLtc681xChain:
    """machine.SPI (write, readinto) and the CS pin of a chain of `chips` chips."""

    def __init__(self, chips: int = 1, kind: int = 6811) -> None:
        self.kind = kind
        self.chips = [FakeLtcChip(12 if kind == 6811 else 18) for _ in range(chips)]
        self.cs = FakeCs(self)
        self.stuck = False
        self.bad_pec = 0
        self.pec_rejected = 0
        self.commands: list[int] = []  # every command heard, while record is True
        self.record = True
        self._selected = False
        self._cmd = bytearray(4)
        self._n = 0  # bytes of the command received in this window
        self._data = bytearray(8 * chips)
        self._m = 0  # data bytes received or sent in this window
        self._code = -1
        self._reading = False

    # ---- SPI ----

    def begin(self) -> None:
        self._selected = True
        self._n = 0
        self._m = 0
        self._code = -1
        self._reading = False

    def write(self, buf: bytes | bytearray) -> None:
        assert self._selected, "SPI transfer without chip select"
        for i in range(len(buf)):
            b = buf[i]
            if self._n < 4:
                self._cmd[self._n] = b
                self._n += 1
                if self._n == 4:
                    self._command()
            elif self._m < len(self._data):
                self._data[self._m] = b
                self._m += 1

    def readinto(self, buf: bytearray, write: int = 0) -> None:
        assert self._selected, "SPI transfer without chip select"
        for i in range(len(buf)):
            if self._reading and self._m < len(self._data):
                buf[i] = self._data[self._m]
                self._m += 1
            else:
                buf[i] = 0xFF  # nothing driven: the line idles high

    def end(self) -> None:
        self._selected = False
        if self._code == 0x001 or self._code == 0x024:  # noqa: PLR1714
            self._write_config(self._code == 0x024)

    # ---- commands ----

    def _command(self) -> None:
        c = self._cmd
        if pec15(c, 0, 2) != (c[2] << 8 | c[3]):
            self.pec_rejected += 1
            return
        code = c[0] << 8 | c[1]
        self._code = code
        if self.record:
            self.commands.append(code)
        if code in READS:
            self._prepare_read(code)
            return
        if code == 0x711:  # CLRCELL: digital, works on a chip whose ADC is stuck too
            for chip in self.chips:
                for i in range(18):
                    chip.cell_codes[i] = 0xFFFF
        elif self.stuck:
            return
        elif code & 0x668 == 0x260:  # ADCV
            for chip in self.chips:
                chip.convert_cells(0)
        elif code & 0x628 == 0x228:  # ADOW
            for chip in self.chips:
                chip.convert_cells(1 if code & 0x40 else -1)
        elif code & 0x678 == 0x460:  # ADAX
            for chip in self.chips:
                chip.convert_aux()

    def _prepare_read(self, code: int) -> None:
        kind, group = READS[code]
        for k in range(len(self.chips)):  # the nearest chip first
            chip = self.chips[k]
            j = 8 * k
            for m in range(3):
                if kind == "cv":
                    value = chip.cell_codes[3 * group + m] if 3 * group + m < 18 else 0xFFFF
                elif kind == "aux":
                    value = chip.aux_codes[3 * group + m]
                else:
                    cfg = chip.cfga if group == 0 else chip.cfgb
                    value = cfg[2 * m] | cfg[2 * m + 1] << 8
                self._data[j + 2 * m] = value & 0xFF
                self._data[j + 2 * m + 1] = value >> 8
            pec = pec15(self._data, j, j + 6)
            if self.bad_pec:
                self.bad_pec -= 1
                pec ^= 0x0100
            self._data[j + 6] = pec >> 8
            self._data[j + 7] = pec & 0xFF
        self._reading = True
        self._m = 0

    def _write_config(self, group_b: bool) -> None:
        n = len(self.chips)
        if self._m < 8 * n:
            return  # incomplete: the chips latch nothing
        for k in range(n):
            chip = self.chips[k]
            j = 8 * (n - 1 - k)  # the farthest chip's data came first
            if pec15(self._data, j, j + 6) != (self._data[j + 6] << 8 | self._data[j + 7]):
                self.pec_rejected += 1
                continue
            cfg = chip.cfgb if group_b else chip.cfga
            for i in range(6):
                cfg[i] = self._data[j + i]

    # ---- the analog side ----

    def set_cells(self, mv: list[int], per_chip: int) -> None:
        """Cell voltages of the whole stack, per_chip cells on each chip's C1.. (the rest 0)."""
        for k, chip in enumerate(self.chips):
            for i in range(chip.inputs):
                chip.cell_mv[i] = mv[k * per_chip + i] if i < per_chip else 0

    def balance_mask(self, per_chip: int) -> int:
        mask = 0
        for k, chip in enumerate(self.chips):
            mask |= chip.dcc() << (k * per_chip)
        return mask


READS = {
    0x002: ("cfg", 0),
    0x026: ("cfg", 1),
    0x004: ("cv", 0),
    0x006: ("cv", 1),
    0x008: ("cv", 2),
    0x00A: ("cv", 3),
    0x009: ("cv", 4),
    0x00B: ("cv", 5),
    0x00C: ("aux", 0),
    0x00E: ("aux", 1),
    0x00D: ("aux", 2),
    0x00F: ("aux", 3),
}
