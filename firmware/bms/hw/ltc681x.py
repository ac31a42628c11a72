"""Analog Devices LTC6811-1 / LTC6813-1 daisy chains on SPI (isoSPI through an LTC6820).

    from machine import SPI, Pin
    from bms.hw.ltc681x import Ltc681x
    from bms.hw.ntc import NtcCurve
    spi = SPI(2, baudrate=1_000_000, polarity=1, phase=1, sck=Pin(18), mosi=Pin(23), miso=Pin(19))
    afe = Ltc681x(spi, Pin(5, Pin.OUT, value=1), chips=2, kind=6813, temps_per_chip=2,
                  curve=NtcCurve(beta=3435, r25_ohm=10_000, series_ohm=10_000))

The chain foxBMS uses. Written from the LTC6811-1/-2 datasheet (Analog Devices, rev. B) and
the LTC6813-1 datasheet (rev. B), sections "Serial Interface Overview", "Daisy-Chain
Operation", "Network Layer: Packet Error Code", "Commands" (Tables 36-38 of the LTC6811,
Tables 38-40 of the LTC6813), "Memory Map" and "Open Wire Check (ADOW Command)":

- Every command is CMD0 CMD1 PEC0 PEC1; a write follows it with 6 data bytes + 2 PEC bytes
  per chip, for the chip farthest from the host first; a read clocks out 8 bytes per chip,
  the chip nearest the host (the bottom of the stack here: cells 1..n) first.
- PEC: 15-bit CRC, polynomial x^15+x^14+x^10+x^8+x^7+x^4+x^3+1, seed 000000000010000,
  sent as 16 bits with a 0 appended (worked example: 0x0001 -> 0x3D6E). Table-driven here.
- ADCV (0x260 | MD << 7 | DCP << 4 | CH), ADAX (0x460 | MD << 7 | CHG), ADOW (0x228 | MD << 7
  | PUP << 6 | DCP << 4 | CH), CLRCELL 0x711; RDCVA..D 0x004/0x006/0x008/0x00A and on the
  LTC6813 RDCVE/F 0x009/0x00B, RDAUXA/B 0x00C/0x00E, WRCFGA 0x001 and on the LTC6813 WRCFGB
  0x024. Cell codes are 100 uV per LSB, little endian; a cleared register reads 0xFFFF.
- Configuration A: byte 0 GPIO5..1 pull-downs off (1) and REFON, bytes 4-5 DCC1..12;
  configuration B (LTC6813): byte 0 bits 4..7 DCC13..16, byte 1 bits 0..1 DCC17..18.
- Open wire: ADOW with the pull-up current at least twice, read CELLPU; with the pull-down
  twice, read CELLPD; C(n) is open when CELLPU(n+1) - CELLPD(n+1) < -400 mV, C(0) when
  CELLPU(1) = 0, the top wire when CELLPD(top) = 0.

One read() is one step, so no call waits for a conversion (7 kHz mode: a few ms): it reads
what the previous call started, then starts the next: cell voltages, then the GPIO inputs
(thermistors on GPIO1..5 against VREF2, converted with an NtcCurve), and every
open_wire_every steps the four ADOW steps. read() returns True after a step that read all
cell voltages. Before reading cells, they are cleared (CLRCELL), so a conversion that did not
happen (stuck chip) reads 0xFFFF and is refused. A wrong PEC makes that chip's values of
that register group NOT_AVAILABLE and counts (pec_errors); nothing raises out of read().
Balancing: DCP = 0, so the chips pause bleeding while they convert cell voltages.
"""

from bms.hw import NOT_AVAILABLE

try:
    from time import sleep_us
except ImportError:  # CPython
    import time

    def sleep_us(us):
        time.sleep(us / 1000000)


MD_NORMAL = 2  # 7 kHz
ADCV = 0x260 | MD_NORMAL << 7  # all cells, DCP = 0
ADAX = 0x460 | MD_NORMAL << 7  # all GPIOs and VREF2
ADOW_PD = 0x228 | MD_NORMAL << 7
ADOW_PU = ADOW_PD | 1 << 6
CLRCELL = 0x711
WRCFGA = 0x001
WRCFGB = 0x024
RDCV = (0x004, 0x006, 0x008, 0x00A, 0x009, 0x00B)  # groups A..F
RDAUXA = 0x00C
RDAUXB = 0x00E
CLEARED = 0xFFFF
OPEN_WIRE_UV = -4000  # -400 mV in 100 uV codes

# What read() does next
_CELLS = 0
_AUX = 1
_PU1 = 2
_PU2 = 3
_PD1 = 4
_PD2 = 5


def _pec_table():
    table = bytearray(512)
    for i in range(256):
        rem = i << 7
        for _ in range(8):
            rem = (rem << 1) ^ 0x4599 if rem & 0x4000 else rem << 1
        rem &= 0x7FFF
        table[2 * i] = rem >> 8
        table[2 * i + 1] = rem & 0xFF
    return bytes(table)


PEC_TABLE = _pec_table()


def pec15(buf, start, end):
    """The 16-bit PEC of buf[start:end] (15 bits, a 0 appended)."""
    rem = 16
    t = PEC_TABLE
    for i in range(start, end):
        k = ((rem >> 7) ^ buf[i]) & 0xFF
        rem = ((rem << 8) ^ (t[2 * k] << 8 | t[2 * k + 1])) & 0x7FFF
    return rem << 1


class Ltc681x:
    """Cell monitor: cells, temps, read(), balancer_temp_dc(), set_balance(), open_wire()."""

    def __init__(
        self,
        spi,
        cs,
        chips=1,
        kind=6811,
        cells_per_chip=None,
        temps_per_chip=0,
        curve=None,
        balancer=None,
        open_wire_every=100,
    ):
        if kind not in (6811, 6813):
            raise ValueError("kind must be 6811 or 6813")
        inputs = 12 if kind == 6811 else 18
        if cells_per_chip is None:
            cells_per_chip = inputs
        if not 4 <= cells_per_chip <= inputs:
            raise ValueError("cells_per_chip must be 4.." + str(inputs) + " for an LTC" + str(kind))
        if not 1 <= chips <= 8:
            raise ValueError("chips must be 1..8")
        if not 0 <= temps_per_chip <= 5:
            raise ValueError("temps_per_chip must be 0..5 (GPIO1..5)")
        if temps_per_chip and curve is None:
            raise ValueError("thermistors need an NtcCurve (curve=...)")
        self.spi = spi
        self.cs = cs
        self.chips = chips
        self.kind = kind
        self.per_chip = cells_per_chip
        self.groups = (cells_per_chip + 2) // 3  # register groups holding its cells
        self.cells = chips * cells_per_chip
        self.temps_per_chip = temps_per_chip
        self.temps = chips * temps_per_chip
        self.curve = curve
        self.balancer = balancer
        self.open_wire_every = open_wire_every
        self.pec_errors = 0
        self.stale = 0  # cell conversions that did not happen
        self.errors = 0  # SPI errors (OSError)
        self._cmd = bytearray(4)
        self._rx = bytearray(8 * chips)
        self._tx = bytearray(8 * chips)
        self._wake = b"\xff"
        self._cleared = False
        self._dcc = [0] * chips  # bleed bits per chip, bit i = its cell i + 1
        self._pu = [[0] * cells_per_chip for _ in range(chips)]
        self._ow = [0] * chips  # per chip: cells next to an open wire
        self._aux = [[0] * 6 for _ in range(chips)]  # G1..G5, REF
        self._step = _CELLS
        self._started = -1  # what the last call started
        self._count = 0
        self._wake_up()

    # ---- SPI ----

    def _wake_up(self):
        """Wake the isoSPI ports and the cores from sleep (t_WAKE, 400 us, per chip)."""
        for _ in range(self.chips):
            self.cs.value(0)
            sleep_us(400)
            self.cs.value(1)

    def _wake_idle(self):
        """A byte per chip wakes the isoSPI links from IDLE before a command (datasheet:
        "Waking Up the Serial Interface")."""
        cs = self.cs
        spi = self.spi
        for _ in range(self.chips):
            cs.value(0)
            spi.write(self._wake)
            cs.value(1)

    def _command(self, code):
        c = self._cmd
        c[0] = code >> 8
        c[1] = code & 0xFF
        pec = pec15(c, 0, 2)
        c[2] = pec >> 8
        c[3] = pec & 0xFF

    def _send(self, code):
        self._command(code)
        cs = self.cs
        cs.value(0)
        try:
            self.spi.write(self._cmd)
        finally:
            cs.value(1)

    def _read_group(self, code):
        """Read one register group of every chip into _rx; a bitmask of chips with a bad PEC."""
        self._command(code)
        rx = self._rx
        cs = self.cs
        cs.value(0)
        try:
            self.spi.write(self._cmd)
            self.spi.readinto(rx, 0xFF)
        finally:
            cs.value(1)
        bad = 0
        for k in range(self.chips):
            j = 8 * k
            if pec15(rx, j, j + 6) != (rx[j + 6] << 8 | rx[j + 7]):
                bad |= 1 << k
                self.pec_errors += 1
        return bad

    def _write_config(self):
        """WRCFGA (and WRCFGB on the LTC6813) with REFON, GPIO pull-downs off and DCC."""
        tx = self._tx
        chips = self.chips
        for group in (0, 1) if self.kind == 6813 else (0,):
            for k in range(chips):
                j = 8 * (chips - 1 - k)  # the farthest chip's data goes first
                dcc = self._dcc[k]
                for i in range(6):
                    tx[j + i] = 0
                if group == 0:
                    tx[j] = 0xFC  # GPIO5..1 pull-downs off, REFON
                    tx[j + 4] = dcc & 0xFF
                    tx[j + 5] = (dcc >> 8) & 0x0F
                else:
                    tx[j] = 0x0F | (dcc >> 8) & 0xF0  # GPIO9..6 pull-downs off, DCC13..16
                    tx[j + 1] = (dcc >> 16) & 0x03  # DCC17, DCC18
                pec = pec15(tx, j, j + 6)
                tx[j + 6] = pec >> 8
                tx[j + 7] = pec & 0xFF
            self._command(WRCFGA if group == 0 else WRCFGB)
            cs = self.cs
            cs.value(0)
            try:
                self.spi.write(self._cmd)
                self.spi.write(tx)
            finally:
                cs.value(1)

    # ---- reading ----

    def _cell_codes(self, into, pull):
        """Read every cell group into `into` (cell_mv in mV, or the open-wire arrays in codes).

        pull: 0 = cell voltages (cleared codes refused), 1 = pull-up step, 2 = pull-down step.
        True when every cell of every chip arrived with a good PEC.
        """
        ok = True
        per = self.per_chip
        rx = self._rx
        for g in range(self.groups):
            bad = self._read_group(RDCV[g])
            for k in range(self.chips):
                for m in range(3):
                    cell = 3 * g + m
                    if cell >= per:
                        break
                    j = 8 * k + 2 * m
                    code = rx[j] | rx[j + 1] << 8
                    if bad >> k & 1:
                        value = NOT_AVAILABLE
                        ok = False
                    elif pull:
                        value = code
                    elif code == CLEARED:
                        value = NOT_AVAILABLE  # not converted since CLRCELL
                        ok = False
                        self._cleared = True
                    else:
                        value = (code + 5) // 10  # 100 uV -> mV, rounded
                    if pull == 1:
                        self._pu[k][cell] = value
                    elif pull == 2:
                        self._open_wires(k, cell, value)
                    else:
                        into[k * per + cell] = value
        return ok

    def _open_wires(self, k, cell, pd):
        """Apply the datasheet's rule to one cell of chip k (pd: its pull-down code)."""
        pu = self._pu[k][cell]
        mask = self._ow[k] if cell else 0
        if pu < 0 or pd < 0:  # NOT_AVAILABLE: a bad PEC
            self._ow[k] = mask
            return
        if cell == 0 and pu == 0:
            mask |= 1  # C(0): cell 1
        if cell > 0 and pu - pd < OPEN_WIRE_UV:
            mask |= 3 << (cell - 1)  # C(cell): the cells below and above it
        if cell == self.per_chip - 1 and pd == 0:
            mask |= 1 << cell  # the top wire
        self._ow[k] = mask

    def _read_aux(self, temp_dc):
        rx = self._rx
        aux = self._aux
        tpc = self.temps_per_chip
        for g in (0, 1):
            bad = self._read_group(RDAUXA if g == 0 else RDAUXB)
            for k in range(self.chips):
                for m in range(3):
                    j = 8 * k + 2 * m
                    aux[k][3 * g + m] = -1 if bad >> k & 1 else rx[j] | rx[j + 1] << 8
        curve = self.curve
        for k in range(self.chips):
            ref = aux[k][5]
            for t in range(tpc):
                code = aux[k][t]
                if code < 0 or ref <= 0 or code == CLEARED or ref == CLEARED:  # noqa: PLR1714 (a tuple would allocate)
                    temp_dc[k * tpc + t] = NOT_AVAILABLE
                else:
                    temp_dc[k * tpc + t] = curve.temp_dc((code << 14) // ref)

    def read(self, cell_mv, temp_dc):
        """One step (see the module docstring); True when all cell voltages were read."""
        try:
            return self._step_once(cell_mv, temp_dc)
        except OSError:
            self.errors += 1
            self._started = -1
            return False

    def _step_once(self, cell_mv, temp_dc):
        fresh = False
        started = self._started
        self._started = -1
        self._wake_idle()
        if started == _CELLS:
            self._cleared = False
            fresh = self._cell_codes(cell_mv, 0)
            if self._cleared:
                self.stale += 1
        elif started == _AUX:
            self._read_aux(temp_dc)
        elif started == _PU2:
            self._cell_codes(None, 1)
        elif started == _PD2:
            self._cell_codes(None, 2)
        self._write_config()
        step = self._step
        if step == _CELLS:
            self._send(CLRCELL)
            self._send(ADCV)
            self._count += 1
            if self.temps:
                step = _AUX
            elif self.open_wire_every and self._count >= self.open_wire_every:
                step = _PU1
        elif step == _AUX:
            self._send(ADAX)
            step = _CELLS
            if self.open_wire_every and self._count >= self.open_wire_every:
                step = _PU1
        else:
            self._send(ADOW_PU if step <= _PU2 else ADOW_PD)
            if step == _PD2:
                self._count = 0
                step = _CELLS
            else:
                step += 1
        self._started = self._step
        self._step = step
        return fresh

    # ---- the rest of the cell-monitor interface ----

    def balancer_temp_dc(self):
        """The balancer sensor's temperature if one was given, else NOT_AVAILABLE."""
        if self.balancer is None:
            return NOT_AVAILABLE
        return self.balancer.read()

    def set_balance(self, words):
        """Bleed the cells of words (4 x 16 bits, cell 1 = bit 0 of words[0]); sent with the
        configuration at the next read()."""
        per = self.per_chip
        for k in range(self.chips):
            dcc = 0
            for c in range(per):
                i = k * per + c
                if words[i >> 4] >> (i & 15) & 1:
                    dcc |= 1 << c
            self._dcc[k] = dcc

    def open_wire(self):
        """Cells next to an open sense wire at the last check (bit i = cell i + 1), 0 = none."""
        mask = 0
        for k in range(self.chips):
            if self._ow[k]:
                mask |= self._ow[k] << (k * self.per_chip)
        return mask
