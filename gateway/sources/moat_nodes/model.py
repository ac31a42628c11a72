"""Battery model: the latest data of every node with its age, and the topology that turns
the nodes into one battery (a BatterySnapshot for the pure logic).

Frames arrive already decoded (gateway/sources/moat_nodes/ingest.py routes them). Nothing
here trusts a value
without its age: a node whose frames are older than the timeout is missing, and a missing
node's string is blocked -- stale data means stop, not "last value".
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable
from typing import cast

from bms.e2e import ACCEPT, AliveCheck
from gateway.codec import moat_bms as codec
from gateway.contracts.snapshot import BatterySnapshot, NodeSnapshot, NodeState, ProtectionKind
from gateway.contracts.topology import MAX_CELLS, TopologySettings
from gateway.sources.assemble import assemble, kinds

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
# Every level's flags (and whatever lies between them): all zero, no level raised anything.
ALL_FLAGS = slice(
    min(FAULTS.start, WARNINGS.start, INFOS.start), max(FAULTS.stop, WARNINGS.stop, INFOS.stop)
)


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


_NODE_STATES: dict[int, NodeState] = {int(s): s for s in NodeState}
# Indexed by the 2-bit signals' raw values: 3, beyond the DBC's range (0..2), reads as 2.
_RELAY_STATES = tuple(codec.NodeStateRelayState(min(v, 2)) for v in range(4))
_GATEWAY_LINKS = tuple(codec.NodeStateGatewayLink(min(v, 2)) for v in range(4))
_RELAY_REQUESTS = tuple(codec.NodeStateRelayRequest(min(v, 2)) for v in range(4))


def _cell_numbers(signals: dict[int, tuple[str, ...]], pattern: str) -> dict[int, slice]:
    """Multiplexer value -> the 0-based cells (or sensors) it carries, from the generated
    signal names; checked to be a run of consecutive numbers, so that a frame's values are
    stored with one slice assignment."""
    out = {}
    for mux, names in signals.items():
        indices = []
        for name in names:
            match = re.fullmatch(pattern, name)
            if match is None:
                raise RuntimeError(f"unexpected signal {name}")
            indices.append(int(match.group(1)) - 1)
        if indices != list(range(indices[0], indices[0] + len(indices))):
            raise RuntimeError(f"the signals of group {mux} are not consecutive: {names}")
        out[mux] = slice(indices[0], indices[0] + len(indices))
    return out


CELL_GROUPS = _cell_numbers(codec.CELL_VOLTAGES_MUXED_SIGNALS, r"Cell(\d+)Voltage")
SENSOR_GROUPS = _cell_numbers(codec.CELL_TEMPERATURES_MUXED_SIGNALS, r"Temperature(\d+)")


@functools.cache  # asked for every node every tick; codes are few (one byte)
def _chemistry_name(code: int) -> str:
    """A NodeInfo chemistry code as the configuration names it ("lfp")."""
    try:
        return codec.NodeInfoChemistry(code).name.lower()
    except ValueError:
        return f"unknown chemistry {code}"


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
        cells, times, count = self.cells, self.t_cells, self.cell_count
        # Every tick asks, and usually every reading is fresh: when the oldest one is, the
        # others are too (a later time is never further from now), and the values go out
        # as they are without a comparison per cell.
        if count and now - min(times[:count]) <= timeout:
            return tuple(cells[:count])
        return tuple(cells[i] if now - times[i] <= timeout else NAN for i in range(count))


class BatteryModel:
    """All configured nodes, and the snapshot of the battery they make together."""

    def __init__(
        self, topology: TopologySettings, node_timeout: float, nodes: Iterable[int] | None = None
    ) -> None:
        """`nodes`: the topology's ids that are nodes (all of them when None; the others are
        commercial packs, whose source keeps them: snapshot() then needs combining, see
        gateway/sources/combined.py)."""
        self.topology = topology
        self.node_timeout = node_timeout
        ids = topology.nodes if nodes is None else list(nodes)
        self.nodes: dict[int, NodeRecord] = {n: NodeRecord(n, topology.cells_of(n)) for n in ids}
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
        values: tuple[int, ...] = m  # every NodeState signal is an integer
        if any(values[ALL_FLAGS]):
            faults, warnings, infos = _mask(m, FAULTS), _mask(m, WARNINGS), _mask(m, INFOS)
        else:  # the usual case: one test for the 48 flags
            faults = warnings = infos = 0
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
        rec.relay_state = _RELAY_STATES[m.relay_state]
        rec.trip_cleared = bool(m.trip_cleared)
        rec.balancing = bool(m.balancing)
        rec.gateway_link = _GATEWAY_LINKS[m.gateway_link]
        rec.relay_request = _RELAY_REQUESTS[m.relay_request]
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
        cells = CELL_GROUPS[m.cell_group]
        volts = m.muxed  # the decoder gives as many values as the group has cells
        rec.cells[cells] = volts
        rec.t_cells[cells] = [now] * len(volts)
        if math.isnan(sum(volts)):  # a cell not available: NaN is neither high nor low
            high, low = self.alert_high_cell, self.alert_low_cell
            return any(v >= high or v <= low for v in volts)
        # Every cell known (nearly always): the group's extremes by the builtins, no Python
        # comparison per cell (4 frames a node each second).
        return max(volts) >= self.alert_high_cell or min(volts) <= self.alert_low_cell

    def on_cell_temperatures(self, node: int, m: codec.CellTemperatures, now: float) -> bool:
        rec = self.nodes[node]
        sensors = SENSOR_GROUPS[m.sensor_group]
        rec.temps[sensors] = m.muxed
        rec.t_sensors[sensors] = [now] * len(m.muxed)
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
                reported = _chemistry_name(info.chemistry)
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
        nodes = {n: self.node_snapshot(rec, now) for n, rec in self.nodes.items()}
        timeout = self.node_timeout
        return assemble(
            now,
            self.topology,
            self.nodes,
            nodes,
            lambda rec: cast(NodeRecord, rec).cell_voltages(now, timeout),
            self.temps_fresh(now),
        )

    def temps_fresh(self, now: float) -> set[int]:
        """The nodes whose temperatures are fresh."""
        return {n for n, rec in self.nodes.items() if now - rec.t_temps <= self.node_timeout}
