"""Cell chemistries: voltage windows, temperature windows, derating tables and OCV curves.

One frozen ChemistrySpec per chemistry, all values per cell (volts, degrees Celsius,
percent). The charge strategy, the SoC estimator and the docs read these; settings may
override single values (gateway/strategy/settings.py).

Sources: the field defaults collected in /work/shared/brief/charging-and-soc.md (dbus-serialbattery,
diyBMS, LibreSolar, Victron) and public cell datasheets. The LFP OCV curve is sampled from a
published measurement (LFP_OCV_SOURCE, below); the NMC and LTO curves are typical rested
values, not from one cited measurement. The SoC estimator uses a curve only where it is
steep (gateway/soc/estimator.py, docs/soc.md).
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from dataclasses import dataclass, field
from enum import StrEnum
from operator import itemgetter
from typing import Self


class Chemistry(StrEnum):
    """Cell chemistry of the battery."""

    LFP = "lfp"  # lithium iron phosphate, LiFePO4 (the default)
    NMC = "nmc"  # lithium nickel manganese cobalt oxide
    LTO = "lto"  # lithium titanate


_X = itemgetter(0)  # a curve point's x


@dataclass(frozen=True, slots=True)
class Curve:
    """A piecewise-linear table y(x): linear between the points, flat beyond the ends.

    `points` are (x, y) pairs with strictly increasing x. A NaN x gives NaN.
    """

    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if len(self.points) < 2:
            raise ValueError("a curve needs at least two points")
        for x, y in self.points:
            if not (math.isfinite(x) and math.isfinite(y)):
                raise ValueError(f"curve point ({x}, {y}) is not finite")
        xs = [x for x, _ in self.points]
        if any(b <= a for a, b in itertools.pairwise(xs)):
            raise ValueError(f"curve x values must increase strictly: {xs}")

    @classmethod
    def of(cls, *points: tuple[float, float]) -> Self:
        """Build a curve from (x, y) pairs."""
        return cls(tuple((float(x), float(y)) for x, y in points))

    def at(self, x: float) -> float:
        """y at x, interpolated linearly; the end values beyond the ends."""
        pts = self.points
        if x <= pts[0][0]:
            return pts[0][1]
        if x >= pts[-1][0]:
            return pts[-1][1]
        # Between the ends, or NaN (no comparison holds for it): most asks are beyond an
        # end (a derating table's flat parts), and return above without this test.
        if math.isnan(x):
            return math.nan
        i = bisect_right(pts, x, key=_X)  # the derating asks several times a tick
        (x0, y0), (x1, y1) = pts[i - 1], pts[i]
        return y0 + (y1 - y0) * (x - x0) / (x1 - x0)

    def inverse(self) -> Curve:
        """x(y) for a curve whose y values increase strictly (e.g. SoC from OCV)."""
        return Curve(tuple((y, x) for x, y in self.points))


@dataclass(frozen=True, slots=True)
class TemperatureWindow:
    """Temperatures (degC) in which a direction may flow: strictly between low and high.

    Once outside, the direction stays blocked until the temperature is `hysteresis` back
    inside (LFP: no charging at or below 0 degC, again from 5 degC).
    """

    low: float
    high: float
    hysteresis: float = 5.0

    def __post_init__(self) -> None:
        if not self.low + 2 * self.hysteresis < self.high:
            raise ValueError(f"temperature window {self.low}..{self.high} too narrow")
        if self.hysteresis < 0:
            raise ValueError("temperature hysteresis must not be negative")


_NO_COLD_LOSS = Curve.of((0.0, 1.0), (25.0, 1.0))


@dataclass(frozen=True, slots=True)
class ChemistrySpec:
    """Everything the gateway needs to know about one chemistry, per cell.

    Voltages in V per cell. The derating curves give a fraction (0..1) of the configured
    maximum current; the final limit is the minimum over all of them.
    """

    chemistry: Chemistry
    nominal_v: float  # nominal cell voltage, for capacity in Wh and display
    hard_max_v: float  # cell damage above this (reference; the nodes trip well below)
    hard_min_v: float  # cell damage below this (reference)
    # The datasheet's charge cut-off: no charge voltage a user sets may exceed it (the
    # margin to hard_max_v is what the cell's spread and the CVL loop's overshoot need).
    max_charge_v: float
    # Continuous current a pack of this chemistry takes without a stated rating, in C (A per
    # Ah of a string): conservative datasheet values; battery.rating states more.
    max_charge_c: float
    max_discharge_c: float
    full_charge_v: float  # periodic / user full charge: SoC reset and top balancing
    charge_target_v: float  # daily charge: allowed max cell in bulk and absorption
    float_v: float  # allowed max cell in float
    balance_start_v: float  # balancing only while the highest cell is at or above this
    min_cell_v: float  # normal minimum: discharging stops here (DVL = cells x this)
    # Min cell at or below this (long enough) means empty: SoC recalibrates to 0 %. Above
    # min_cell_v on purpose: the discharge derating keeps a loaded cell near this voltage, so
    # a value lower down would never be reached and the recalibration would never happen.
    empty_cell_v: float
    charge_temp: TemperatureWindow
    discharge_temp: TemperatureWindow
    # Charge derating by the highest cell: x = max cell minus the phase's allowed maximum (V),
    # so the same table serves the daily target, the full charge and float.
    charge_by_cell: Curve
    discharge_by_cell: Curve  # x = lowest cell voltage (V)
    charge_by_temp: Curve  # x = cell temperature (degC), applied to the min and max
    discharge_by_temp: Curve
    charge_by_soc: Curve  # x = SoC (%); used only when the strategy enables it
    ocv: Curve  # x = SoC (%) at least every 5 %, y = rested cell voltage (V)
    # Usable capacity by cell temperature, a fraction of the rated (x = degC). A cold cell
    # reaches its voltage ends with less charge moved: a charge ends, and a discharge meets
    # the empty voltage, short of the rated capacity; warmed, it takes and gives the rest.
    # Flat at 1 where no figure is cited (no correction).
    capacity_by_temp: Curve = _NO_COLD_LOSS
    # The OCV table turned around (SoC by voltage), built once with the spec: the SoC asks
    # it every tick, and building it checks that the OCV rises strictly with SoC.
    ocv_inverse: Curve = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        order = (
            ("hard_min_v", self.hard_min_v),
            ("min_cell_v", self.min_cell_v),
            ("empty_cell_v", self.empty_cell_v),
            ("float_v", self.float_v),
            ("charge_target_v", self.charge_target_v),
            ("full_charge_v", self.full_charge_v),
            ("hard_max_v", self.hard_max_v),
        )
        for (name_a, a), (name_b, b) in itertools.pairwise(order):
            if not a < b:
                raise ValueError(
                    f"{self.chemistry}: {name_a} ({a} V) must be below {name_b} ({b} V)"
                )
        if not self.full_charge_v <= self.max_charge_v < self.hard_max_v:
            raise ValueError(
                f"{self.chemistry}: full_charge_v ({self.full_charge_v} V) must be at most the "
                f"chemistry's charge cut-off {self.max_charge_v} V"
            )
        if not self.min_cell_v < self.balance_start_v <= self.charge_target_v:
            raise ValueError(
                f"{self.chemistry}: balance_start_v ({self.balance_start_v} V) must be above "
                f"min_cell_v and at most charge_target_v"
            )
        if not self.min_cell_v < self.nominal_v < self.charge_target_v:
            raise ValueError(f"{self.chemistry}: nominal_v out of the normal window")
        for name in (
            "charge_by_cell",
            "discharge_by_cell",
            "charge_by_temp",
            "discharge_by_temp",
            "charge_by_soc",
        ):
            curve: Curve = getattr(self, name)
            if any(not 0.0 <= y <= 1.0 for _, y in curve.points):
                raise ValueError(f"{self.chemistry}: {name} fractions must be within 0..1")
        if any(not 0.0 < y <= 1.0 for _, y in self.capacity_by_temp.points):
            raise ValueError(f"{self.chemistry}: capacity_by_temp fractions must be within 0..1")
        object.__setattr__(self, "ocv_inverse", self.ocv.inverse())  # raises unless rising
        socs = [x for x, _ in self.ocv.points]
        if socs[0] != 0.0 or socs[-1] != 100.0:
            raise ValueError(f"{self.chemistry}: the OCV table must span 0..100 %")

    def soc_from_ocv(self, cell_v: float) -> float:
        """SoC (%) of a rested cell at `cell_v`, from the OCV table (NaN for NaN)."""
        return self.ocv_inverse.at(cell_v)

    def charge_at(self, soc: float, temp_c: float) -> float:
        """The charge (% of the rated capacity) of a cell at `temp_c` that its voltage
        places at `soc` on the (room-temperature) scale of the OCV table and the voltage
        ends: the capacity the cold takes (`capacity_by_temp`) is taken half from each end,
        around the middle. The split is not known (the cited figures are whole-capacity
        ones); the middle errs by at most half the loss either way, which the SoC's
        uncertainty carries (`cold_share`). An unknown temperature: no correction."""
        fraction = self.capacity_by_temp.at(temp_c)
        if math.isnan(fraction):  # no temperature known
            return soc
        return 50.0 + (soc - 50.0) * fraction

    def cold_share(self, temp_c: float) -> float:
        """Points of SoC either end may be off by at `temp_c`: half the capacity the cold
        takes (0 where it takes none or the temperature is unknown): where the empty end
        moves to."""
        return self.charge_at(0.0, temp_c)


def _ocv(*volts: float) -> Curve:
    """OCV table from 21 rested cell voltages for 0, 5, ..., 100 % SoC."""
    if len(volts) != 21:
        raise ValueError("an OCV table has 21 points (0..100 % in 5 % steps)")
    return Curve(tuple((5.0 * i, v) for i, v in enumerate(volts)))


# LFP open-circuit voltage, sampled from a measured pseudo-OCV curve: a Lithium Werks
# APR18650M1B LFP cell cycled at C/32 at room temperature, the mean of the charge and
# discharge branches, 600 points from 2.0 V (0 %) to 3.6 V (100 %). Data: Data/LithiumWerks-
# APR18650M1B.mat of github.com/soorajsunil/Piecewise-Battery-OCV (MIT), published with
# S. Sunil, K. R. Pattipati, B. Balasingam, "Piecewise Linear Approximation of Battery
# Open-Circuit Voltage Characteristics Using Dynamic Programming", IEEE Transactions on
# Instrumentation and Measurement, 2025. Sampled every 5 %, and finer where the curve bends
# (the first 5 %, the last 3 %), by linear interpolation of the 600 points. Its 0..100 % is
# the cell's 2.0..3.6 V: the gateway's 0 % (3.00 V, under load) is 3.6 % on it, its 100 %
# (3.45 V with a tail current) 99.7 %.
LFP_OCV_SOURCE = "Sunil, Pattipati, Balasingam, IEEE TIM 2025: APR18650M1B, C/32 pseudo-OCV"
LFP_OCV_POINTS = (
    (0.0, 2.010), (1.0, 2.702), (2.0, 2.864), (3.0, 2.956), (4.0, 3.021), (5.0, 3.072),
    (7.5, 3.164), (10.0, 3.203), (15.0, 3.216), (20.0, 3.241), (25.0, 3.262), (30.0, 3.278),
    (35.0, 3.288), (40.0, 3.295), (45.0, 3.297), (50.0, 3.299), (55.0, 3.301), (60.0, 3.303),
    (65.0, 3.307), (70.0, 3.316), (75.0, 3.333), (80.0, 3.337), (85.0, 3.339), (90.0, 3.341),
    (95.0, 3.343), (97.0, 3.345), (98.0, 3.348), (99.0, 3.370), (99.5, 3.418), (100.0, 3.598),
)  # fmt: skip

# Charge derating by the highest cell, relative to the allowed maximum of the phase. At the
# LFP daily target (3.45 V) this is the field table 3.375/3.400/3.425/3.450/3.500 V ->
# 1/0.25/0.05/0.005/0.
_CHARGE_BY_CELL = Curve.of((-0.075, 1.0), (-0.050, 0.25), (-0.025, 0.05), (0.0, 0.005), (0.05, 0.0))
_CHARGE_BY_SOC = Curve.of((85.0, 1.0), (90.0, 0.5), (95.0, 0.2), (98.0, 0.1))

LFP = ChemistrySpec(
    chemistry=Chemistry.LFP,
    nominal_v=3.2,
    hard_max_v=3.80,
    hard_min_v=2.50,
    max_charge_v=3.65,
    max_charge_c=1.0,
    max_discharge_c=1.0,
    full_charge_v=3.55,
    charge_target_v=3.45,
    float_v=3.375,
    # In the knee: below it LFP cell differences under current are mostly resistance, not
    # charge, and bleeding would pick the wrong cells.
    balance_start_v=3.40,
    min_cell_v=2.90,
    empty_cell_v=3.00,
    charge_temp=TemperatureWindow(0.0, 55.0),
    discharge_temp=TemperatureWindow(-20.0, 60.0),
    charge_by_cell=_CHARGE_BY_CELL,
    discharge_by_cell=Curve.of((2.80, 0.0), (2.90, 0.005), (3.00, 0.05), (3.10, 0.25), (3.19, 1.0)),
    charge_by_temp=Curve.of(
        (0, 0), (2, 0.25), (5, 0.5), (10, 1), (40, 1), (45, 0.5), (50, 0.25), (55, 0)
    ),
    discharge_by_temp=Curve.of(
        (-20, 0), (-15, 0.25), (-10, 0.5), (0, 1), (45, 1), (50, 0.5), (55, 0.25), (60, 0)
    ),
    charge_by_soc=_CHARGE_BY_SOC,
    # The cited LFP curve (LFP_OCV_SOURCE): flat between 15 and 98 % (about 130 mV for 83 %,
    # under 1 mV per % between 35 and 65 % and between 75 and 98 %), steep at both ends.
    ocv=Curve(LFP_OCV_POINTS),
    # A 100 Ah LFP battery gives about 80 Ah at 0 degC and 70 Ah at -20 degC (Canbat's
    # figures, funsongbattery.com "how to store LiFePO4 batteries"), all of it from 25 degC.
    capacity_by_temp=Curve.of((-20.0, 0.70), (0.0, 0.80), (25.0, 1.0)),
)  # fmt: skip

NMC = ChemistrySpec(
    chemistry=Chemistry.NMC,
    nominal_v=3.65,
    hard_max_v=4.25,
    hard_min_v=3.00,
    max_charge_v=4.20,
    max_charge_c=1.0,
    max_discharge_c=1.0,
    full_charge_v=4.20,
    charge_target_v=4.10,
    float_v=4.00,
    balance_start_v=3.90,
    min_cell_v=3.30,
    empty_cell_v=3.40,
    charge_temp=TemperatureWindow(0.0, 45.0),
    discharge_temp=TemperatureWindow(-20.0, 60.0),
    charge_by_cell=_CHARGE_BY_CELL,
    discharge_by_cell=Curve.of((3.20, 0.0), (3.30, 0.005), (3.40, 0.05), (3.50, 0.25), (3.60, 1.0)),
    charge_by_temp=Curve.of((0, 0), (3, 0.25), (5, 0.5), (10, 1), (35, 1), (40, 0.5), (45, 0)),
    discharge_by_temp=Curve.of((-20, 0), (-10, 0.5), (0, 1), (50, 1), (55, 0.5), (60, 0)),
    charge_by_soc=_CHARGE_BY_SOC,
    ocv=_ocv(
        3.000, 3.450, 3.550, 3.600, 3.630, 3.650, 3.670, 3.690, 3.710, 3.730, 3.760,
        3.790, 3.830, 3.870, 3.910, 3.950, 3.990, 4.030, 4.080, 4.130, 4.200,
    ),
)  # fmt: skip

LTO = ChemistrySpec(
    chemistry=Chemistry.LTO,
    nominal_v=2.3,
    hard_max_v=2.85,
    hard_min_v=1.90,
    max_charge_v=2.80,
    max_charge_c=4.0,
    max_discharge_c=4.0,
    full_charge_v=2.80,
    charge_target_v=2.70,
    float_v=2.60,
    balance_start_v=2.55,
    min_cell_v=2.10,
    empty_cell_v=2.15,
    charge_temp=TemperatureWindow(-30.0, 55.0),
    discharge_temp=TemperatureWindow(-40.0, 60.0),
    charge_by_cell=_CHARGE_BY_CELL,
    discharge_by_cell=Curve.of((2.00, 0.0), (2.10, 0.005), (2.15, 0.05), (2.20, 0.25), (2.25, 1.0)),
    charge_by_temp=Curve.of((-30, 0), (-20, 0.25), (-10, 0.5), (0, 1), (45, 1), (50, 0.5), (55, 0)),
    discharge_by_temp=Curve.of((-40, 0), (-30, 0.5), (-20, 1), (50, 1), (55, 0.5), (60, 0)),
    charge_by_soc=_CHARGE_BY_SOC,
    ocv=_ocv(
        1.800, 2.100, 2.180, 2.220, 2.250, 2.270, 2.290, 2.300, 2.310, 2.320, 2.330,
        2.340, 2.350, 2.360, 2.370, 2.390, 2.410, 2.440, 2.480, 2.550, 2.700,
    ),
)  # fmt: skip

SPECS: dict[Chemistry, ChemistrySpec] = {p.chemistry: p for p in (LFP, NMC, LTO)}


def spec_of(chemistry: Chemistry | str) -> ChemistrySpec:
    """The built-in specification of a chemistry (by enum or name, e.g. "lfp")."""
    try:
        return SPECS[Chemistry(chemistry)]
    except ValueError:
        known = ", ".join(c.value for c in Chemistry)
        raise ValueError(f"unknown chemistry {chemistry!r}; known: {known}") from None
