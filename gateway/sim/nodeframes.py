"""Frames a moat-bms node sends, built with the generated (cantools-checked) codec: for tests,
benchmarks and replay, wherever node frames are needed without running the firmware.

The functions build one frame each from values; `NodeFrames` builds a plausible steady stream
of one node's frames, and `timed_frame_mix` lays the streams of a whole topology out in the
order and at the times a bus carries them.
"""

from __future__ import annotations

import math

from gateway.codec import moat_bms as codec
from gateway.contracts.frame import Frame
from gateway.contracts.snapshot import ProtectionKind
from gateway.contracts.topology import TopologySettings

NODE_STATE = codec.FRAME_IDS["NodeState"]


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def node_state(
    node: int,
    counter: int,
    *,
    state: int = 2,
    relay: int = 1,
    faults: frozenset[ProtectionKind] = frozenset(),
    warnings: frozenset[ProtectionKind] = frozenset(),
    infos: frozenset[ProtectionKind] = frozenset(),
    trip_cleared: int = 0,
) -> Frame:
    """NodeState: life-cycle state, relay, alive counter and the protection flags by level."""
    fields = dict.fromkeys(codec.NodeState._fields, 0)
    fields.update(
        state=state,
        relay_state=relay,
        alive_counter=counter % 16,
        gateway_link=1,
        trip_cleared=trip_cleared,
    )
    for prefix, kinds in (("fault", faults), ("warn", warnings), ("info", infos)):
        for kind in kinds:
            fields[f"{prefix}_{_snake(kind.value)}"] = 1
    return Frame(NODE_STATE | node, codec.encode_node_state(codec.NodeState(**fields)))


def pack_status(node: int, volts: float, amps: float, rejected: int = 0) -> Frame:
    """PackStatus; `rejected` is the node's count of rejected commands (wraps 255 -> 0)."""
    data = codec.encode_pack_status(codec.PackStatus(volts, amps, rejected))
    return Frame(codec.FRAME_IDS["PackStatus"] | node, data)


def cell_extremes(
    node: int, vmin: float, vmax: float, nmin: int = 1, nmax: int = 2, mean: float | None = None
) -> Frame:
    mean = round((vmin + vmax) / 2, 3) if mean is None else mean
    data = codec.encode_cell_extremes(codec.CellExtremes(vmin, vmax, nmin, nmax, mean))
    return Frame(codec.FRAME_IDS["CellExtremes"] | node, data)


def temperature_extremes(
    node: int, tmin: float, tmax: float, nmin: int = 1, nmax: int = 2, balancer: float = 25.0
) -> Frame:
    data = codec.encode_temperature_extremes(
        codec.TemperatureExtremes(tmin, tmax, nmin, nmax, balancer)
    )
    return Frame(codec.FRAME_IDS["TemperatureExtremes"] | node, data)


def cell_voltages(node: int, group: int, volts: tuple[float, ...]) -> Frame:
    """Cells 4 * group + 1 .. + 4 (NaN: not measured)."""
    data = codec.encode_cell_voltages(codec.CellVoltages(group, volts))
    return Frame(codec.FRAME_IDS["CellVoltages"] | node, data)


def cell_temperatures(node: int, group: int, temps: tuple[float, ...]) -> Frame:
    data = codec.encode_cell_temperatures(codec.CellTemperatures(group, temps))
    return Frame(codec.FRAME_IDS["CellTemperatures"] | node, data)


def balance_state(node: int, bleeding: int = 0) -> Frame:
    """The cells bleeding: bit k = cell k + 1."""
    words = (bleeding & 0xFFFF, bleeding >> 16 & 0xFFFF, bleeding >> 32 & 0xFFFF, bleeding >> 48)
    data = codec.encode_balance_state(codec.BalanceState(*words))
    return Frame(codec.FRAME_IDS["BalanceState"] | node, data)


def node_info(
    node: int,
    cells: int,
    temp_sensors: int,
    *,
    capacity_ah: float = 1000.0,
    version: tuple[int, int, int] = (0, 1, 0),
    chemistry: int = codec.NodeInfoChemistry.LFP,
) -> Frame:
    info = codec.NodeInfo(*version, cells, temp_sensors, chemistry, capacity_ah)
    return Frame(codec.FRAME_IDS["NodeInfo"] | node, codec.encode_node_info(info))


class NodeFrames:
    """One node's steady frames: slightly different cell voltages, a constant current."""

    def __init__(self, node: int, cells: int, temp_sensors: int = 4, amps: float = 2.0) -> None:
        self.node = node
        self.cells = cells
        self.temp_sensors = temp_sensors
        self.amps = amps
        self.alive = 0
        self.cell_group = 0
        self.temp_group = 0

    def cell_v(self, index: int) -> float:
        return round(3.300 + 0.001 * ((index * 7 + self.node * 3) % 11), 3)

    def node_state(self) -> Frame:
        self.alive = (self.alive + 1) & 0x0F
        return node_state(self.node, self.alive)

    def pack_status(self) -> Frame:
        volts = round(sum(self.cell_v(i) for i in range(self.cells)), 2)
        return pack_status(self.node, volts, self.amps)

    def cell_extremes(self, vmax: float | None = None) -> Frame:
        cells = [self.cell_v(i) for i in range(self.cells)]
        lo, hi = min(cells), max(cells) if vmax is None else vmax
        mean = round(sum(cells) / len(cells), 3)
        at_lo, at_hi = cells.index(lo) + 1, cells.index(max(cells)) + 1
        return cell_extremes(self.node, lo, hi, at_lo, at_hi, mean)

    def temperature_extremes(self) -> Frame:
        return temperature_extremes(self.node, 21.0, 23.5, 1, 3, 26.0)

    def balance_state(self) -> Frame:
        return balance_state(self.node)

    def cell_voltages(self) -> Frame:
        groups = -(-self.cells // 4)
        group = self.cell_group
        self.cell_group = (group + 1) % groups
        volts = tuple(
            self.cell_v(4 * group + k) if 4 * group + k < self.cells else math.nan for k in range(4)
        )
        return cell_voltages(self.node, group, volts)

    def cell_temperatures(self) -> Frame:
        groups = -(-self.temp_sensors // 3)
        group = self.temp_group
        self.temp_group = (group + 1) % groups
        n = len(codec.CELL_TEMPERATURES_MUXED_SIGNALS[group])
        temps = tuple(
            22.0 + 0.5 * k if 3 * group + k < self.temp_sensors else math.nan for k in range(n)
        )
        return cell_temperatures(self.node, group, temps)

    def node_info(self) -> Frame:
        return node_info(self.node, self.cells, self.temp_sensors)


def frame_mix(topology: TopologySettings, seconds: int, amps: float = 2.0) -> list[Frame]:
    """`seconds` of every node's frames in bus order (see timed_frame_mix)."""
    return [frame for _, frame in timed_frame_mix(topology, seconds, amps)]


def timed_frame_mix(
    topology: TopologySettings, seconds: int, amps: float = 2.0
) -> list[tuple[float, Frame]]:
    """`seconds` of every node's frames with their send times (s), in the order a bus carries
    them: each stream at its DBC period (the multiplexed ones group by group), nodes offset by
    id / 16 of a period, as the firmware schedules them (firmware/bms/reports.py)."""
    builders = {n: NodeFrames(n, topology.cells_of(n), amps=amps) for n in topology.nodes}
    makers = {
        "NodeState": NodeFrames.node_state,
        "PackStatus": NodeFrames.pack_status,
        "CellExtremes": NodeFrames.cell_extremes,
        "TemperatureExtremes": NodeFrames.temperature_extremes,
        "BalanceState": NodeFrames.balance_state,
        "CellVoltages": NodeFrames.cell_voltages,
        "CellTemperatures": NodeFrames.cell_temperatures,
        "NodeInfo": NodeFrames.node_info,
    }
    timed: list[tuple[float, int, int, Frame]] = []
    seq = 0
    for name, make in makers.items():
        period = codec.CYCLE_MS[codec.FRAME_IDS[name]] / 1000
        for node, b in builders.items():
            groups = 1
            if name == "CellVoltages":
                groups = -(-b.cells // 4)
            elif name == "CellTemperatures":
                groups = -(-b.temp_sensors // 3)
            count = round(seconds / period * groups)  # seconds: a multiple of every period
            for k in range(count):
                t = node * period / 16 + k * period / groups
                timed.append((t, seq, node, make(b)))
                seq += 1
    timed.sort(key=lambda x: (x[0], x[2], x[1]))
    # NodeState alive counters must follow the order on the bus: renumber them in it.
    alive = dict.fromkeys(builders, 0)
    out = []
    for t, _, node, frame in timed:
        if frame.id & 0x7F0 == NODE_STATE:
            alive[node] = (alive[node] + 1) & 0x0F
            buf = bytearray(frame.data)
            buf[1] = (buf[1] & 0xF0) | alive[node]
            out.append((t, Frame(frame.id, bytes(buf))))
        else:
            out.append((t, frame))
    return out
