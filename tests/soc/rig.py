"""A synthetic battery for the SoC tests: parallel strings of LFP cells whose rested voltage is
the cited OCV curve (gateway/contracts/chemistry.py, LFP_OCV_POINTS), with a true capacity,
a cell resistance and a current sensor that may read an offset. Time is simulated."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gateway.contracts.chemistry import LFP
from gateway.contracts.decision import Phase
from gateway.contracts.snapshot import (
    BatterySnapshot,
    NodeSnapshot,
    NodeState,
    ProtectionKind,
    StringSnapshot,
)
from gateway.soc import SocEstimator, SocSettings, SocState

CELLS = 16
R_CELL = 0.0005  # ohm per cell of a 100 Ah string: 50 mV at 1 C


@dataclass
class TrueString:
    """One string as it really is."""

    soc: float  # %, the truth
    rated_ah: float = 100.0
    capacity_ah: float = 100.0  # what it really holds
    offset_a: float = 0.0  # its sensor reads this much more than flows
    relay_closed: bool = True
    faults: frozenset[ProtectionKind] = frozenset()  # what its node reports

    def cell_v(self, current: float) -> float:
        return LFP.ocv.at(self.soc) + current * R_CELL * 100.0 / self.rated_ah


@dataclass
class Rig:
    """Strings in parallel; `run` drives currents through the closed ones for a while and
    feeds the estimator a snapshot every `dt` seconds."""

    strings: list[TrueString]
    settings: SocSettings = field(default_factory=SocSettings)
    state: SocState | None = None
    t: float = 0.0
    est: SocEstimator = field(init=False)

    def __post_init__(self) -> None:
        self.est = SocEstimator(self.settings, LFP, self.state)

    def snapshot(self, currents: list[float]) -> BatterySnapshot:
        built = []
        cells = []
        for i, (s, amps) in enumerate(zip(self.strings, currents, strict=True)):
            cell = s.cell_v(amps)
            cells.append(cell)
            built.append(
                StringSnapshot(
                    index=i,
                    nodes=(i,),
                    online=s.relay_closed,
                    blocked=False,
                    reason="",
                    voltage=CELLS * cell,
                    current=amps + s.offset_a,
                    capacity_ah=s.rated_ah,
                    relay_closed=s.relay_closed,
                )
            )
        online = [b for b in built if b.online]
        return BatterySnapshot(
            time=self.t,
            valid=True,
            data_age=0.5,
            cells_in_series=CELLS,
            voltage=math.fsum(b.voltage for b in online or built) / len(online or built),
            current=math.fsum(b.current for b in built),
            min_cell=min(cells),
            max_cell=max(cells),
            min_cell_at=None,
            max_cell_at=None,
            min_temp=25.0,
            max_temp=25.0,
            capacity_ah=math.fsum(b.capacity_ah for b in online),
            strings=tuple(built),
            cell_voltages={i: (cell,) * CELLS for i, cell in enumerate(cells)},
            nodes={
                i: NodeSnapshot(
                    node=i,
                    present=True,
                    age=0.5,
                    state=NodeState.ACTIVE,
                    relay_closed=s.relay_closed,
                    trip_cleared=False,
                    voltage=b.voltage,
                    current=b.current,
                    faults=s.faults,
                )
                for i, (s, b) in enumerate(zip(self.strings, built, strict=True))
            },
        )

    def run(
        self, seconds: float, amps: float = 0.0, dt: float = 5.0, phase: Phase | None = None
    ) -> SocState:
        """`amps` of battery current (+ = charging), shared by the closed strings in
        proportion to their capacity, for `seconds`; the truth is counted exactly."""
        end = self.t + seconds
        state = self.est.state
        while self.t < end - 1e-9:
            closed = [s for s in self.strings if s.relay_closed]
            total = math.fsum(s.capacity_ah for s in closed)
            currents = [
                amps * s.capacity_ah / total if s.relay_closed and total else 0.0
                for s in self.strings
            ]
            state = self.est.update(self.snapshot(currents), phase)
            self.t += dt
            for s, i in zip(self.strings, currents, strict=True):
                s.soc = min(100.0, max(0.0, s.soc + 100.0 * i * dt / 3600.0 / s.capacity_ah))
        return state

    @property
    def true_soc(self) -> float:
        """The battery's true SoC: what it holds over what it can hold."""
        held = math.fsum(s.soc * s.capacity_ah for s in self.strings)
        return held / math.fsum(s.capacity_ah for s in self.strings)
