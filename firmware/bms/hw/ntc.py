"""NTC thermistors: temperature from a voltage divider, by integer table look-up.

    from machine import ADC
    from bms.hw.ntc import Ntc, NtcCurve
    curve = NtcCurve(beta=3950, r25_ohm=10_000, series_ohm=10_000)  # 10k B3950, 10k pull-up
    balancer = Ntc(ADC(28), curve)
    balancer.read()           # 0.1 degC, or NOT_AVAILABLE for an open or shorted thermistor

The divider: a fixed resistor (series_ohm) from the reference to the ADC input and the NTC
from the input to ground (ntc_low=True, the usual wiring), or the other way round. Its
ratio V_in / V_ref is all a reading needs; the cell-monitor drivers feed the same curve with
the ratio of their own auxiliary inputs (LTC681x GPIO against VREF2, BQ769x0 TS pins).

The curve is the Beta model R(T) = R25 exp(B (1/T - 1/298.15 K)) (the "B value" of every
NTC datasheet, e.g. Vishay NTCLE100E3 "Beta (25/85)"), or a resistance table taken from the
thermistor's datasheet (its R/T table: (0.1 degC, ohm) pairs, coldest first). Either is
turned into a table of divider ratios once, at construction (floats allowed there); a
reading is a search and a linear interpolation in integers (no allocation). Ratios are in
Q14 (16384 = the reference), so every product stays within MicroPython's small ints.

Open and short: a ratio beyond the table's coldest point is an NTC of higher resistance
than at its coldest temperature (with ntc_low: an open thermistor or wire), beyond its
hottest point a resistance lower than the hottest one (a short). Both read NOT_AVAILABLE and
are counted (opens, shorts); the default table spans -55..150 degC, the node's physical
range of a temperature sensor (bms.measure).
"""

from bms.hw import NOT_AVAILABLE

Q14 = 16384


class NtcCurve:
    """Divider ratio (Q14) -> temperature (0.1 degC) for one thermistor type and divider."""

    def __init__(
        self,
        beta=3950,
        r25_ohm=10000,
        series_ohm=10000,
        ntc_low=True,
        table=None,
        t_min_dc=-550,
        t_max_dc=1500,
        step_dc=50,
    ):
        if table is None:
            if not 1000 <= beta <= 10000 or r25_ohm <= 0:
                raise ValueError("NTC beta must be 1000..10000 K and r25_ohm > 0")
            import math  # noqa: PLC0415 (only at construction)

            table = []
            t = t_min_dc
            while t <= t_max_dc:
                kelvin = t / 10 + 273.15
                table.append((t, r25_ohm * math.exp(beta * (1 / kelvin - 1 / 298.15))))
                t += step_dc
        if len(table) < 2:
            raise ValueError("NTC table needs at least two points")
        if series_ohm <= 0:
            raise ValueError("series_ohm must be > 0")
        self.temps = []
        self.ratios = []
        last_t = None
        for t, ohm in table:
            if last_t is not None and t <= last_t:
                raise ValueError("NTC table must go from cold to hot")
            last_t = t
            if ntc_low:
                ratio = ohm * Q14 / (ohm + series_ohm)
            else:
                ratio = series_ohm * Q14 / (ohm + series_ohm)
            self.temps.append(int(t))
            self.ratios.append(int(ratio + 0.5))
        # Ratios fall with temperature when the NTC is the low side, rise otherwise.
        self.falling = ntc_low
        self.opens = 0
        self.shorts = 0

    def temp_dc(self, ratio):
        """Temperature for a divider ratio (Q14), or NOT_AVAILABLE (open or short, counted)."""
        ratios = self.ratios
        temps = self.temps
        n = len(ratios)
        if self.falling:
            if ratio > ratios[0]:
                self.opens += 1
                return NOT_AVAILABLE
            if ratio < ratios[n - 1]:
                self.shorts += 1
                return NOT_AVAILABLE
        else:
            if ratio < ratios[0]:
                self.opens += 1
                return NOT_AVAILABLE
            if ratio > ratios[n - 1]:
                self.shorts += 1
                return NOT_AVAILABLE
        lo = 0
        hi = n - 1
        while hi - lo > 1:  # binary search for the segment holding ratio
            mid = (lo + hi) >> 1
            if (ratios[mid] >= ratio) == self.falling:
                lo = mid
            else:
                hi = mid
        r0 = ratios[lo]
        r1 = ratios[hi]
        t0 = temps[lo]
        if r1 == r0:
            return t0
        span = temps[hi] - t0
        # Rounded to the nearest 0.1 degC; each product is below 16384 x 2050.
        return t0 + ((ratio - r0) * span * 2 + (r1 - r0)) // ((r1 - r0) * 2)


class Ntc:
    """One NTC on a machine.ADC input (read_u16: 0..65535 of the ADC's reference)."""

    def __init__(self, adc, curve, samples=4):
        if not 1 <= samples <= 16:
            raise ValueError("samples must be 1..16")
        self.adc = adc
        self.curve = curve
        self.samples = samples

    def read(self):
        """Temperature in 0.1 degC, or NOT_AVAILABLE for an open or shorted thermistor."""
        total = 0
        for _ in range(self.samples):
            total += self.adc.read_u16()
        # average of 16-bit counts -> Q14
        return self.curve.temp_dc((total // self.samples) >> 2)
