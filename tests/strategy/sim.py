"""A crude closed loop for the strategy tests: cells with an OCV curve, a steep end and an
internal resistance; an inverter that follows CVL and CCL late and slowly.

Good enough to show whether the CVL controller keeps a rising cell below its maximum
without oscillating against a slow voltage loop; not a battery simulator.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from gateway.contracts.chemistry import Curve
from gateway.contracts.decision import Decision, Limits
from gateway.contracts.snapshot import BatterySnapshot
from gateway.soc import SocState
from gateway.strategy import ChargeController
from tests.strategy.battery import snapshot

# Above 100 % the cell voltage climbs steeply: 50 mV per % of overcharge (the LFP knee).
KNEE_V_PER_FRACTION = 5.0
# The crude loop's own LFP curve, 0..100 % in 5 % steps, whose 100 % (3.40 V) is where the
# knee above starts. Not the gateway's OCV table (gateway/contracts/chemistry.py): that one
# is a measurement, with its own steep end up to 3.6 V, which this loop models as the knee.
CRUDE_LFP_OCV = Curve(
    tuple(
        (5.0 * i, v)
        for i, v in enumerate(
            (
                2.800, 3.100, 3.180, 3.200, 3.220, 3.240, 3.250, 3.260, 3.265, 3.270, 3.275,
                3.280, 3.285, 3.290, 3.295, 3.300, 3.305, 3.310, 3.315, 3.330, 3.400,
            )
        )
    )
)  # fmt: skip


@dataclass
class Cell:
    capacity_ah: float
    soc: float  # fraction; above 1 is the steep end
    r_ohm: float = 0.0005

    def ocv(self) -> float:
        if self.soc <= 1.0:
            return CRUDE_LFP_OCV.at(100.0 * self.soc)
        return CRUDE_LFP_OCV.at(100.0) + KNEE_V_PER_FRACTION * (self.soc - 1.0)

    def voltage(self, current: float) -> float:
        return self.ocv() + current * self.r_ohm

    def charge(self, current: float, dt: float) -> None:
        self.soc += current * dt / 3600.0 / self.capacity_ah


@dataclass
class Inverter:
    """Charges towards CVL within CCL and the power available; sees limits `delay_s` late
    and moves its current with a first-order lag `lag_s`. Its voltmeter reads `offset_v`
    above the pack. It never discharges to follow CVL (like most hybrid inverters)."""

    delay_s: float = 2.0
    lag_s: float = 3.0
    available_a: float = 150.0
    offset_v: float = 0.0
    follows_ccl: bool = True  # False: an MPPT-like charger that honours only CVL
    current: float = 0.0
    _seen: deque[tuple[float, Limits]] = field(default_factory=deque)

    def step(self, now: float, dt: float, limits: Limits, ocv: float, r_ohm: float) -> float:
        self._seen.append((now, limits))
        while len(self._seen) > 1 and self._seen[1][0] <= now - self.delay_s:
            self._seen.popleft()
        seen = self._seen[0][1]
        i_cv = (seen.cvl - self.offset_v - ocv) / r_ohm
        ccl = seen.ccl if self.follows_ccl else self.available_a
        target = max(0.0, min(ccl, self.available_a, i_cv))
        self.current += (target - self.current) * min(1.0, dt / self.lag_s)
        return self.current


@dataclass
class Loop:
    controller: ChargeController
    cells: list[Cell]
    inverter: Inverter
    load_a: float = 0.0  # house load drawn from the battery
    time: float = 1_700_000_000.0
    soc: SocState = field(default_factory=lambda: SocState(soc=90.0))
    history: list[tuple[float, Decision, float, float]] = field(default_factory=list)

    def snap(self, current: float) -> BatterySnapshot:
        return snapshot([[c.voltage(current) for c in self.cells]], time=self.time, current=current)

    def run(self, seconds: float, dt: float = 1.0) -> None:
        """Step controller, inverter and cells; history gets (time, decision, current,
        highest cell)."""
        current = self.inverter.current - self.load_a
        for _ in range(round(seconds / dt)):
            snap = self.snap(current)
            decision = self.controller.step(snap, self.soc)
            self.history.append((self.time, decision, current, snap.max_cell))
            ocv = sum(c.ocv() for c in self.cells)
            r = sum(c.r_ohm for c in self.cells)
            current = self.inverter.step(self.time, dt, decision.limits, ocv, r) - self.load_a
            for c in self.cells:
                c.charge(current, dt)
            self.time += dt
