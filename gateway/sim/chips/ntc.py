"""A thermistor divider on an ADC input: machine.ADC.read_u16 for a set temperature.

Physics: the Beta model R(T) = R25 exp(B (1/T - 1/298.15 K)) of an NTC datasheet, in a
divider with a fixed resistor to the ADC reference (the NTC on the low side). The counts are
computed when the temperature is set, so read_u16 returns a stored int (no allocation).
open() and short() model a broken wire and a shorted thermistor.
"""

import math

FULL_SCALE = 65535


def divider_q(temp_c: float, beta: int, r25_ohm: int, series_ohm: int, full: int) -> int:
    """ADC value (0..full) across an NTC at temp_c below a series resistor to the reference."""
    ohm = r25_ohm * math.exp(beta * (1 / (temp_c + 273.15) - 1 / 298.15))
    return round(full * ohm / (ohm + series_ohm))


class FakeThermistorAdc:
    """machine.ADC with an NTC divider behind it."""

    def __init__(
        self, temp_c: float = 25.0, beta: int = 3950, r25_ohm: int = 10000, series_ohm: int = 10000
    ) -> None:
        self.beta = beta
        self.r25_ohm = r25_ohm
        self.series_ohm = series_ohm
        self.counts = 0
        self.set_temp(temp_c)

    def set_temp(self, temp_c: float) -> None:
        self.counts = divider_q(temp_c, self.beta, self.r25_ohm, self.series_ohm, FULL_SCALE)

    def open(self) -> None:
        """The NTC or its wire is broken: the pull-up takes the input to the reference."""
        self.counts = FULL_SCALE

    def short(self) -> None:
        """The NTC is shorted: the input sits at ground."""
        self.counts = 0

    def read_u16(self) -> int:
        return self.counts
