"""A crude closed loop for the strategy tests: cells with an OCV curve, a steep end and an
internal resistance; an inverter that follows CVL and CCL late and slowly.

Good enough to show whether the CVL controller keeps a rising cell below its maximum
without oscillating against a slow voltage loop; not a battery simulator (gateway/sim is).

Harsh conditions of issue 14, each a field or an option:
- `Inverter(follows_ccl=False)`: a charger that honours only the CVL (no CCL, enable bits
  or alarms), like an MPPT feeding DC; `offset_v=-0.3` its voltmeter reading 0.3 V low.
- `Inverter(ccl_overshoot=1.1)`: follows the CCL but delivers 10 % more.
- `Loop(temps=(-7, -7))`: the cells' temperature.
- `Cell(r_ohm=...)`: a high-resistance pack (IR drop); `Cell(capacity_ah=...)` a weak cell.
- `Loop(quantum_v=0.001)`: cell voltages measured in 1 mV steps.
- `Loop(bleed_a=...)`: the balancers: a cell the decision asks to bleed loses this current.
- `Loop(profile=...)`: the limits reach the inverter through an inverter profile's shaping
  (its quirks: Victron/Deye lower the CVL to stop charging, SMA never below the pack).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from gateway.contracts.chemistry import Curve
from gateway.contracts.decision import Decision, Limits
from gateway.contracts.snapshot import BatterySnapshot
from gateway.outputs.inverter import InverterSettings, make_profile
from gateway.outputs.inverter.profile import InverterProfile
from gateway.outputs.inverter.report import build_report
from gateway.soc import SocState
from gateway.strategy import ChargeController
from tests.strategy.battery import snapshot

# Above 100 % the cell voltage climbs steeply: 50 mV per % of overcharge (the LFP knee).
KNEE_V_PER_FRACTION = 5.0
HOUR_S = 3600.0
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
    knee_v_per_fraction: float = KNEE_V_PER_FRACTION  # 20: a steeper top (4x)

    def ocv(self) -> float:
        if self.soc <= 1.0:
            return CRUDE_LFP_OCV.at(100.0 * self.soc)
        return CRUDE_LFP_OCV.at(100.0) + self.knee_v_per_fraction * (self.soc - 1.0)

    def charge(self, current: float, dt: float) -> None:
        self.soc += current * dt / 3600.0 / self.capacity_ah


@dataclass(frozen=True, slots=True)
class Seen:
    """The limits as the inverter received them."""

    cvl: float
    ccl: float


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
    ccl_overshoot: float = 1.0  # delivered current per CCL (1.1: 10 % above)
    current: float = 0.0
    _seen: deque[tuple[float, Seen]] = field(default_factory=deque)

    def step(self, now: float, dt: float, limits: Seen, ocv: float, r_ohm: float) -> float:
        self._seen.append((now, limits))
        while len(self._seen) > 1 and self._seen[1][0] <= now - self.delay_s:
            self._seen.popleft()
        seen = self._seen[0][1]
        i_cv = (seen.cvl - self.offset_v - ocv) / r_ohm
        ccl = seen.ccl * self.ccl_overshoot if self.follows_ccl else self.available_a
        target = max(0.0, min(ccl, self.available_a, i_cv))
        self.current += (target - self.current) * min(1.0, dt / self.lag_s)
        return self.current


def shaped_profile(name: str) -> InverterProfile:
    """An inverter profile by name, with default settings."""
    return make_profile(name, InverterSettings(profile=name))


@dataclass
class Loop:
    controller: ChargeController
    cells: list[Cell]
    inverter: Inverter
    load_a: float = 0.0  # house load drawn from the battery
    time: float = 1_700_000_000.0
    soc: SocState = field(default_factory=lambda: SocState(soc=90.0))
    temps: tuple[float, float] = (25.0, 25.0)
    quantum_v: float = 0.0  # cell voltage resolution (0: exact)
    bleed_a: float = 0.0  # balancing current of a bleeding cell
    profile: InverterProfile | None = None
    # (time, decision, current, highest cell)
    history: list[tuple[float, Decision, float, float]] = field(default_factory=list)
    sent: list[Seen] = field(default_factory=list)  # what the inverter was told, per step
    charged_ah: float = 0.0

    def snap(self, current: float, ocvs: list[float]) -> BatterySnapshot:
        """What the gateway measures: each cell's OCV (`ocvs`) plus its IR drop."""
        volts = [ocv + current * c.r_ohm for ocv, c in zip(ocvs, self.cells, strict=True)]
        if self.quantum_v > 0:
            volts = [round(v / self.quantum_v) * self.quantum_v for v in volts]
        return snapshot(
            [volts],
            time=self.time,
            current=current,
            temps=self.temps,
            capacity_ah=self.cells[0].capacity_ah,
        )

    def told(self, snap: BatterySnapshot, decision: Decision) -> Seen:
        """The CVL and CCL the inverter receives: the strategy's, or the profile's."""
        if self.profile is None:
            return Seen(decision.limits.cvl, decision.limits.ccl)
        report = build_report(snap, decision, self.soc.soc, 100.0, self.profile.settings)
        out = self.profile.shape(report)
        return Seen(out.cvl, out.ccl)

    def run(self, seconds: float, dt: float = 1.0) -> None:
        """Step controller, inverter and cells; history gets (time, decision, current,
        highest cell)."""
        current = self.inverter.current - self.load_a
        for _ in range(round(seconds / dt)):
            # Once a step: the measurement and the inverter see the cells before they charge.
            ocvs = [c.ocv() for c in self.cells]
            snap = self.snap(current, ocvs)
            decision = self.controller.step(snap, self.soc)
            self.history.append((self.time, decision, current, snap.max_cell))
            seen = self.told(snap, decision)
            self.sent.append(seen)
            ocv = sum(ocvs)
            r = sum(c.r_ohm for c in self.cells)
            current = self.inverter.step(self.time, dt, seen, ocv, r) - self.load_a
            bleeding = {
                k for b in decision.balance for k in range(len(self.cells)) if b.cells >> k & 1
            }
            for k, c in enumerate(self.cells):
                c.charge(current - (self.bleed_a if k in bleeding else 0.0), dt)
            self.charged_ah += max(0.0, current) * dt / 3600.0
            self.time += dt

    def limits(self) -> list[Limits]:
        return [d.limits for _, d, _, _ in self.history]

    def peak_cell(self) -> float:
        return max(top for *_, top in self.history)

    def changes_per_hour(self, transition_s: float = 0.0) -> float:
        """0x351 changes (CVL by 0.1 V, CCL by 0.1 A, as the frame carries them) per hour
        (1 s steps), leaving out the `transition_s` after the start and each phase change."""
        frames = [(round(s.cvl * 10), round(s.ccl * 10)) for s in self.sent]
        phases = [d.phase for _, d, _, _ in self.history]
        changes, counted, since = 0, 0, 0.0
        for k in range(1, len(frames)):
            since = 0.0 if phases[k] != phases[k - 1] else since + 1.0
            if since < transition_s or k < transition_s:
                continue
            counted += 1
            changes += frames[k] != frames[k - 1]
        return changes / max(1e-9, counted / HOUR_S)
