"""Battery physics for the simulator: cells, packs (one node each) and the whole battery.

The model is the simulator's truth. Everything is deterministic: randomness comes only from
the `random.Random` passed to the builders, time only from the `dt` passed to `step`.
Units: volts, amperes (positive = charging), ampere-hours, seconds, degrees Celsius.

A cell is an equivalent circuit with a thermal node:

    terminal voltage = OCV(charge) + I * R0(T) + V_rc
    dV_rc/dt = (I * R1 - V_rc) / tau        (first-order polarisation: relaxes after a step)
    C_th * dT/dt = I^2 * R0 + V_rc^2 / R1 - G * (T - T_ambient)

Charge counts with a coulombic efficiency on charge and loses a small self-discharge. The
state of charge reported as truth clamps at 0..1, but the charge itself may run a few percent
beyond either end (CHARGE_MIN..CHARGE_MAX) where the OCV curves are very steep, so an over-
or under-charged cell shows as a voltage excursion, exactly what protection must catch.
An LFP cell's OCV between 0 and 1 is the cited table the gateway's SoC estimator reads
(gateway/contracts/chemistry.py LFP_OCV_POINTS), so a rested simulated cell sits where the
estimator expects it; the real-world effects below (LFP_REAL) move it off, as a real cell is.

Usage (what the system simulator does each tick):

    rng = random.Random(seed)
    battery = Battery.build(rng, strings=[[0], [1]], cells_per_node=16, soc=0.5)
    battery.set_relay(1, closed=False)          # from the node's relay output
    battery.packs[0].balance_mask = 0b101       # from the node's balancer outputs
    actual = battery.step(0.1, current_a)       # current_a from the (simulated) inverter
    pack = battery.packs[0]
    pack.cell_voltages(), pack.temperatures(), pack.voltage, pack.measured_current_a,
    pack.balancer_temp_c, battery.bus_voltage, battery.true_soc(), battery.remaining_ah()

Fault injection is explicit and deterministic: `Pack.inject_cell_drift`,
`Pack.open_thermistor`, `Pack.inject_current_offset`, `Pack.fade_cell`; outliers:
`Pack.fade_cell` (a weak cell), `Pack.scale_cell_resistance`, `Pack.set_busbar`.

The defaults are the kind simulator today's scenarios were recorded with. Real-world effects
are opt-in: `LFP_REAL` cell parameters (OCV hysteresis and temperature, capacity by
temperature and C-rate, charge-transfer resistance; the figures' sources are beside it),
`SensorParams` for the node's readings (current offset, gain and noise, cell noise and
quantisation, sense-wire drop while bleeding: `Pack.measured_cell_voltages`,
`Pack.measured_current_a`), the bleed current (`bleed_ohm`) and the share of its heat that
warms the cell (`Pack.bleed_heat_to_cell`).
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise, repeat
from operator import add, attrgetter, mul
from typing import Self

from gateway.contracts.chemistry import LFP_OCV_POINTS

__all__ = [
    "CHARGE_MAX",
    "CHARGE_MIN",
    "LFP_REAL",
    "OCV_CURVES",
    "Battery",
    "Cell",
    "CellParams",
    "OcvCurve",
    "Pack",
    "SensorParams",
    "ocv_curve",
]

# Bounds of a cell's charge as a fraction of its capacity. Beyond 0..1 the cell is over- or
# under-charged: the SoC stays clamped while the voltage runs far outside every protection
# limit. Bounded so a forgotten simulation cannot drive a cell to absurd values.
CHARGE_MIN = -0.05
CHARGE_MAX = 1.05

SECONDS_PER_MONTH = 30 * 86400.0
REFERENCE_TEMP_C = 25.0
# Temperatures used for the resistance law are clamped to this range: the exponential law
# is a fit for the normal operating range, not for a cell on fire or frozen solid.
RESISTANCE_TEMP_MIN_C = -30.0
RESISTANCE_TEMP_MAX_C = 60.0
# Battery.step subdivides longer steps: the split between parallel strings is explicit and
# needs steps well below the shortest equalising time constant (seconds, on the steep ends).
MAX_SUBSTEP_S = 1.0


@dataclass(frozen=True)
class OcvCurve:
    """Open-circuit voltage over charge: piecewise linear through (charge, volts) points.

    Points must cover CHARGE_MIN..CHARGE_MAX with strictly increasing charge.
    """

    name: str
    points: tuple[tuple[float, float], ...]
    charges: tuple[float, ...] = field(init=False, repr=False, compare=False)
    volts: tuple[float, ...] = field(init=False, repr=False, compare=False)
    # Volts per unit charge of each segment.
    slopes: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        xs = tuple(x for x, _ in self.points)
        ys = tuple(y for _, y in self.points)
        if xs[0] != CHARGE_MIN or xs[-1] != CHARGE_MAX:
            raise ValueError(f"{self.name}: OCV points must span {CHARGE_MIN}..{CHARGE_MAX}")
        if any(b <= a for a, b in pairwise(xs)):
            raise ValueError(f"{self.name}: OCV charge points must increase strictly")
        slopes = tuple((y1 - y0) / (x1 - x0) for (x0, y0), (x1, y1) in pairwise(self.points))
        # Frozen: the derived tables are set once, here.
        object.__setattr__(self, "charges", xs)
        object.__setattr__(self, "volts", ys)
        object.__setattr__(self, "slopes", slopes)

    def voltage(self, charge: float) -> float:
        """OCV (V) at a charge fraction, clamped to the curve's span."""
        xs = self.charges
        charge = min(max(charge, CHARGE_MIN), CHARGE_MAX)
        k = min(bisect_right(xs, charge), len(xs) - 1)
        return self.volts[k - 1] + self.slopes[k - 1] * (charge - xs[k - 1])


def _lfp_curve() -> OcvCurve:
    """The LFP cell's rest OCV: the gateway's cited table (chemistry.LFP_OCV_POINTS, SoC in
    % as a charge fraction) between 0 and 1, steep excursions beyond.

    Beyond the table's ends the voltage runs to 0.50 V at CHARGE_MIN and 4.60 V at
    CHARGE_MAX, through breakpoints a set share of the way there (a quarter of the way at
    1 % under-charge, 15 % of it at 0.5 % over-charge, ...): continuous at 0 and 1 and rising
    strictly, 30-40 V per unit of charge next to both ends (the plateau: 0.14 V).
    """
    table = tuple((soc / 100.0, v) for soc, v in LFP_OCV_POINTS)
    empty, full = table[0][1], table[-1][1]
    floor, ceiling = 0.50, 4.60
    # (charge, share of the way from the table's end voltage to the floor or ceiling).
    under = ((CHARGE_MIN, 1.0), (-0.02, 0.50), (-0.01, 0.25))
    over = ((1.005, 0.15), (1.01, 0.30), (1.02, 0.60), (CHARGE_MAX, 1.0))
    below = tuple((x, empty + share * (floor - empty)) for x, share in under)
    above = tuple((x, full + share * (ceiling - full)) for x, share in over)
    return OcvCurve("lfp", below + table + above)


# Resting OCV curves. LFP is the cited measurement the gateway's SoC estimator reads
# (_lfp_curve): flat between ~15 % and ~98 % (3.22..3.35 V), steep to 2.01 V at empty and
# to 3.60 V at full. NMC and LTO are the simulator's own fits to public data. Points outside
# 0..1 are the over- and under-charge excursions, steep on every curve.
OCV_CURVES: dict[str, OcvCurve] = {
    c.name: c
    for c in (
        _lfp_curve(),
        OcvCurve(
            "nmc",
            (
                (-0.05, 1.50), (-0.01, 2.50), (0.0, 3.00), (0.01, 3.30), (0.03, 3.40),
                (0.05, 3.45), (0.10, 3.55), (0.20, 3.62), (0.30, 3.67), (0.40, 3.72),
                (0.50, 3.77), (0.60, 3.84), (0.70, 3.91), (0.80, 3.99), (0.90, 4.08),
                (0.95, 4.13), (0.99, 4.18), (1.0, 4.20), (1.01, 4.35), (1.02, 4.50),
                (1.05, 4.80),
            ),
        ),
        OcvCurve(
            "lto",
            (
                (-0.05, 1.00), (-0.01, 1.60), (0.0, 1.80), (0.02, 2.00), (0.05, 2.10),
                (0.10, 2.18), (0.20, 2.23), (0.30, 2.26), (0.40, 2.28), (0.50, 2.30),
                (0.60, 2.33), (0.70, 2.36), (0.80, 2.41), (0.90, 2.50), (0.95, 2.58),
                (0.99, 2.70), (1.0, 2.80), (1.01, 2.95), (1.02, 3.05), (1.05, 3.30),
            ),
        ),
    )
}  # fmt: skip


def ocv_curve(chemistry: str) -> OcvCurve:
    """The OCV curve of a chemistry ("lfp", "nmc", "lto"; any case, a StrEnum works)."""
    try:
        return OCV_CURVES[str(chemistry).lower()]
    except KeyError:
        raise ValueError(f"unknown chemistry {chemistry!r}; known: {sorted(OCV_CURVES)}") from None


@dataclass(frozen=True, slots=True)
class CellParams:
    """Parameters of one cell. Defaults: a 100 Ah prismatic LFP cell in a closed pack."""

    chemistry: str = "lfp"
    capacity_ah: float = 100.0
    r0_ohm: float = 0.0005  # ohmic resistance at 25 degC
    r1_ohm: float = 0.0004  # polarisation resistance
    tau_s: float = 60.0  # polarisation time constant R1 * C1
    self_discharge_pct_month: float = 2.0  # % of capacity per 30 days
    charge_efficiency: float = 0.995  # coulombic efficiency on charge
    thermal_mass_j_k: float = 2000.0  # ~2 kg of cell at ~1 J/(g K)
    heat_transfer_w_k: float = 0.5  # to ambient
    # R0(T) = R0 * exp(coeff * (25 - T)): about x2.3 at 0 degC, x0.55 at 45 degC.
    resistance_temp_coeff_per_k: float = 0.03
    # The effects below are off by default (today's scenarios keep their frames); LFP_REAL
    # turns them on with cited figures. Any of them set makes the cell take its full path.
    # OCV hysteresis: half the gap between the charge and the discharge OCV branches (V),
    # and the charge (fraction of capacity) over which the cell moves from one branch to
    # the other (1/e of the way).
    hysteresis_v: float = 0.0
    hysteresis_charge: float = 0.03
    # dOCV/dT, the entropic coefficient (V/K), around 25 degC.
    ocv_temp_coeff_v_per_k: float = 0.0
    # Apparent capacity by temperature: (degC, fraction of capacity) points, interpolated
    # and held at the ends; () = always the full capacity. The charge is conserved: a cold
    # cell reaches its steep OCV ends sooner (its voltage says full or empty earlier) and
    # gives the charge back when it warms up.
    capacity_by_temp: tuple[tuple[float, float], ...] = ()
    # Apparent capacity lost per C of current (fraction per A/Ah).
    capacity_loss_per_c: float = 0.0
    # Charge-transfer (Butler-Volmer) overpotential 2RT/F * asinh(I / (2 I0)): a resistance
    # that falls with the C-rate. I0 is the exchange current at 25 degC (A); 0 = off. It
    # follows the same temperature law as R0 (and so does R1 on the full path).
    exchange_current_a: float = 0.0

    def __post_init__(self) -> None:
        ocv_curve(self.chemistry)
        positive = ("capacity_ah", "r0_ohm", "r1_ohm", "tau_s", "thermal_mass_j_k")
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"CellParams.{name} must be positive and finite, not {value!r}")
        if not 0 < self.charge_efficiency <= 1:
            raise ValueError("CellParams.charge_efficiency must be in (0, 1]")
        if not (self.self_discharge_pct_month >= 0 and self.heat_transfer_w_k > 0):
            raise ValueError("self-discharge must be >= 0 and heat transfer > 0")
        if not (self.hysteresis_v >= 0 and self.hysteresis_charge > 0):
            raise ValueError("CellParams.hysteresis_v must be >= 0, hysteresis_charge > 0")
        if not (0 <= self.capacity_loss_per_c < 0.5 and self.exchange_current_a >= 0):
            raise ValueError("capacity_loss_per_c must be in [0, 0.5), exchange current >= 0")
        temps = [t for t, _ in self.capacity_by_temp]
        if any(b <= a for a, b in pairwise(temps)) or any(
            not 0.3 <= f <= 1.2 for _, f in self.capacity_by_temp
        ):
            raise ValueError(
                "CellParams.capacity_by_temp: temperatures must increase, fractions 0.3..1.2"
            )

    @property
    def realistic(self) -> bool:
        """True when any effect of the full path is on (see Cell)."""
        return bool(
            self.hysteresis_v
            or self.ocv_temp_coeff_v_per_k
            or self.capacity_by_temp
            or self.capacity_loss_per_c
            or self.exchange_current_a
        )

    def scaled(self, capacity_ah: float) -> CellParams:
        """The same cell technology in another size: resistances scale with 1/capacity,
        thermal mass with capacity, heat transfer with the surface (capacity^(2/3))."""
        k = capacity_ah / self.capacity_ah
        return replace(
            self,
            capacity_ah=capacity_ah,
            r0_ohm=self.r0_ohm / k,
            r1_ohm=self.r1_ohm / k,
            exchange_current_a=self.exchange_current_a * k,
            thermal_mass_j_k=self.thermal_mass_j_k * k,
            heat_transfer_w_k=self.heat_transfer_w_k * k ** (2 / 3),
        )


# Realistic LFP (a 100 Ah prismatic cell; `scaled` sizes it), the figures and their sources:
# - OCV hysteresis: a charge-discharge OCV gap of typically 5-25 mV remains after long rests
#   on the LFP plateau (ACCURE, "Battery hysteresis effect", accure.net; Marongiu et al.,
#   Applied Energy 2015, on its dependence on history and ageing): 15 mV here (+-7.5 mV).
#   The branch is reached within about 10 % of charge (own estimate, hysteresis_charge 3 %).
# - OCV temperature: LFP/graphite entropic coefficients are a fraction of a mV per K (order
#   of magnitude of published calorimetric measurements, e.g. Forgez et al., J. Power
#   Sources 195 (2010) 2961): -0.1 mV/K.
# - Capacity by temperature: a 100 Ah LFP battery gives about 80 Ah at 0 degC and 70 Ah at
#   -20 degC (Canbat's figures, funsongbattery.com "how to store LiFePO4 batteries").
# - Capacity by rate: cell datasheets rate capacity at 0.5 C (evreporter.com on a Great
#   Power 80 Ah LFP datasheet); 1 C gives some 2 % less (own estimate from rate tables).
# - Charge transfer: exchange current of 1 C (own estimate: it adds a quarter of a milliohm
#   at 100 Ah, so the whole DC resistance stays near the ~1 mOhm of 100 Ah prismatic cells).
# - Resistance by temperature: the default law (x2.3 at 0 degC), also for R1 on this path.
LFP_REAL = CellParams(
    hysteresis_v=0.0075,
    hysteresis_charge=0.03,
    ocv_temp_coeff_v_per_k=-0.0001,
    capacity_by_temp=((-20.0, 0.70), (0.0, 0.80), (25.0, 1.0)),
    capacity_loss_per_c=0.02,
    exchange_current_a=100.0,
)

# 2RT/F per kelvin: the Butler-Volmer overpotential's voltage scale (51.4 mV at 25 degC).
TWO_R_OVER_F = 2 * 8.314462618 / 96485.33212


class Cell:
    """One cell: equivalent circuit, charge counter and thermal node (see the module doc).

    `voltage`, `ocv`, `polarisation_v`, `temperature_c`, `r0_ohm` and `current_a` are the
    state after the last step. `drift_a` is a fault: extra charge current into this cell only;
    `heat_in_w` heat from outside (its balancer resistor) into this cell.

    With any effect of CellParams.realistic on, the cell takes its full path: the OCV moves
    between a charge and a discharge branch (`hysteresis`, -1..1) and with temperature, the
    apparent capacity shrinks with cold and current (the OCV is read at a charge stretched
    away from the middle: in the cold full and empty come sooner, under current the end it
    heads for), R1 follows temperature and a
    charge-transfer overpotential adds to the voltage.
    """

    __slots__ = (
        "_breaks", "_cap_temps", "_cap_temps_at", "_charge", "_charge_step", "_decay_rc",
        "_decay_th", "_discharge_step", "_dt", "_i0", "_inv_g", "_r0_25", "_r1", "_rc_gain",
        "_real", "_segments", "_self_discharge_step", "_tc", "capacity_ah", "current_a",
        "drift_a", "heat_in_w", "hysteresis", "ocv", "params", "polarisation_v", "r0_ohm",
        "temperature_c", "voltage",
    )  # fmt: skip

    def __init__(
        self, params: CellParams | None = None, soc: float = 0.5, temperature_c: float = 25.0
    ) -> None:
        if not 0.0 <= soc <= 1.0:
            raise ValueError(f"initial soc must be in 0..1, not {soc!r}")
        if not math.isfinite(temperature_c):
            raise ValueError("initial temperature must be finite")
        p = params if params is not None else CellParams()
        curve = ocv_curve(p.chemistry)
        self.params = p
        self.capacity_ah = p.capacity_ah
        # The OCV curve's segments, each (start charge, start volts, slope), and the charges
        # between them: bisect_right over these gives the index of the segment of any charge
        # in CHARGE_MIN..CHARGE_MAX, CHARGE_MAX (the last point) included, without a clamp.
        self._segments = tuple(zip(curve.charges[:-1], curve.volts[:-1], curve.slopes, strict=True))
        self._breaks = curve.charges[1:-1]
        self._r0_25 = p.r0_ohm
        self._r1 = p.r1_ohm
        self._tc = p.resistance_temp_coeff_per_k
        self._inv_g = 1.0 / p.heat_transfer_w_k
        self._charge = soc
        self.drift_a = 0.0
        self.heat_in_w = 0.0
        self.current_a = 0.0
        self.polarisation_v = 0.0
        self.hysteresis = 0.0
        self._real = p.realistic
        self._cap_temps = p.capacity_by_temp
        # (temperature, resistance factor, capacity fraction, 2RT/F, OCV shift) at the
        # temperature they were last worked out for (the full path only).
        self._cap_temps_at = (math.inf, 1.0, 1.0, 0.0, 0.0)
        self._i0 = p.exchange_current_a
        self.temperature_c = temperature_c
        self.r0_ohm = self._resistance(temperature_c)
        self.ocv = curve.voltage(soc)
        self.voltage = self.ocv
        self._dt = -1.0  # per-dt factors are computed on the first step
        self._charge_step = self._discharge_step = self._self_discharge_step = 0.0
        self._decay_rc = self._rc_gain = self._decay_th = 0.0

    @property
    def soc(self) -> float:
        """True state of charge, 0..1."""
        return min(max(self._charge, 0.0), 1.0)

    @property
    def charge(self) -> float:
        """Charge as a fraction of capacity, unclamped (CHARGE_MIN..CHARGE_MAX)."""
        return self._charge

    @property
    def remaining_ah(self) -> float:
        """Charge the cell can still deliver before it is empty (Ah)."""
        charge = self._charge  # the soc property, inlined: the truth reads it every step
        return (0.0 if charge < 0.0 else 1.0 if charge > 1.0 else charge) * self.capacity_ah

    def step(self, dt: float, current_a: float, ambient_c: float) -> None:
        """Advance by dt seconds with current_a flowing into the cell (+ = charging)."""
        _check_step(dt, current_a)
        if not math.isfinite(ambient_c):
            raise ValueError("ambient temperature must be finite")
        self._advance(dt, current_a, ambient_c)

    def fade(self, fraction: float) -> None:
        """Fault: lose `fraction` of the present capacity. The SoC stays as it was (the
        stored charge shrinks with the capacity), so the voltage does not jump."""
        if not 0.0 <= fraction < 1.0:
            raise ValueError("fade fraction must be in [0, 1)")
        self.capacity_ah *= 1.0 - fraction
        self._dt = -1.0

    def _resistance(self, temperature_c: float) -> float:
        t = min(max(temperature_c, RESISTANCE_TEMP_MIN_C), RESISTANCE_TEMP_MAX_C)
        return self._r0_25 * math.exp(self._tc * (REFERENCE_TEMP_C - t))

    def _set_dt(self, dt: float) -> None:
        p = self.params
        per_ah = dt / (3600.0 * self.capacity_ah)
        self._charge_step = per_ah * p.charge_efficiency
        self._discharge_step = per_ah
        self._self_discharge_step = p.self_discharge_pct_month / 100.0 / SECONDS_PER_MONTH * dt
        self._decay_rc = math.exp(-dt / p.tau_s)
        self._rc_gain = self._r1 * (1.0 - self._decay_rc)
        self._decay_th = math.exp(-dt * p.heat_transfer_w_k / p.thermal_mass_j_k)
        self._dt = dt

    def _advance(self, dt: float, current_a: float, ambient_c: float) -> None:
        if self._real:
            self._advance_real(dt, current_a, ambient_c)
        else:
            _advance_plain((self,), dt, (current_a,), ambient_c)

    def _advance_real(self, dt: float, current_a: float, ambient_c: float) -> None:
        """The full path (see the class doc): the same charge and thermal model, plus
        hysteresis, OCV and capacity by temperature and rate, R1(T) and charge transfer."""
        if dt != self._dt:
            self._set_dt(dt)
        p = self.params
        i = current_a + self.drift_a
        charge = self._charge + i * (self._charge_step if i > 0.0 else self._discharge_step)
        charge -= self._self_discharge_step
        if charge > CHARGE_MAX:
            charge = CHARGE_MAX
        elif charge < CHARGE_MIN:
            charge = CHARGE_MIN
        self._charge = charge
        # Temperature factors from the cell's temperature at the start of the step, kept
        # while it moves less than 0.05 K (they are smooth; this spares the hot loop).
        t = self.temperature_c
        cached = self._cap_temps_at
        if abs(t - cached[0]) > 0.05:
            tc = min(max(t, RESISTANCE_TEMP_MIN_C), RESISTANCE_TEMP_MAX_C)
            cached = (
                t,
                math.exp(self._tc * (REFERENCE_TEMP_C - tc)),
                _interpolate(self._cap_temps, tc) if self._cap_temps else 1.0,
                TWO_R_OVER_F * (tc + 273.15),
                p.ocv_temp_coeff_v_per_k * (tc - REFERENCE_TEMP_C),
            )
            self._cap_temps_at = cached
        _, slow, fraction, v_t, ocv_shift = cached
        # Hysteresis: moves towards the branch of the current's direction, by the charge moved.
        if i != 0.0:
            moved = (i if i > 0.0 else -i) * self._discharge_step / p.hysteresis_charge
            target = 1.0 if i > 0.0 else -1.0
            self.hysteresis = target + (self.hysteresis - target) * math.exp(-moved)
        r1 = self._r1 * slow
        v_rc = self.polarisation_v * self._decay_rc + i * r1 * (1.0 - self._decay_rc)
        self.polarisation_v = v_rc
        r0 = self._r0_25 * slow
        self.r0_ohm = r0
        eta = v_t * math.asinh(i * slow / (2.0 * self._i0)) if self._i0 > 0.0 else 0.0
        heat_w = i * i * r0 + v_rc * v_rc / r1 + i * eta + self.heat_in_w
        t_eq = ambient_c + heat_w * self._inv_g
        self.temperature_c = t_eq + (t - t_eq) * self._decay_th
        # Apparent capacity: the OCV is read at the charge stretched away from the middle;
        # cold stretches both ends, the current only the end it heads for (a discharge
        # stretching the full end made a cell at 99.9 % read 36 mV higher at 0.1 C).
        x = 0.5 + (charge - 0.5) / fraction
        if (x > 0.5) == (i > 0.0):
            x = 0.5 + (x - 0.5) / (
                1.0 - p.capacity_loss_per_c * (i if i > 0.0 else -i) / self.capacity_ah
            )
        if x > CHARGE_MAX:
            x = CHARGE_MAX
        elif x < CHARGE_MIN:
            x = CHARGE_MIN
        x0, v0, slope = self._segments[bisect_right(self._breaks, x)]
        ocv = v0 + slope * (x - x0)
        ocv += self.hysteresis * p.hysteresis_v + ocv_shift
        self.ocv = ocv
        self.voltage = ocv + i * r0 + v_rc + eta
        self.current_a = i


def _advance_plain(
    cells: Sequence[Cell], dt: float, currents: Iterable[float], ambient_c: float
) -> None:
    """Advance cells without any effect of the full path (Cell.realistic off) by dt
    seconds, each with its current of `currents` (+ its drift) flowing in.

    The hot loop of the simulator: a pack's cells in one loop, with the module's constants
    and functions as locals, the cells' attributes read once each."""
    exp = math.exp
    segment_of = bisect_right
    charge_min, charge_max = CHARGE_MIN, CHARGE_MAX
    temp_min, temp_max = RESISTANCE_TEMP_MIN_C, RESISTANCE_TEMP_MAX_C
    reference = REFERENCE_TEMP_C
    for c, current_a in zip(cells, currents, strict=False):  # currents may be endless
        if c._dt != dt:
            c._set_dt(dt)
        i = current_a + c.drift_a
        charge = c._charge + i * (c._charge_step if i > 0.0 else c._discharge_step)
        charge -= c._self_discharge_step
        if charge > charge_max:
            charge = charge_max
        elif charge < charge_min:
            charge = charge_min
        c._charge = charge
        # Exact solution of the RC branch and of the thermal node over the step: stable for
        # any dt.
        v_rc = c.polarisation_v * c._decay_rc + i * c._rc_gain
        c.polarisation_v = v_rc
        r0 = c.r0_ohm
        heat_w = i * i * r0 + v_rc * v_rc / c._r1 + c.heat_in_w
        t_eq = ambient_c + heat_w * c._inv_g
        t = t_eq + (c.temperature_c - t_eq) * c._decay_th
        c.temperature_c = t
        if t < temp_min:
            t = temp_min
        elif t > temp_max:
            t = temp_max
        r0 = c._r0_25 * exp(c._tc * (reference - t))
        c.r0_ohm = r0
        x0, v0, slope = c._segments[segment_of(c._breaks, charge)]
        ocv = v0 + slope * (charge - x0)
        c.ocv = ocv
        c.voltage = ocv + i * r0 + v_rc
        c.current_a = i


def _interpolate(points: tuple[tuple[float, float], ...], x: float) -> float:
    """Piecewise linear through points (increasing x), held at the ends."""
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in pairwise(points):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[-1][1]


def _check_step(dt: float, current_a: float) -> None:
    # NaN in means NaN everywhere after: refuse it where it enters.
    if not (math.isfinite(dt) and dt >= 0.0):
        raise ValueError(f"dt must be finite and >= 0, not {dt!r}")
    if not math.isfinite(current_a):
        raise ValueError(f"current must be finite, not {current_a!r}")


@dataclass(frozen=True, slots=True)
class SensorParams:
    """How a node's sensors read its pack. The defaults read exactly (the node still rounds
    to its own units); the noise draws come from the pack's own seeded `random.Random`, so
    a run stays reproducible.

    Typical sizes: a shunt amplifier's offset of 0.1-0.5 A and gain error of 0.5-1 % (a JK
    BMS's offset drifts SoC 2-3 % a day, brief charging-and-soc.md); cell monitors quantise
    at 0.1 mV (LTC6813) to 1 mV (BQ76952) and are noisy to a few mV in a switching inverter's
    field; sense wires of thin cable and a fuse are 20-100 mOhm.
    """

    current_offset_a: float = 0.0  # added to every current reading, A
    current_gain: float = 1.0  # the reading is the true current times this
    current_noise_a: float = 0.0  # standard deviation of each current reading, A
    cell_noise_v: float = 0.0  # standard deviation of each cell reading, V
    cell_lsb_v: float = 0.0  # a cell reading's step, V (0: no quantisation of its own)
    # Resistance of each cell sense wire (ohm): a cell's own bleed current flows through its
    # two wires, so while it bleeds it reads low by 2 I R and its neighbours high by I R.
    sense_wire_ohm: float = 0.0

    def __post_init__(self) -> None:
        values = (self.current_noise_a, self.cell_noise_v, self.cell_lsb_v, self.sense_wire_ohm)
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ValueError("sensor noise, quantisation and wire resistance must be >= 0")
        if not (math.isfinite(self.current_offset_a) and 0.5 <= self.current_gain <= 1.5):
            raise ValueError("current offset must be finite, current gain within 0.5..1.5")

    @property
    def exact(self) -> bool:
        """True when the readings are the true values (the defaults)."""
        return self == EXACT_SENSORS


EXACT_SENSORS = SensorParams()


def _even_sensors(n_cells: int, n_sensors: int) -> tuple[tuple[int, ...], ...]:
    """Sensor k sees the k-th contiguous block of cells."""
    blocks = []
    for k in range(n_sensors):
        lo = k * n_cells // n_sensors
        hi = max((k + 1) * n_cells // n_sensors, lo + 1)
        blocks.append(tuple(range(lo, min(hi, n_cells))))
    return tuple(blocks)


# A cell's readings, as the pack sums and lists them every step: map() over these runs
# without a Python frame per cell, in the same order (the same sums) as a loop would.
_VOLTAGE: Callable[[Cell], float] = attrgetter("voltage")
_TEMPERATURE: Callable[[Cell], float] = attrgetter("temperature_c")
_CAPACITY: Callable[[Cell], float] = attrgetter("capacity_ah")
_REMAINING: Callable[[Cell], float] = attrgetter("remaining_ah")
_CHARGE: Callable[[Cell], float] = attrgetter("_charge")
_OCV: Callable[[Cell], float] = attrgetter("ocv")
_POLARISATION: Callable[[Cell], float] = attrgetter("polarisation_v")
_R0: Callable[[Cell], float] = attrgetter("r0_ohm")


class Pack:
    """The cells of one node, in series, with its temperature sensors and balancer.

    Cells are indexed from 0 here (cell number k + 1 on the bus). Inputs the simulator sets:
    `balance_mask` (bit k bleeds cell k + 1 through `bleed_ohm`) and `ambient_c`. Readings:
    `cell_voltages()`, `temperatures()` (per sensor: the mean temperature of the cells it
    sees, None when its thermistor is open), `voltage`, `current_a` (true),
    `measured_current_a` (as the node's current sensor reads it) and `balancer_temp_c`.
    """

    def __init__(
        self,
        cells: Sequence[Cell],
        sensors: Sequence[Sequence[int]] | int = 4,
        ambient_c: float = 25.0,
        bleed_ohm: float = 33.0,
        balancer_thermal_mass_j_k: float = 20.0,
        balancer_heat_transfer_w_k: float = 0.15,
    ) -> None:
        if not cells:
            raise ValueError("a pack needs at least one cell")
        if not (bleed_ohm > 0 and balancer_thermal_mass_j_k > 0 and balancer_heat_transfer_w_k > 0):
            raise ValueError("bleed resistance and balancer thermal parameters must be > 0")
        self.cells = list(cells)
        n = len(self.cells)
        # No cell takes the full path: the pack advances its cells in one loop.
        self._plain = not any(c._real for c in self.cells)
        self.sensors = (
            _even_sensors(n, sensors) if isinstance(sensors, int) else tuple(map(tuple, sensors))
        )
        for seen in self.sensors:
            if not seen or any(not 0 <= k < n for k in seen):
                raise ValueError(f"sensor cells {seen} must be non-empty indices below {n}")
        self.ambient_c = ambient_c
        self.bleed_ohm = bleed_ohm
        self.balance_mask = 0
        self.balancer_temp_c = ambient_c
        self.current_a = 0.0
        self.current_offset_a = 0.0
        self._open_sensors: set[int] = set()
        self._bal_mass = balancer_thermal_mass_j_k
        self._bal_g = balancer_heat_transfer_w_k
        # Share of the bleed heat that goes into the bleeding cell instead of the balancer's
        # heat sink (resistors on a board glued to the cells): 0..1.
        self.bleed_heat_to_cell = 0.0
        self._heated = False
        # Busbar (or cell terminal) resistance above each cell, in that cell's sense span:
        # the node sees I R more on that cell; the cell itself does not.
        self.busbar_ohm = [0.0] * n
        self._busbar_total = 0.0
        self.sensor = EXACT_SENSORS
        self._exact_sensor = True
        self._noise: random.Random | None = None

    @classmethod
    def build(
        cls,
        rng: random.Random,
        n_cells: int = 16,
        params: CellParams | None = None,
        soc: float = 0.5,
        capacity_spread: float = 0.02,
        soc_spread: float = 0.03,
        resistance_spread: float = 0.10,
        self_discharge_spread: float = 0.30,
        sensors: Sequence[Sequence[int]] | int = 4,
        ambient_c: float = 25.0,
        bleed_ohm: float = 33.0,
    ) -> Self:
        """A pack of n_cells whose capacity, initial SoC, resistance and self-discharge
        differ from cell to cell: each drawn uniformly within +-spread (relative, except
        soc_spread which is absolute) from `rng`, in cell order."""
        if n_cells < 1:
            raise ValueError("n_cells must be >= 1")
        base = params if params is not None else CellParams()
        cells = []
        for _ in range(n_cells):
            p = replace(
                base,
                capacity_ah=base.capacity_ah * (1 + rng.uniform(-capacity_spread, capacity_spread)),
                r0_ohm=base.r0_ohm * (1 + rng.uniform(-resistance_spread, resistance_spread)),
                self_discharge_pct_month=base.self_discharge_pct_month
                * (1 + rng.uniform(-self_discharge_spread, self_discharge_spread)),
            )
            cell_soc = min(max(soc + rng.uniform(-soc_spread, soc_spread), 0.0), 1.0)
            cells.append(Cell(p, cell_soc, ambient_c))
        return cls(cells, sensors, ambient_c, bleed_ohm)

    # -- readings --

    @property
    def voltage(self) -> float:
        """Pack voltage (V): the sum of the cell terminal voltages and busbar drops."""
        v = sum(map(_VOLTAGE, self.cells))
        return v + self.current_a * self._busbar_total if self._busbar_total else v

    @property
    def measured_current_a(self) -> float:
        """The current as the node's sensor reads it (one reading: noise is drawn per call):
        true current with the sensor's gain, offset and noise, plus any injected offset."""
        s = self.sensor
        i = self.current_a * s.current_gain + s.current_offset_a + self.current_offset_a
        if s.current_noise_a and self._noise is not None:
            i += self._noise.gauss(0.0, s.current_noise_a)
        return i

    def set_sensors(self, sensor: SensorParams, noise: random.Random) -> None:
        """How the node's sensors read this pack; `noise` draws their noise (seeded)."""
        self.sensor = sensor
        self._exact_sensor = sensor.exact
        self._noise = noise

    def measured_cell_voltages(self) -> list[float]:
        """Cell voltages as the node's monitor reads them (V), cell 1 first: with busbar
        drops, sense-wire drops of the bleed currents, noise and quantisation."""
        volts = list(map(_VOLTAGE, self.cells))
        s = self.sensor
        if self._busbar_total:
            i = self.current_a
            volts = [v + i * r for v, r in zip(volts, self.busbar_ohm, strict=True)]
        if self._exact_sensor:
            return volts
        mask = self.balance_mask
        if s.sense_wire_ohm and mask:
            bleed = [
                v / self.bleed_ohm if (mask >> k) & 1 and v > 0 else 0.0
                for k, v in enumerate(volts)
            ]
            n, rw = len(volts), s.sense_wire_ohm
            for k in range(n):
                around = (bleed[k - 1] if k else 0.0) + (bleed[k + 1] if k + 1 < n else 0.0)
                volts[k] -= rw * (2.0 * bleed[k] - around)
        if s.cell_noise_v and self._noise is not None:
            gauss, sigma = self._noise.gauss, s.cell_noise_v
            volts = [v + gauss(0.0, sigma) for v in volts]
        if s.cell_lsb_v:
            lsb = s.cell_lsb_v
            volts = [round(v / lsb) * lsb for v in volts]
        return volts

    def cell_voltages(self) -> list[float]:
        """Cell terminal voltages (V), cell 1 first."""
        return list(map(_VOLTAGE, self.cells))

    def cell_temperatures(self) -> list[float]:
        """True cell temperatures (degC), cell 1 first."""
        return list(map(_TEMPERATURE, self.cells))

    def temperatures(self) -> list[float | None]:
        """Sensor readings (degC): each the mean of the cells it sees; None when open."""
        temperature_of = list(map(_TEMPERATURE, self.cells)).__getitem__
        # The cells a sensor sees summed in C (map), in the same order as a loop would.
        if not self._open_sensors:
            return [sum(map(temperature_of, seen)) / len(seen) for seen in self.sensors]
        return [
            None if k in self._open_sensors else sum(map(temperature_of, seen)) / len(seen)
            for k, seen in enumerate(self.sensors)
        ]

    @property
    def capacity_ah(self) -> float:
        """Usable capacity of the pack (Ah): that of its smallest cell."""
        return min(map(_CAPACITY, self.cells))

    @property
    def remaining_ah(self) -> float:
        """Charge the pack can deliver before its first cell is empty (Ah)."""
        cells = self.cells
        charges = list(map(_CHARGE, cells))
        if min(charges) >= 0.0 and max(charges) <= 1.0:
            # Every cell between empty and full (nearly always), where Cell.remaining_ah's
            # clamp changes nothing: the same products, looped in C (the truth asks every
            # step, and a property call per cell was most of its cost).
            lowest: float = min(map(mul, charges, map(_CAPACITY, cells)))
            return lowest
        return min(map(_REMAINING, cells))

    # -- faults --

    def inject_cell_drift(self, index: int, current_a: float) -> None:
        """Fault: push current_a (A) of extra charge into cell `index` only (a leaking
        monitor, a faulty balancer charging it): it runs away above the others. 0 clears."""
        self.cells[index].drift_a = current_a

    def open_thermistor(self, sensor: int, is_open: bool = True) -> None:
        """Fault: temperature sensor `sensor` (0-based) reads None (NotAvailable)."""
        if not 0 <= sensor < len(self.sensors):
            raise IndexError(f"no temperature sensor {sensor}")
        if is_open:
            self._open_sensors.add(sensor)
        else:
            self._open_sensors.discard(sensor)

    def inject_current_offset(self, offset_a: float) -> None:
        """Fault: the node's current sensor reads offset_a (A) more than the true current."""
        self.current_offset_a = offset_a

    def fade_cell(self, index: int, fraction: float) -> None:
        """Fault: cell `index` loses `fraction` of its capacity (see Cell.fade)."""
        self.cells[index].fade(fraction)

    def scale_cell_resistance(self, index: int, factor: float) -> None:
        """Outlier: cell `index` has `factor` times its ohmic and polarisation resistance
        (a poor weld, an aged cell); the rest of its parameters stay."""
        if not (math.isfinite(factor) and factor > 0):
            raise ValueError("resistance factor must be positive")
        cell = self.cells[index]
        cell._r0_25 *= factor
        cell._r1 *= factor
        cell.r0_ohm *= factor
        cell._dt = -1.0

    def set_busbar(self, index: int, ohm: float) -> None:
        """Outlier: a busbar (or loose terminal) of `ohm` above cell `index`, inside that
        cell's sense span: the node reads I R more on that cell."""
        if not (math.isfinite(ohm) and ohm >= 0):
            raise ValueError("busbar resistance must be >= 0")
        self.busbar_ohm[index] = ohm
        self._busbar_total = sum(self.busbar_ohm)

    # -- dynamics --

    def step(self, dt: float, current_a: float) -> None:
        """Advance by dt seconds with current_a (A, + = charging) through the pack."""
        _check_step(dt, current_a)
        self._advance(dt, current_a)

    def ohmic_resistance(self) -> float:
        """The cells' ohmic resistance and the busbars' in series (ohm)."""
        return sum(map(_R0, self.cells)) + self._busbar_total

    def _emf(self) -> float:
        """Source voltage (sum of OCV + polarisation), for the split between strings."""
        cells = self.cells
        # Looped in C, each sum in cell order as a loop would add (every step of a battery
        # of parallel strings asks).
        emf: float = sum(map(add, map(_OCV, cells), map(_POLARISATION, cells)))
        return emf

    def _advance(self, dt: float, current_a: float) -> None:
        self.current_a = current_a
        ambient = self.ambient_c
        mask = self.balance_mask
        bleed_w = 0.0
        cells = self.cells
        currents: Iterable[float]  # into each cell, its bleed taken off
        if mask == 0:
            if self._heated:
                for c in cells:
                    c.heat_in_w = 0.0
                self._heated = False
            currents = repeat(current_a)
        else:
            r = self.bleed_ohm
            share = self.bleed_heat_to_cell
            n = len(cells)
            bled = [current_a] * n
            if share:
                for c in cells:
                    c.heat_in_w = 0.0  # a bleeding cell's is set below
            # The bleeding cells only, lowest first (the mask's set bits, a few at a time):
            # their heat summed in cell order, as a loop over every cell would.
            rest = mask & ((1 << n) - 1)
            while rest:
                bit = rest & -rest
                rest ^= bit
                k = bit.bit_length() - 1
                c = cells[k]
                # The resistor sits across the cell: it draws V / R from this cell only.
                bleed = c.voltage / r if c.voltage > 0.0 else 0.0
                heat = bleed * bleed * r
                if share:
                    c.heat_in_w = heat * share
                    heat -= c.heat_in_w
                    self._heated = True
                bleed_w += heat
                bled[k] = current_a - bleed
            currents = bled
        if self._plain:
            _advance_plain(cells, dt, currents, ambient)
        else:
            for c, i in zip(cells, currents, strict=False):
                c._advance(dt, i, ambient)
        # The balancer's resistors and heat sink: one thermal node, exact over the step.
        t_eq = ambient + bleed_w / self._bal_g
        decay = math.exp(-dt * self._bal_g / self._bal_mass)
        self.balancer_temp_c = t_eq + (self.balancer_temp_c - t_eq) * decay


# A pack's readings, as the battery sums and compares them over a string (every step).
_PACK_VOLTAGE: Callable[[Pack], float] = attrgetter("voltage")
_PACK_CAPACITY: Callable[[Pack], float] = attrgetter("capacity_ah")
_PACK_REMAINING: Callable[[Pack], float] = attrgetter("remaining_ah")


class Battery:
    """Packs (one per node) wired as parallel strings of packs in series.

    `strings` lists the node ids of each string (as TopologySettings.strings). A string
    carries current only while every one of its nodes' relays is closed (`set_relay`). The
    current the inverter pushes splits across the live strings by their source voltage and
    resistance (a common bus voltage); live strings also exchange current among themselves
    when their voltages differ. With every string open nothing flows. Relays start closed
    (`relays_closed`); the simulator sets them from the nodes' relay outputs.
    """

    def __init__(
        self,
        packs: Mapping[int, Pack],
        strings: Sequence[Sequence[int]],
        string_ohm: float = 0.002,
        relays_closed: bool = True,
    ) -> None:
        self.strings = tuple(tuple(s) for s in strings)
        seen = [n for s in self.strings for n in s]
        if not self.strings or any(not s for s in self.strings):
            raise ValueError("need at least one string, each with at least one node")
        if len(seen) != len(set(seen)) or set(seen) != set(packs):
            raise ValueError("every pack must be in exactly one string, and only packs")
        if not string_ohm > 0:
            raise ValueError("string_ohm (cables, fuse, relay of a string) must be > 0")
        self.packs = dict(packs)
        self.string_ohm = string_ohm
        self.relay_closed = {n: relays_closed for n in seen}
        self.string_currents = [0.0] * len(self.strings)
        self.current_a = 0.0
        self.bus_voltage: float | None = None
        self._update_bus_voltage()

    @classmethod
    def build(
        cls,
        rng: random.Random,
        strings: Sequence[Sequence[int]],
        cells_per_node: int = 16,
        params: CellParams | None = None,
        soc: float = 0.5,
        capacity_spread: float = 0.02,
        soc_spread: float = 0.03,
        sensors: int = 4,
        ambient_c: float = 25.0,
        string_ohm: float = 0.002,
        self_discharge_spread: float = 0.30,
        resistance_spread: float = 0.10,
    ) -> Self:
        """Build a pack per node of `strings` (in node-id order, from `rng`) and wire them."""
        nodes = sorted(n for s in strings for n in s)
        packs = {
            n: Pack.build(
                rng,
                cells_per_node,
                params,
                soc,
                capacity_spread=capacity_spread,
                soc_spread=soc_spread,
                resistance_spread=resistance_spread,
                self_discharge_spread=self_discharge_spread,
                sensors=sensors,
                ambient_c=ambient_c,
            )
            for n in nodes
        }
        return cls(packs, strings, string_ohm)

    def set_relay(self, node: int, closed: bool) -> None:
        """Set a node's relay (from the node's relay output)."""
        if node not in self.relay_closed:
            raise KeyError(f"no node {node}")
        self.relay_closed[node] = closed

    def set_ambient(self, ambient_c: float) -> None:
        """Set the ambient temperature of every pack (degC)."""
        for p in self.packs.values():
            p.ambient_c = ambient_c

    def live_strings(self) -> list[int]:
        """Indices of the strings whose relays are all closed."""
        closed = self.relay_closed.__getitem__
        return [j for j, s in enumerate(self.strings) if all(map(closed, s))]

    def step(self, dt: float, current_a: float) -> float:
        """Advance by dt seconds with the inverter pushing current_a (A, + = charging).

        Returns the current that actually flowed (0 when every string is open). Steps
        longer than MAX_SUBSTEP_S are split into equal sub-steps.
        """
        _check_step(dt, current_a)
        n = max(1, math.ceil(dt / MAX_SUBSTEP_S))
        h = dt / n
        for _ in range(n):
            self._advance(h, current_a)
        return self.current_a

    def _advance(self, dt: float, current_a: float) -> None:
        live = self.live_strings()  # the relays are set between steps, not during one
        currents = [0.0] * len(self.strings)
        if len(live) == 1:
            currents[live[0]] = current_a
        elif live:
            # Each live string is a source E_j behind R_j; they share one bus voltage V:
            # sum_j (V - E_j) / R_j = I  ->  V = (I + sum E_j / R_j) / sum 1 / R_j.
            sources = []
            for j in live:
                emf = 0.0
                for node in self.strings[j]:
                    emf += self.packs[node]._emf()
                sources.append((j, emf, self._string_ohm(j)))
            conductance = sum(1.0 / r for _, _, r in sources)
            bus = (current_a + sum(e / r for _, e, r in sources)) / conductance
            for j, e, r in sources:
                currents[j] = (bus - e) / r
        for j, string in enumerate(self.strings):
            for node in string:
                self.packs[node]._advance(dt, currents[j])
        self.string_currents = currents
        self.current_a = current_a if live else 0.0
        self._update_bus_voltage(live)

    def bus_ohm(self) -> float:
        """How far the bus voltage moves per ampere within a step (ohm): each live string's
        cells, busbars and cables in series, the strings in parallel (inf with none live).
        The simulated inverter's voltage loop settles with it (gateway/sim/inverter.py)."""
        conductance = 0.0
        for j in self.live_strings():
            conductance += 1.0 / self._string_ohm(j)
        return 1.0 / conductance if conductance > 0.0 else math.inf

    def _string_ohm(self, j: int) -> float:
        """String j's resistance: its cables, fuse and relay, and its packs in series."""
        ohm = self.string_ohm
        for node in self.strings[j]:
            ohm += self.packs[node].ohmic_resistance()
        return ohm

    def _update_bus_voltage(self, live: list[int] | None = None) -> None:
        if live is None:
            live = self.live_strings()
        if not live:
            self.bus_voltage = None
            return
        pack = self.packs.__getitem__
        total = 0.0
        for j in live:
            string_v: float = sum(map(_PACK_VOLTAGE, map(pack, self.strings[j])))
            total += string_v + self.string_currents[j] * self.string_ohm
        self.bus_voltage = total / len(live)

    # -- truth --

    @property
    def capacity_ah(self) -> float:
        """Usable capacity (Ah): per string its smallest pack's, summed over strings."""
        pack = self.packs.__getitem__
        return sum(min(map(_PACK_CAPACITY, map(pack, s))) for s in self.strings)

    def remaining_ah(self) -> float:
        """True charge the battery can deliver before a cell of each string is empty (Ah)."""
        pack = self.packs.__getitem__
        return sum(min(map(_PACK_REMAINING, map(pack, s))) for s in self.strings)

    def true_soc(self) -> float:
        """True state of charge, 0..1: remaining_ah / capacity_ah."""
        return self.remaining_ah() / self.capacity_ah
