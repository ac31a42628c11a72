"""State of charge: coulomb counting per string, recalibrated at trusted points.

Counting is the truth between calibrations. Each parallel string counts its own current
(less its learned sensor offset, trapezoid rule, charge efficiency applied to the charge put
in) against its own usable capacity (rated x learned health), so a string that was out
rejoins with its own charge; the battery's SoC is the strings' capacity-weighted mean.

Trusted points recalibrate it: 100 % at the end of a charge, 0 % when the lowest cell stays
at the empty voltage, and the rested voltage only where the OCV curve is steep enough that
the voltage's error (`ocv_voltage_error_v`) is at most `ocv_max_error` points; on LFP's flat
plateau a rest changes nothing (docs/soc.md gives the threshold and the error bound). Two
trusted points far enough apart measure the usable capacity (charge counted over their SoC
difference): the learned health. A string whose relay is open carries no current: what its
sensor reads then is its offset, learned and subtracted from then on.

Every value carries its uncertainty (± points): set by the calibration it rests on, grown by
counting. The first value, from the voltage under an unknown load, is untrusted; the
inverter then gets the low end of it (`SocState.for_inverter`).

Pure logic: `SocEstimator.update(snapshot)` takes the battery snapshot (time included) and
returns the new `SocState`, which the service persists (`to_dict` / `from_dict`).
"""

from __future__ import annotations

import math
from operator import attrgetter
from typing import NamedTuple

from gateway.contracts.chemistry import ChemistrySpec
from gateway.contracts.decision import Phase
from gateway.contracts.evolve import evolve
from gateway.contracts.snapshot import BatterySnapshot, NodeSnapshot, ProtectionKind
from gateway.soc.settings import SocSettings
from gateway.soc.state import MAX_UNCERTAINTY, SocSource, SocState

# The OCV tables resolve a cell's charge near full only above this (%): below, the curve is
# flat (LFP) and a few millivolts of current or hysteresis would be many percent.
TOP_RESOLVED_SOC = 95.0
# ± points of a 100 % point: the charge ends at the target with a tail current, which leaves
# a fraction of a percent in the cell (0.3 % on the cited LFP curve at 3.45 V).
FULL_UNCERTAINTY = 1.0
# ± points of a 0 % point: the empty voltage is read under load, a few percent before the
# rested curve's end (3.6 % at 3.00 V on the cited LFP curve).
EMPTY_UNCERTAINTY = 4.0


class _Branch(NamedTuple):
    """One parallel string as the counter sees it (a NamedTuple: one per string every
    tick, made in C)."""

    number: int  # its position in the topology (0..)
    current: float  # A as read, + = charging; NaN when unknown
    capacity_ah: float  # rated
    relay_closed: bool
    mean_cell: float  # V, NaN when unknown
    min_cell: float  # V: its lowest cell, else the battery's lowest (NaN when unknown)
    sensor_fault: bool = False  # a node of it reports its current sensor implausible


# A branch's rated capacity, read in C: the sums over the strings run every tick.
_CAPACITY = attrgetter("capacity_ah")


class SocEstimator:
    """Counts the state of charge from battery snapshots.

    `chemistry` gives the charge target and empty voltages and the OCV table: pass the chemistry
    the charge strategy uses (with the user's voltage overrides applied).
    """

    def __init__(
        self, settings: SocSettings, chemistry: ChemistrySpec, state: SocState | None = None
    ) -> None:
        self.settings = settings
        self.chemistry = chemistry
        # The resting cell voltage at low_end_soc: below it the count is pulled (_low_end).
        # Settings and table do not change, and every tick near rest asks.
        self._low_end_v = chemistry.ocv.at(settings.low_end_soc)
        self._state = state if state is not None else SocState()
        self._last_time: float | None = None
        self._last_current: dict[int, float] = {}  # corrected current of the last sample
        self._open_s: dict[int, float] = {}  # how long each string's relay has been open
        self._rest_s = 0.0
        self._rest_used = False  # the present rest already gave its calibration
        self._full_s = 0.0
        self._empty_s = 0.0
        self._phase: Phase | None = None

    @property
    def state(self) -> SocState:
        """The present state (persist it with to_dict())."""
        return self._state

    def set_soc(self, percent: float) -> SocState:
        """The user sets the SoC (%), for every string. It counts on from there; capacity
        learning restarts."""
        if not (math.isfinite(percent) and 0.0 <= percent <= 100.0):
            raise ValueError(f"SoC {percent!r} is not within 0..100 %")
        self._state = evolve(
            self._state,
            soc=percent,
            strings=tuple(percent for _ in self._state.strings),
            source=SocSource.USER,
            uncertainty=0.0,
            anchor_soc=None,
        )
        return self._state

    def follow(self, percent: float) -> SocState:
        """The SoC the packs' own BMSes count (a battery of packs that report no cell
        voltages: no voltage here to calibrate on). Counting and cycles go on as before."""
        if not (math.isfinite(percent) and 0.0 <= percent <= 100.0):
            raise ValueError(f"SoC {percent!r} is not within 0..100 %")
        self._state = evolve(self._state, soc=percent, source=SocSource.PACKS)
        return self._state

    def request_ocv(self) -> SocState:
        """The user asks for the SoC from the rested voltage: it is set at the next rest
        where the OCV curve is steep enough (at once if the pack has rested long enough)."""
        if self._state.source is not SocSource.NONE:
            self._state = evolve(self._state, source=SocSource.ESTIMATE)
            self._rest_used = False
        return self._state

    def update(self, snapshot: BatterySnapshot, phase: Phase | None = None) -> SocState:
        """Count one snapshot and return the new state.

        `phase` is the charge phase the strategy decided last: entering FLOAT from
        ABSORPTION or FULL_CHARGE marks the end of a charge (100 %). Invalid snapshots, or
        ones without a usable current or capacity, change nothing.
        """
        entered_float = phase is Phase.FLOAT and self._phase in (
            Phase.ABSORPTION,
            Phase.FULL_CHARGE,
        )
        if phase is not None:
            self._phase = phase
        branches = _branches(snapshot)
        if not _usable(snapshot, branches):
            self._rest_s = self._full_s = self._empty_s = 0.0
            return self._state
        self._fit_strings(len(branches))
        if self._state.source is SocSource.NONE:
            self._start(snapshot, branches)
            return self._state
        dt, current = self._count(snapshot.time, branches)
        self._learn_offsets(branches, dt)
        self._recalibrate(snapshot, branches, dt, current, entered_float)
        return self._state

    # ------------------------------------------------------------------ counting

    def _fit_strings(self, count: int) -> None:
        """One SoC and one offset per string; a changed topology starts every string from
        the battery's SoC and forgets the offsets."""
        st = self._state
        if len(st.strings) != count:
            st = evolve(st, strings=(st.soc,) * count)
        if len(st.offsets) != count:
            st = evolve(st, offsets=(0.0,) * count)
        self._state = st

    def _start(self, snap: BatterySnapshot, branches: list[_Branch]) -> None:
        """First data without a stored state: a rough SoC from the voltage under load,
        untrusted. The load's voltage drop is unknown, so the voltage says only that the SoC
        lies between what the curve gives for it minus and plus estimate_voltage_error_v:
        the value is the middle of that interval, the uncertainty its half-width (the low
        end is what the inverter gets)."""
        cell = _mean_cell(snap)
        e = self.settings.estimate_voltage_error_v
        low = self.chemistry.soc_from_ocv(cell - e)
        high = self.chemistry.soc_from_ocv(cell + e)
        if math.isnan(low) or math.isnan(high):
            return
        soc, error = 0.5 * (low + high), 0.5 * (high - low)
        self._state = evolve(
            self._state,
            soc=soc,
            strings=(soc,) * len(branches),
            source=SocSource.ESTIMATE,
            uncertainty=error,
        )
        self._last_time = snap.time
        self._last_current = self._corrected(branches)

    def _corrected(self, branches: list[_Branch]) -> dict[int, float]:
        """Current through each string whose relay is closed, less its learned offset."""
        offsets = self._state.offsets
        return {
            b.number: b.current - offsets[b.number]
            for b in branches
            if b.relay_closed and math.isfinite(b.current)
        }

    def _count(self, now: float, branches: list[_Branch]) -> tuple[float, float]:
        """Integrate each string's current since the last sample. Returns the counted dt (s)
        and the battery's corrected current (A)."""
        currents = self._corrected(branches)
        last_time, last_current = self._last_time, self._last_current
        self._last_time, self._last_current = now, currents
        total = math.fsum(currents.values())
        if last_time is None:
            return 0.0, total
        st, cfg = self._state, self.settings
        elapsed = now - last_time
        dt = min(max(elapsed, 0.0), cfg.max_step_s)
        rated_total = math.fsum(map(_CAPACITY, branches))
        strings = list(st.strings)
        net_ah = gross_ah = 0.0
        every_string = True
        for b in branches:
            if b.number not in currents:
                every_string = every_string and not b.relay_closed
                continue
            now_a = currents[b.number]
            ah = 0.5 * (now_a + last_current.get(b.number, now_a)) * dt / 3600.0
            if ah > 0:
                ah *= cfg.charge_efficiency
            net_ah += ah
            gross_ah += abs(ah)
            soc = strings[b.number] + 100.0 * ah / (b.capacity_ah * st.health)
            strings[b.number] = min(100.0, max(0.0, soc))
        growth = 100.0 * (
            cfg.count_error * gross_ah / rated_total + cfg.current_offset_error_c * dt / 3600.0
        )
        self._state = evolve(
            st,
            strings=tuple(strings),
            soc=_weighted(strings, branches),
            uncertainty=min(MAX_UNCERTAINTY, st.uncertainty + growth),
            cycles=st.cycles + max(0.0, -net_ah) / rated_total,
            since_anchor=st.since_anchor + net_ah / rated_total,
            # A string with its relay closed but no reading: the count between two trusted
            # points misses its charge and cannot measure the capacity.
            anchor_soc=st.anchor_soc if every_string else None,
            uncounted_s=st.uncounted_s + max(0.0, elapsed - dt),
        )
        return dt, total

    def _learn_offsets(self, branches: list[_Branch], dt: float) -> None:
        """A string whose relay has been open for offset_settle_s carries no current: its
        sensor's reading is its offset. Readings too large to be an offset (a broken sensor,
        which the node reports itself) are not learned."""
        cfg = self.settings
        offsets = list(self._state.offsets)
        learned = False
        for b in branches:
            if b.relay_closed or not math.isfinite(b.current):
                self._open_s.pop(b.number, None)
                continue
            self._open_s[b.number] = opened = self._open_s.get(b.number, 0.0) + dt
            too_large = abs(b.current) > cfg.offset_max_c * b.capacity_ah
            if opened < cfg.offset_settle_s or too_large or b.sensor_fault:
                continue
            offsets[b.number] += (b.current - offsets[b.number]) * min(1.0, dt / cfg.offset_tau_s)
            learned = True
        if learned:  # with every relay closed (most ticks) nothing is learned
            self._state = evolve(self._state, offsets=tuple(offsets))

    # ------------------------------------------------------------------ calibration

    def _recalibrate(
        self,
        snap: BatterySnapshot,
        branches: list[_Branch],
        dt: float,
        current: float,
        entered_float: bool,
    ) -> None:
        cfg, prof = self.settings, self.chemistry
        rated = math.fsum(map(_CAPACITY, branches))
        current_c = current / rated
        rested = abs(current_c) < cfg.rest_current_c
        self._rest_s = self._rest_s + dt if rested else 0.0
        if not rested:
            self._rest_used = False
        at_top = (
            snap.max_cell >= prof.charge_target_v - cfg.full_margin_v
            and -cfg.rest_current_c < current_c < cfg.full_tail_current_c
        )
        self._full_s = self._full_s + dt if at_top else 0.0
        at_bottom = snap.min_cell <= prof.empty_cell_v and current_c < cfg.rest_current_c
        self._empty_s = self._empty_s + dt if at_bottom else 0.0

        # A calibration point fires once per stay at the end (-inf holds it until the
        # battery leaves): while it stays, the count goes on from the value set.
        if entered_float or (at_top and self._full_s >= cfg.full_hold_s):
            self._set_full(snap, branches)
            self._full_s = -math.inf
        elif at_bottom:
            # The empty point owns the bottom: neither a rest nor the low-end pull moves
            # the value it set while the lowest cell stays there.
            if self._empty_s >= cfg.empty_hold_s:
                self._set_empty(snap, branches)
                self._empty_s = -math.inf
        elif self._rest_s >= cfg.rest_time_s and not self._rest_used:
            self._rest_used = self._rested_ocv(snap, branches)
        elif -cfg.low_end_current_c <= current_c < cfg.rest_current_c:
            self._low_end(snap.min_cell, snap.min_temp, dt, branches)

    def _ocv_error(self, cell_v: float, volts: float, soc: float | None = None) -> float:
        """± points of the SoC a voltage `volts` off the curve gives at `cell_v`: the wider
        side of the SoC span of [cell_v - volts, cell_v + volts] on the OCV table, i.e. the
        voltage error over the curve's slope there. `soc`: the curve's SoC at `cell_v` when
        the caller has it (each tick of a rest on the flat part asks: one lookup fewer)."""
        soc_at = self.chemistry.soc_from_ocv
        if soc is None:
            soc = soc_at(cell_v)
        error = max(soc_at(cell_v + volts) - soc, soc - soc_at(cell_v - volts))
        return min(MAX_UNCERTAINTY, error)

    def _rested_ocv(self, snap: BatterySnapshot, branches: list[_Branch]) -> bool:
        """After a rest, each string's rested voltage gives its SoC where the OCV curve is
        steep enough; on the flat part the count goes on. Such a point always measures the
        capacity against the last trusted point; it replaces the count only when it is the
        better of the two (or the value is untrusted). True when the rest was used."""
        cfg, st = self.settings, self._state
        strings = list(st.strings)
        worst = 0.0
        for b in branches:
            cell = b.mean_cell if math.isfinite(b.mean_cell) else _mean_cell(snap)
            soc = self.chemistry.soc_from_ocv(cell)
            error = self._ocv_error(cell, cfg.ocv_voltage_error_v, soc)
            if math.isnan(soc) or error > cfg.ocv_max_error:
                return False
            # In the cold the table's scale is the warm one: the charge is nearer the middle.
            soc = self.chemistry.charge_at(soc, snap.min_temp)
            error += self.chemistry.cold_share(snap.min_temp)
            strings[b.number] = soc
            worst = max(worst, error)
        self._learn(_weighted(strings, branches))
        if not st.trusted or worst < st.uncertainty:
            self._calibrated(strings, branches, SocSource.OCV, worst)
        return True

    def _learn(self, soc: float) -> None:
        """A trusted point at `soc` (%): a capacity measurement against the last one when
        they are far enough apart (the charge counted between them over their SoC
        difference), weighted by that difference; then it is the next measurement's start."""
        st, cfg = self._state, self.settings
        health, learned = st.health, st.learned
        if st.anchor_soc is not None and st.uncounted_s <= cfg.learn_max_uncounted_s:
            span = soc - st.anchor_soc
            if abs(span) >= cfg.learn_min_span:
                measured = st.since_anchor / (span / 100.0)
                if cfg.learn_min_fraction <= measured <= cfg.learn_max_fraction:
                    health += cfg.learn_weight * abs(span) / 100.0 * (measured - health)
                    learned += 1
        self._state = evolve(
            st,
            health=health,
            learned=learned,
            anchor_soc=soc,
            since_anchor=0.0,
            uncounted_s=0.0,
        )

    def _calibrated(
        self, strings: list[float], branches: list[_Branch], source: SocSource, error: float
    ) -> None:
        """The value of a trusted point replaces the count."""
        self._state = evolve(
            self._state,
            soc=_weighted(strings, branches),
            strings=tuple(strings),
            source=source,
            uncertainty=error,
        )

    def _set_full(self, snap: BatterySnapshot, branches: list[_Branch]) -> None:
        """The end of a charge: 100 %, less what the emptiest cell still lacks, for every
        string that took part (relay closed); a string that was out keeps its count. In the
        cold, less: the coldest cell's capacity by temperature (`ChemistrySpec.charge_at`).

        The charge ends when the highest cell is at its target; a series string holds only
        what its emptiest cell holds, and a cell still below the top of its OCV curve is not
        full. The curve resolves only its steep top, so the value stays within
        TOP_RESOLVED_SOC..100 % (it also never turns an end of charge into a reason to
        charge again)."""
        temp, chem = snap.min_temp, self.chemistry
        strings = [
            chem.charge_at(self._full_value(b.min_cell), temp)
            if b.relay_closed
            else self._state.strings[b.number]
            for b in branches
        ]
        self._learn(_weighted(strings, branches))
        error = self._partly(branches, FULL_UNCERTAINTY + chem.cold_share(temp))
        self._calibrated(strings, branches, SocSource.FULL, error)
        self._state = evolve(self._state, last_full=snap.time)

    def _partly(self, branches: list[_Branch], error: float) -> float:
        """± points of the battery after a calibration of the strings whose relay is closed:
        the others keep the uncertainty they had, weighted by capacity."""
        total = math.fsum(map(_CAPACITY, branches))
        old = self._state.uncertainty
        return (
            math.fsum(b.capacity_ah * (error if b.relay_closed else old) for b in branches) / total
        )

    def _full_value(self, min_cell: float) -> float:
        """What a string whose lowest cell is at `min_cell` holds at the end of a charge."""
        prof, cfg = self.chemistry, self.settings
        if not math.isfinite(min_cell) or min_cell >= prof.charge_target_v - cfg.full_margin_v:
            return 100.0
        lacking = prof.soc_from_ocv(min_cell)
        return 100.0 if math.isnan(lacking) else min(100.0, max(TOP_RESOLVED_SOC, lacking))

    def _set_empty(self, snap: BatterySnapshot, branches: list[_Branch]) -> None:
        """The lowest cell held at the empty voltage: 0 % for every string that took part,
        more in the cold (the coldest cell's capacity by temperature)."""
        temp, chem = snap.min_temp, self.chemistry
        empty = chem.charge_at(0.0, temp)
        strings = [empty if b.relay_closed else self._state.strings[b.number] for b in branches]
        self._learn(_weighted(strings, branches))
        error = self._partly(branches, EMPTY_UNCERTAINTY + chem.cold_share(temp))
        self._calibrated(strings, branches, SocSource.EMPTY, error)
        self._state = evolve(self._state, last_empty=snap.time)

    def _low_end(self, min_cell: float, temp_c: float, dt: float, branches: list[_Branch]) -> None:
        """Near empty, pull the count toward the SoC the lowest cell's voltage says.

        The battery is as empty as its emptiest cell, and below about 10 % the OCV curve is
        steep: a few millivolts are a percent. The count, against the rated capacity, drifts
        there by the capacity the cells really have; the discharge derating keeps a loaded
        cell above the empty voltage, so the 0 % point alone rarely comes. A light current
        reads a little below the OCV: the correction errs on the empty side."""
        cfg = self.settings
        if cfg.low_end_soc <= 0.0 or not math.isfinite(min_cell):
            return
        if min_cell > self._low_end_v:
            return
        target = self.chemistry.charge_at(self.chemistry.soc_from_ocv(min_cell), temp_c)
        if math.isnan(target):
            return
        pull = min(1.0, dt / cfg.low_end_tau_s)
        strings = list(self._state.strings)
        for b in branches:
            if b.relay_closed:
                strings[b.number] += (target - strings[b.number]) * pull
                strings[b.number] = min(100.0, max(0.0, strings[b.number]))
        self._state = evolve(self._state, strings=tuple(strings), soc=_weighted(strings, branches))


def _branches(snap: BatterySnapshot) -> list[_Branch]:
    """The parallel strings, in topology order; a snapshot without a topology is one."""
    if not snap.strings:
        return [_Branch(0, snap.current, snap.capacity_ah, True, _mean_cell(snap), snap.min_cell)]
    cells = snap.cells_in_series
    return [
        _Branch(
            i,
            s.current,
            s.capacity_ah,
            s.relay_closed,
            s.voltage / cells if cells > 0 else math.nan,
            _lowest_cell(snap, s.nodes),
            # Each node asked in C (map), without a list comprehension's frame per string.
            any(map(_sensor_fault, map(snap.nodes.get, s.nodes))),
        )
        for i, s in enumerate(snap.strings)
    ]


def _sensor_fault(node: NodeSnapshot | None) -> bool:
    """The node says its current reading is implausible (its own rest-offset check)."""
    if node is None or not (node.faults or node.warnings):  # every tick, as a rule
        return False
    doubtful = (ProtectionKind.SENSOR_FAULT, ProtectionKind.PLAUSIBILITY)
    return any(k in node.faults or k in node.warnings for k in doubtful)


def _lowest_cell(snap: BatterySnapshot, nodes: tuple[int, ...]) -> float:
    """The lowest cell of a string from its nodes' cell voltages (those finite and above
    0), else the battery's."""
    low = math.inf
    for n in nodes:
        cells = snap.cell_voltages.get(n, ())
        if not cells:
            continue
        # Every tick asks: when every reading is usable (a sum tells a NaN or an infinity)
        # the builtin finds the lowest without a Python comparison per cell.
        least = min(cells)
        if not (least > 0 and math.isfinite(sum(cells))):
            usable = [v for v in cells if math.isfinite(v) and v > 0]
            if not usable:
                continue
            least = min(usable)
        low = min(low, least)
    return low if low < math.inf else snap.min_cell


def _usable(snap: BatterySnapshot, branches: list[_Branch]) -> bool:
    """Valid data with a current and capacities that can be counted."""
    return (
        snap.valid
        and math.isfinite(snap.current)
        and snap.cells_in_series > 0
        and math.isfinite(snap.time)
        and bool(branches)
        # Every capacity finite and positive, tested in C (every tick asks).
        and all(map(math.isfinite, map(_CAPACITY, branches)))
        and min(map(_CAPACITY, branches)) > 0.0
    )


def _weighted(strings: list[float], branches: list[_Branch]) -> float:
    """The battery's SoC: the strings' SoC weighted by their rated capacity."""
    total = math.fsum(map(_CAPACITY, branches))
    return math.fsum(strings[b.number] * b.capacity_ah for b in branches) / total


def _mean_cell(snap: BatterySnapshot) -> float:
    """Mean cell voltage: pack voltage over cells, else the middle of min and max."""
    if math.isfinite(snap.voltage) and snap.voltage > 0 and snap.cells_in_series > 0:
        return snap.voltage / snap.cells_in_series
    return 0.5 * (snap.min_cell + snap.max_cell)
