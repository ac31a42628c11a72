"""Battery model: the latest data of every node with its age, and the topology that turns
the nodes into one battery (a BatterySnapshot for the pure logic).

Frames arrive already decoded (gateway/sources/moat_nodes/ingest.py routes them). Nothing
here trusts a value
without its age: a node whose frames are older than the timeout is missing, and a missing
node's string is blocked -- stale data means stop, not "last value".
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from bms.e2e import ACCEPT, AliveCheck
from gateway.codec import moat_bms as codec
from gateway.contracts.snapshot import (
    BatterySnapshot,
    CellRef,
    NodeSnapshot,
    NodeState,
    ProtectionKind,
    StringSnapshot,
)
from gateway.contracts.topology import MAX_CELLS, TopologySettings

NAN = math.nan
NEVER = -math.inf
KINDS = tuple(ProtectionKind)


def _flag_slice(level: str) -> slice:
    """Position of a level's 16 flags in the decoded NodeState tuple (checked contiguous)."""
    fields = codec.NodeState._fields
    first = fields.index(f"{level}_cell_over_voltage")
    names = [f"{level}_{re.sub(r'(?<!^)(?=[A-Z])', '_', k.value).lower()}" for k in KINDS]
    if list(fields[first : first + len(KINDS)]) != names:
        raise RuntimeError(f"NodeState {level} flags are not in ProtectionKind order")
    return slice(first, first + len(KINDS))


FAULTS = _flag_slice("fault")
WARNINGS = _flag_slice("warn")
INFOS = _flag_slice("info")


def _mask(frame: tuple[int, ...], level: slice) -> int:
    """One level's flags of a decoded NodeState as a bit mask (bit = ProtectionKind order)."""
    flags = frame[level]
    if not any(flags):  # the usual case: nothing raised
        return 0
    mask = 0
    for bit, flag in enumerate(flags):
        if flag:
            mask |= 1 << bit
    return mask


_KIND_SETS: dict[int, frozenset[ProtectionKind]] = {}
_NODE_STATES: dict[int, NodeState] = {int(s): s for s in NodeState}
_RELAY_STATES = tuple(codec.NodeStateRelayState(v) for v in range(3))
_GATEWAY_LINKS = tuple(codec.NodeStateGatewayLink(v) for v in range(3))
_RELAY_REQUESTS = tuple(codec.NodeStateRelayRequest(v) for v in range(3))


def kinds(mask: int) -> frozenset[ProtectionKind]:
    """Flag mask -> set of protection kinds (cached: there are few distinct masks)."""
    found = _KIND_SETS.get(mask)
    if found is None:
        found = frozenset(k for bit, k in enumerate(KINDS) if mask >> bit & 1)
        if len(_KIND_SETS) < 4096:
            _KIND_SETS[mask] = found
    return found


def _cell_numbers(signals: dict[int, tuple[str, ...]], pattern: str) -> dict[int, tuple[int, ...]]:
    """Multiplexer value -> 0-based cell (or sensor) indices, from the generated signal names."""
    out = {}
    for mux, names in signals.items():
        indices = []
        for name in names:
            match = re.fullmatch(pattern, name)
            if match is None:
                raise RuntimeError(f"unexpected signal {name}")
            indices.append(int(match.group(1)) - 1)
        out[mux] = tuple(indices)
    return out


CELL_GROUPS = _cell_numbers(codec.CELL_VOLTAGES_MUXED_SIGNALS, r"Cell(\d+)Voltage")
SENSOR_GROUPS = _cell_numbers(codec.CELL_TEMPERATURES_MUXED_SIGNALS, r"Temperature(\d+)")


class NodeRecord:
    """Everything known about one node, with the time each part arrived."""

    def __init__(self, node: int, cell_count: int) -> None:
        self.node = node
        self.cell_count = cell_count  # configured
        self.alive = AliveCheck(max_delta=7)
        self.state_frames_ignored = 0  # repeated/old NodeState frames (stuck or reordered)
        # NodeState
        self.state = NodeState.INIT
        self.relay_state = codec.NodeStateRelayState.OPEN
        self.trip_cleared = False
        self.balancing = False
        self.gateway_link = codec.NodeStateGatewayLink.NEVER_SEEN
        self.relay_request = codec.NodeStateRelayRequest.NONE
        self.faults = 0
        self.warnings = 0
        self.infos = 0
        self.t_state = NEVER
        # PackStatus
        self.pack_voltage = NAN
        self.pack_current = NAN
        self.rejected_commands = 0
        self.t_pack = NEVER
        # CellExtremes
        self.min_cell = NAN
        self.max_cell = NAN
        self.mean_cell = NAN
        self.min_cell_no = 0
        self.max_cell_no = 0
        self.t_extremes = NEVER
        # TemperatureExtremes
        self.min_temp = NAN
        self.max_temp = NAN
        self.min_temp_no = 0
        self.max_temp_no = 0
        self.balancer_temp = NAN
        self.t_temps = NEVER
        # CellVoltages / CellTemperatures, per value and per group
        self.cells = [NAN] * MAX_CELLS
        self.t_cells = [NEVER] * MAX_CELLS
        self.temps = [NAN] * MAX_CELLS
        self.t_sensors = [NEVER] * MAX_CELLS
        # BalanceState
        self.bleeding = 0
        self.t_balance = NEVER
        # NodeInfo
        self.info: codec.NodeInfo | None = None
        self.t_info = NEVER

    def age(self, now: float) -> float:
        """Seconds since the oldest of the frames a decision needs."""
        return now - min(self.t_state, self.t_pack, self.t_extremes)

    def fresh(self, now: float, timeout: float) -> bool:
        return self.age(now) <= timeout

    @property
    def relay_closed(self) -> bool:
        return self.relay_state == codec.NodeStateRelayState.CLOSED

    def cell_voltages(self, now: float, timeout: float) -> tuple[float, ...]:
        cells, times = self.cells, self.t_cells
        return tuple(cells[i] if now - times[i] <= timeout else NAN for i in range(self.cell_count))


class BatteryModel:
    """All configured nodes, and the snapshot of the battery they make together."""

    def __init__(self, topology: TopologySettings, node_timeout: float) -> None:
        self.topology = topology
        self.node_timeout = node_timeout
        self.nodes: dict[int, NodeRecord] = {
            n: NodeRecord(n, topology.cells_of(n)) for n in topology.nodes
        }
        # A cell beyond these makes a frame urgent: the strategy runs at once instead of at
        # its next tick. The owner sets them from the chemistry (stop-charge / stop-discharge
        # cell voltages).
        self.alert_high_cell = math.inf
        self.alert_low_cell = -math.inf

    # ------------------------------------------------------------------ frame handlers
    # Each returns True when the frame may change a decision at once (urgent).

    def on_node_state(self, node: int, m: codec.NodeState, now: float) -> bool:
        rec = self.nodes[node]
        if rec.alive.check(m.alive_counter) != ACCEPT:
            # A repeated counter is a stuck or duplicated frame, a backwards one is old:
            # neither refreshes the node (a hung node must go stale).
            rec.state_frames_ignored += 1
            return False
        faults, warnings, infos = _mask(m, FAULTS), _mask(m, WARNINGS), _mask(m, INFOS)
        state = _NODE_STATES.get(m.state, NodeState.INIT)
        changed = (
            state != rec.state
            or m.relay_state != rec.relay_state
            or faults != rec.faults
            or warnings != rec.warnings
            or infos != rec.infos
            or rec.t_state == NEVER
        )
        rec.state = state
        # Enum members by table instead of Enum calls: this runs for every NodeState frame.
        rec.relay_state = _RELAY_STATES[min(m.relay_state, 2)]
        rec.trip_cleared = bool(m.trip_cleared)
        rec.balancing = bool(m.balancing)
        rec.gateway_link = _GATEWAY_LINKS[min(m.gateway_link, 2)]
        rec.relay_request = _RELAY_REQUESTS[min(m.relay_request, 2)]
        rec.faults, rec.warnings, rec.infos = faults, warnings, infos
        rec.t_state = now
        return changed

    def on_pack_status(self, node: int, m: codec.PackStatus, now: float) -> bool:
        rec = self.nodes[node]
        rec.pack_voltage = m.pack_voltage
        rec.pack_current = m.pack_current
        rec.rejected_commands = m.rejected_commands
        rec.t_pack = now
        return False

    def on_cell_extremes(self, node: int, m: codec.CellExtremes, now: float) -> bool:
        rec = self.nodes[node]
        rec.min_cell = m.min_cell_voltage
        rec.max_cell = m.max_cell_voltage
        rec.mean_cell = m.mean_cell_voltage
        rec.min_cell_no = m.min_cell_number
        rec.max_cell_no = m.max_cell_number
        rec.t_extremes = now
        return (
            m.max_cell_voltage >= self.alert_high_cell or m.min_cell_voltage <= self.alert_low_cell
        )

    def on_temperature_extremes(self, node: int, m: codec.TemperatureExtremes, now: float) -> bool:
        rec = self.nodes[node]
        rec.min_temp = m.min_temperature
        rec.max_temp = m.max_temperature
        rec.min_temp_no = m.min_temperature_sensor
        rec.max_temp_no = m.max_temperature_sensor
        rec.balancer_temp = m.balancer_temperature
        rec.t_temps = now
        return False

    def on_cell_voltages(self, node: int, m: codec.CellVoltages, now: float) -> bool:
        rec = self.nodes[node]
        urgent = False
        cells, times = rec.cells, rec.t_cells
        for index, volts in zip(CELL_GROUPS[m.cell_group], m.muxed, strict=True):
            cells[index] = volts
            times[index] = now
            if volts >= self.alert_high_cell or volts <= self.alert_low_cell:
                urgent = True
        return urgent

    def on_cell_temperatures(self, node: int, m: codec.CellTemperatures, now: float) -> bool:
        rec = self.nodes[node]
        for index, temp in zip(SENSOR_GROUPS[m.sensor_group], m.muxed, strict=True):
            rec.temps[index] = temp
            rec.t_sensors[index] = now
        return False

    def on_balance_state(self, node: int, m: codec.BalanceState, now: float) -> bool:
        rec = self.nodes[node]
        rec.bleeding = (
            m.bleeding_cells01_to16
            | m.bleeding_cells17_to32 << 16
            | m.bleeding_cells33_to48 << 32
            | m.bleeding_cells49_to64 << 48
        )
        rec.t_balance = now
        return False

    def on_node_info(self, node: int, m: codec.NodeInfo, now: float) -> bool:
        rec = self.nodes[node]
        rec.info = m
        rec.t_info = now
        return False

    # ------------------------------------------------------------------ the battery

    def mismatches(self, chemistry: str | None = None) -> list[str]:
        """Differences between what nodes report about themselves (NodeInfo) and the
        configuration: cell count, and the chemistry when `chemistry` (e.g. "lfp") is given."""
        out = []
        for rec in self.nodes.values():
            info = rec.info
            if info is None:
                continue
            if info.cell_count != rec.cell_count:
                out.append(
                    f"node {rec.node} reports {info.cell_count} cells, configured {rec.cell_count}"
                )
            if chemistry is not None:
                try:
                    reported = codec.NodeInfoChemistry(info.chemistry).name.lower()
                except ValueError:
                    reported = f"unknown chemistry {info.chemistry}"
                if reported != chemistry:
                    out.append(
                        f"node {rec.node} reports {reported.upper()} cells, "
                        f"configured {chemistry.upper()}"
                    )
        return out

    # What is fresh, asked by the page too: only the model decides what counts as stale.

    def fresh_cells(self, rec: NodeRecord, now: float) -> tuple[float, ...]:
        """The node's cell voltages, NaN where a reading is older than the timeout."""
        return rec.cell_voltages(now, self.node_timeout)

    def fresh_temperatures(self, rec: NodeRecord, now: float) -> list[float]:
        """Sensor readings, NaN where stale: as many as the node says it has (never more than
        the model keeps: a corrupted NodeInfo may claim 255), else up to the last fresh one."""
        fresh = [now - t <= self.node_timeout for t in rec.t_sensors]
        if rec.info is not None:
            count = min(rec.info.temperature_sensor_count, len(rec.temps))
        else:
            count = max((i + 1 for i, ok in enumerate(fresh) if ok), default=0)
        return [rec.temps[i] if fresh[i] else NAN for i in range(count)]

    def fresh_balancer_temperature(self, rec: NodeRecord, now: float) -> float:
        return rec.balancer_temp if now - rec.t_temps <= self.node_timeout else NAN

    def node_snapshot(self, rec: NodeRecord, now: float) -> NodeSnapshot:
        present = rec.fresh(now, self.node_timeout)
        return NodeSnapshot(
            node=rec.node,
            present=present,
            age=now - rec.t_state,
            state=rec.state,
            relay_closed=rec.relay_closed,
            trip_cleared=rec.trip_cleared,
            voltage=rec.pack_voltage if present else NAN,
            current=rec.pack_current if present else NAN,
            faults=kinds(rec.faults),
            warnings=kinds(rec.warnings),
            infos=kinds(rec.infos),
        )

    def snapshot(self, now: float) -> BatterySnapshot:
        timeout = self.node_timeout
        nodes = {n: self.node_snapshot(rec, now) for n, rec in self.nodes.items()}
        strings = tuple(self._string(i, s, nodes) for i, s in enumerate(self.topology.strings))
        with_data = [s for s in strings if not math.isnan(s.voltage)]
        online = [s for s in strings if s.online]
        fresh = [self.nodes[n] for s in with_data for n in s.nodes]

        voltage = _mean(s.voltage for s in (online or with_data))
        current = math.fsum(s.current for s in with_data) if with_data else NAN
        min_cell, min_at = _extreme(fresh, "min_cell", "min_cell_no", highest=False)
        max_cell, max_at = _extreme(fresh, "max_cell", "max_cell_no", highest=True)
        # The worst of every fresh source: a CellVoltages frame may show a cell beyond the
        # last CellExtremes (they are sent at different times), and either must bite.
        cell_voltages = {rec.node: rec.cell_voltages(now, timeout) for rec in fresh}
        for node, volts in cell_voltages.items():
            for index, v in enumerate(volts):
                if math.isnan(v):
                    continue
                if math.isnan(max_cell) or v > max_cell:
                    max_cell, max_at = v, CellRef(node, index + 1)
                if math.isnan(min_cell) or v < min_cell:
                    min_cell, min_at = v, CellRef(node, index + 1)
        temps_fresh = self._temps_fresh(now)
        if all(rec.node in temps_fresh for rec in fresh):
            min_temp, _ = _extreme(fresh, "min_temp", "min_temp_no", False, temps_fresh)
            max_temp, _ = _extreme(fresh, "max_temp", "max_temp_no", True, temps_fresh)
        else:
            # A node whose cells count but whose temperatures went stale: the battery's
            # temperature is unknown (the strategy then stops what needs it), never "the
            # others' temperature" (that node may be the hot one).
            min_temp = max_temp = NAN
        faults = warnings = infos = 0
        for rec in fresh:
            faults |= rec.faults
            warnings |= rec.warnings
            infos |= rec.infos
        return BatterySnapshot(
            time=now,
            valid=bool(with_data),
            data_age=max((rec.age(now) for rec in fresh), default=math.inf),
            cells_in_series=self.topology.cells_in_series,
            voltage=voltage,
            current=current,
            min_cell=min_cell,
            max_cell=max_cell,
            min_cell_at=min_at,
            max_cell_at=max_at,
            min_temp=min_temp,
            max_temp=max_temp,
            capacity_ah=self.topology.capacity_ah * len(online),
            strings=strings,
            faults=kinds(faults),
            warnings=kinds(warnings),
            infos=kinds(infos),
            cell_voltages=cell_voltages,
            bleeding={rec.node: rec.bleeding for rec in fresh},
            nodes=nodes,
        )

    def _temps_fresh(self, now: float) -> set[int]:
        return {n for n, rec in self.nodes.items() if now - rec.t_temps <= self.node_timeout}

    def _string(
        self, index: int, members: list[int], nodes: dict[int, NodeSnapshot]
    ) -> StringSnapshot:
        snaps = [nodes[n] for n in members]
        reason = ""
        for snap in snaps:
            if not snap.present:
                reason = f"node {snap.node} missing"
            elif snap.state == NodeState.TRIPPED:
                reason = f"node {snap.node} tripped"
            elif snap.state == NodeState.CONFIG_ERROR:
                reason = f"node {snap.node} has a configuration error"
            elif snap.faults:
                reason = f"node {snap.node} fault: {', '.join(sorted(snap.faults))}"
            if reason:
                break
        all_present = all(s.present for s in snaps)
        relay_closed = all(s.relay_closed for s in snaps)
        online = (
            all_present
            and not reason
            and relay_closed
            and all(s.state == NodeState.ACTIVE for s in snaps)
        )
        return StringSnapshot(
            index=index,
            nodes=tuple(members),
            online=online,
            blocked=bool(reason),
            reason=reason,
            voltage=math.fsum(s.voltage for s in snaps) if all_present else NAN,
            current=_mean(s.current for s in snaps) if all_present else NAN,
            capacity_ah=self.topology.capacity_ah,
            relay_closed=relay_closed,
        )


def _mean(values: Iterable[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return math.fsum(vals) / len(vals) if vals else NAN


def _extreme(
    records: list[NodeRecord],
    value_attr: str,
    number_attr: str,
    highest: bool,
    only: set[int] | None = None,
) -> tuple[float, CellRef | None]:
    """Lowest (or highest) value of an attribute over the records, with where it is."""
    best, where = NAN, None
    for rec in records:
        if only is not None and rec.node not in only:
            continue
        value: float = getattr(rec, value_attr)
        if math.isnan(value):
            continue
        if where is None or (value > best if highest else value < best):
            best, where = value, CellRef(rec.node, getattr(rec, number_attr))
    return best, where
