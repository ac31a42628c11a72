"""CAN bus load of a configured system, from the DBC's cycle times and frame lengths.

Every frame's period (GenMsgCycleTime) and length come from the generated codecs, i.e. from
dbc/moat_bms.dbc and dbc/pylontech_lv.dbc; the topology says how many nodes send them and
how many multiplexed groups (cell voltages, temperatures, balance commands) each node needs.

A classical CAN data frame with an 11-bit identifier and n data bytes is 47 + 8 n bits on the
wire plus stuff bits: 1 + 11 + 1 + 1 + 1 + 4 (SOF, identifier, RTR, IDE, r0, DLC), the data,
a 15-bit CRC -- those 34 + 8 n bits are stuffed -- then 13 bits that are not (CRC and ACK
delimiters, ACK slot, end of frame, interframe space). A stuff bit follows every five equal
bits, so the worst case adds (34 + 8 n - 1) // 4 bits: 111 bits nominal and 135 worst case for
8 bytes. The load figures here use the worst case: a warning should not depend on the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.codec import moat_bms as battery_codec
from gateway.codec import pylontech_lv as inverter_codec
from gateway.contracts.topology import TopologySettings

Stuffing = Literal["none", "worst"]

DEFAULT_BITRATE = 500_000  # bit/s: Pylontech's rate, assumed when the config leaves it open
LOAD_WARNING = 0.5  # fraction of the bitrate above which `moat-bms config check` warns
DEFAULT_TEMP_SENSORS = 4  # the firmware's default (firmware/bms/config.py)
CELLS_PER_VOLTAGE_FRAME = 4  # CellVoltages: four cells per multiplexed group
SENSORS_PER_TEMPERATURE_FRAME = 3  # CellTemperatures: three sensors per group
CELLS_PER_BALANCE_FRAME = 32  # BalanceCommand: 32 cells per group

_STUFFED_OVERHEAD = 34  # SOF .. DLC and the CRC: the bits of a frame that are stuffed
_UNSTUFFED_TAIL = 13  # CRC delimiter, ACK slot and delimiter, end of frame, interframe space
_CRC15_POLY = 0x4599


def frame_bits(length: int, stuffing: Stuffing = "worst") -> int:
    """Bits one standard-identifier data frame of `length` bytes occupies on the bus."""
    if not 0 <= length <= 8:
        raise ValueError(f"a classical CAN frame has 0..8 data bytes, not {length}")
    stuffed = _STUFFED_OVERHEAD + 8 * length
    extra = (stuffed - 1) // 4 if stuffing == "worst" else 0
    return stuffed + extra + _UNSTUFFED_TAIL


def exact_frame_bits(frame_id: int, data: bytes) -> int:
    """Bits this very frame occupies on the bus, stuff bits counted one by one."""
    if not 0 <= frame_id <= 0x7FF or len(data) > 8:
        raise ValueError(f"not a classical standard frame: 0x{frame_id:X}, {len(data)} bytes")
    bits = [0]  # SOF
    bits += [(frame_id >> i) & 1 for i in range(10, -1, -1)]
    bits += [0, 0, 0]  # RTR (data frame), IDE (standard), r0
    bits += [(len(data) >> i) & 1 for i in range(3, -1, -1)]
    for byte in data:
        bits += [(byte >> i) & 1 for i in range(7, -1, -1)]
    crc = 0
    for bit in bits:
        top = (crc >> 14) & 1
        crc = (crc << 1) & 0x7FFF
        if top ^ bit:
            crc ^= _CRC15_POLY
    bits += [(crc >> i) & 1 for i in range(14, -1, -1)]
    stuff, run, last = 0, 0, -1
    for bit in bits:
        if bit == last:
            run += 1
        else:
            run, last = 1, bit
        if run == 5:  # the stuff bit is the complement and starts the next run
            stuff += 1
            run, last = 1, 1 - bit
    return len(bits) + stuff + _UNSTUFFED_TAIL


def saturated_rate(bitrate: int, bits_per_frame: float) -> float:
    """Frames per second on a bus that carries nothing but back-to-back frames."""
    return bitrate / bits_per_frame


@dataclass(frozen=True)
class Stream:
    """Frames of one kind on a bus: who sends them, how often and how long they are."""

    name: str
    sender: str
    frames_per_s: float
    length: int

    def bits_per_s(self, stuffing: Stuffing = "worst") -> float:
        return self.frames_per_s * frame_bits(self.length, stuffing)


def _per_s(cycle_ms: int) -> float:
    return 1000.0 / cycle_ms


def battery_streams(
    topology: TopologySettings, temp_sensors: int = DEFAULT_TEMP_SENSORS
) -> list[Stream]:
    """Every frame stream on the battery bus: the nodes' reports and the gateway's commands."""
    ids, cycle, lengths = battery_codec.FRAME_IDS, battery_codec.CYCLE_MS, battery_codec.LENGTHS
    nodes = topology.nodes
    temp_groups = -(-temp_sensors // SENSORS_PER_TEMPERATURE_FRAME)
    cell_groups = sum(-(-topology.cells_of(n) // CELLS_PER_VOLTAGE_FRAME) for n in nodes)
    balance_groups = sum(-(-topology.cells_of(n) // CELLS_PER_BALANCE_FRAME) for n in nodes)
    per_message = {
        "NodeState": len(nodes),
        "PackStatus": len(nodes),
        "CellExtremes": len(nodes),
        "TemperatureExtremes": len(nodes),
        "BalanceState": len(nodes),
        "CellVoltages": cell_groups,
        "CellTemperatures": temp_groups * len(nodes),
        "NodeInfo": len(nodes),
        "GatewayHeartbeat": 1,
        "RelayCommand": len(nodes),
        "BalanceCommand": balance_groups,
    }
    if set(per_message) != set(ids):
        raise RuntimeError("every message of moat_bms.dbc needs a count per topology")
    return [
        Stream(
            name,
            battery_codec.SENDERS[ids[name]],
            count * _per_s(cycle[ids[name]]),
            lengths[ids[name]],
        )
        for name, count in per_message.items()
    ]


def inverter_streams(period_s: float | None = None) -> list[Stream]:
    """Every message of pylontech_lv.dbc at its cycle time (the battery's at `period_s` when
    given): an upper bound, since each profile sends a subset."""
    out = []
    for name, frame_id in inverter_codec.FRAME_IDS.items():
        sender = inverter_codec.SENDERS[frame_id]
        rate = _per_s(inverter_codec.CYCLE_MS[frame_id])
        if period_s is not None and sender == "Battery":
            rate = 1.0 / period_s
        out.append(Stream(name, sender, rate, inverter_codec.LENGTHS[frame_id]))
    return out


def load(streams: list[Stream], bitrate: int, stuffing: Stuffing = "worst") -> float:
    """Fraction of `bitrate` the streams occupy."""
    if bitrate <= 0:
        raise ValueError(f"bitrate must be positive, not {bitrate}")
    return sum(s.bits_per_s(stuffing) for s in streams) / bitrate


def frames_per_s(streams: list[Stream]) -> float:
    return sum(s.frames_per_s for s in streams)


@dataclass(frozen=True)
class BusLoad:
    """The load of one bus of a configured system."""

    bus: str
    bitrate: int
    bitrate_assumed: bool  # the configuration leaves the bitrate to python-can
    frames_per_s: float
    load: float  # fraction of the bitrate, worst-case bit stuffing

    @property
    def too_high(self) -> bool:
        return self.load > LOAD_WARNING

    def describe(self) -> str:
        assumed = " (assumed: not configured)" if self.bitrate_assumed else ""
        return (
            f"{self.bus} bus: {self.frames_per_s:.0f} frames/s, {100 * self.load:.1f} % of "
            f"{self.bitrate / 1000:g} kbit/s{assumed}"
        )


def system_load(
    topology: TopologySettings,
    battery_bitrate: int | None,
    inverter_bitrate: int | None,
    *,
    shared_bus: bool,
    inverter_period_s: float | None = None,
    temp_sensors: int = DEFAULT_TEMP_SENSORS,
) -> list[BusLoad]:
    """The load of the battery bus and (when separate) the inverter bus, worst-case stuffing.

    `shared_bus`: the inverter is on the battery bus (its frames add to that bus).
    """
    battery = battery_streams(topology, temp_sensors)
    inverter = inverter_streams(inverter_period_s)
    buses = [("battery", battery + inverter if shared_bus else battery, battery_bitrate)]
    if not shared_bus:
        buses.append(("inverter", inverter, inverter_bitrate))
    out = []
    for name, streams, bitrate in buses:
        rate = bitrate or DEFAULT_BITRATE
        out.append(BusLoad(name, rate, bitrate is None, frames_per_s(streams), load(streams, rate)))
    return out
