"""Shared by the benchmarks: results, the gateway settings and a realistic frame mix."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gateway.codec import moat_bms as codec
from gateway.config.root import Settings, validate
from gateway.contracts.topology import TopologySettings
from gateway.sources.moat_nodes import busload

ROOT = Path(__file__).resolve().parent.parent
Frame = tuple[int, bytes]


@dataclass
class Figure:
    """One measured figure next to its reference: ratio = value / reference."""

    name: str
    value: float
    unit: str
    reference: float | None = None
    reference_name: str = ""
    target: str = ""  # e.g. ">= 100000" or "<= 5"
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.reference is None or self.reference == 0:
            return None
        return self.value / self.reference

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ratio"] = self.ratio
        return d


@dataclass
class Result:
    """One benchmark: its figures, its parameters and notes."""

    name: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, *args: Any, **kwargs: Any) -> Figure:
        fig = Figure(*args, **kwargs)
        self.figures.append(fig)
        return fig

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "figures": [f.to_dict() for f in self.figures],
            "params": self.params,
            "notes": self.notes,
            "seconds": round(self.seconds, 1),
        }


def at_least(value: float, target: float) -> bool:
    return value >= target


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0..100), nearest rank."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def settings(
    strings: list[list[int]],
    cells_per_node: int = 16,
    state_file: Path | None = None,
    **extra: Any,
) -> Settings:
    data: dict[str, Any] = {
        "battery": {
            "topology": {"strings": strings, "cells_per_node": cells_per_node, "capacity_ah": 100}
        },
        "buses": {"battery": {"interface": "virtual", "channel": "bench", "bitrate": 500_000}},
        "web": {"enabled": False},
        "inverter": {"profile": "pylontech"},
    }
    if state_file is not None:
        data["persistence"] = {"state_file": str(state_file)}
    for key, value in extra.items():
        data[key] = value
    return validate(data, "benchmark")


# ---------------------------------------------------------------------- the frame mix


class NodeFrames:
    """Builds one node's frames with the generated (cantools-checked) encoders."""

    def __init__(self, node: int, cells: int, temp_sensors: int = 4, amps: float = 2.0) -> None:
        self.node = node
        self.cells = cells
        self.temp_sensors = temp_sensors
        self.amps = amps
        self.alive = 0
        self.cell_group = 0
        self.temp_group = 0

    def cell_mv(self, index: int) -> float:
        return round(3.300 + 0.001 * ((index * 7 + self.node * 3) % 11), 3)

    def node_state(self) -> Frame:
        self.alive = (self.alive + 1) & 0x0F
        fields = dict.fromkeys(codec.NodeState._fields, 0)
        fields.update(state=2, relay_state=1, alive_counter=self.alive, gateway_link=1)
        data = codec.encode_node_state(codec.NodeState(**fields))
        return codec.FRAME_IDS["NodeState"] | self.node, data

    def pack_status(self) -> Frame:
        volts = round(sum(self.cell_mv(i) for i in range(self.cells)), 2)
        data = codec.encode_pack_status(codec.PackStatus(volts, self.amps, 0))
        return codec.FRAME_IDS["PackStatus"] | self.node, data

    def cell_extremes(self, vmax: float | None = None) -> Frame:
        cells = [self.cell_mv(i) for i in range(self.cells)]
        lo, hi = min(cells), max(cells) if vmax is None else vmax
        mean = round(sum(cells) / len(cells), 3)
        data = codec.encode_cell_extremes(
            codec.CellExtremes(lo, hi, cells.index(lo) + 1, cells.index(max(cells)) + 1, mean)
        )
        return codec.FRAME_IDS["CellExtremes"] | self.node, data

    def temperature_extremes(self) -> Frame:
        data = codec.encode_temperature_extremes(codec.TemperatureExtremes(21.0, 23.5, 1, 3, 26.0))
        return codec.FRAME_IDS["TemperatureExtremes"] | self.node, data

    def balance_state(self) -> Frame:
        data = codec.encode_balance_state(codec.BalanceState(0, 0, 0, 0))
        return codec.FRAME_IDS["BalanceState"] | self.node, data

    def cell_voltages(self) -> Frame:
        groups = -(-self.cells // 4)
        group = self.cell_group
        self.cell_group = (group + 1) % groups
        volts = tuple(
            self.cell_mv(4 * group + k) if 4 * group + k < self.cells else math.nan
            for k in range(4)
        )
        data = codec.encode_cell_voltages(codec.CellVoltages(group, volts))
        return codec.FRAME_IDS["CellVoltages"] | self.node, data

    def cell_temperatures(self) -> Frame:
        groups = -(-self.temp_sensors // 3)
        group = self.temp_group
        self.temp_group = (group + 1) % groups
        n = len(codec.CELL_TEMPERATURES_MUXED_SIGNALS[group])
        temps = tuple(
            22.0 + 0.5 * k if 3 * group + k < self.temp_sensors else math.nan for k in range(n)
        )
        data = codec.encode_cell_temperatures(codec.CellTemperatures(group, temps))
        return codec.FRAME_IDS["CellTemperatures"] | self.node, data

    def node_info(self) -> Frame:
        info = codec.NodeInfo(0, 1, 0, self.cells, self.temp_sensors, 0, 1000)
        return codec.FRAME_IDS["NodeInfo"] | self.node, codec.encode_node_info(info)


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
    for t, _, node, (frame_id, data) in timed:
        if frame_id & 0x7F0 == codec.FRAME_IDS["NodeState"]:
            alive[node] = (alive[node] + 1) & 0x0F
            buf = bytearray(data)
            buf[1] = (buf[1] & 0xF0) | alive[node]
            out.append((t, (frame_id, bytes(buf))))
        else:
            out.append((t, (frame_id, data)))
    return out


def mix_bits(frames: list[Frame]) -> float:
    """Mean bits per frame on the wire of the mix, stuff bits counted exactly."""
    return sum(busload.exact_frame_bits(i, d) for i, d in frames) / len(frames)
