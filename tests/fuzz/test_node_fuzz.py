"""Fuzzing the firmware node: random frames into its CAN backend, random sensor readings.

No frame and no reading may raise inside the node (an exception would latch the Internal
fault), every frame on a protected identifier that fails its end-to-end checks is counted as
rejected, the relay closes only after a frame that passed the CRC asked for it, never while
a fault is active, and every frame the node sends is a well-formed frame of the DBC.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from bms import e2e
from bms.can import FLAG_EXT_ID, FLAG_RTR, Frame
from bms.can.loopback import LoopbackBus
from bms.config import load_config
from bms.hw import NOT_AVAILABLE
from bms.hw.sim import SimHardware
from bms.node import MAX_RX_PER_CYCLE, Node
from bms.protect import INTERNAL
from gateway.codec import moat_bms as codec
from tests.fuzz.profile import FRAMES, fuzz

CLOSED: Counter[str] = Counter()

NODE_ID = 3
CELLS, TEMPS = 16, 4
CYCLE_MS = 50
RELAY_ID = codec.FRAME_IDS["RelayCommand"] | NODE_ID
BALANCE_ID = codec.FRAME_IDS["BalanceCommand"] | NODE_ID
HEARTBEAT_ID = codec.FRAME_IDS["GatewayHeartbeat"]
PROTECTED = {RELAY_ID: 8, BALANCE_ID: 8, HEARTBEAT_ID: 8}  # id -> DLC
CLOSE = codec.encode_relay_command(codec.RelayCommand(0, 0, 2, 0))  # Request = Close
HEARTBEAT = codec.encode_gateway_heartbeat(codec.GatewayHeartbeat(0, 0, 1))  # Running


@dataclass(frozen=True)
class NodeFrame:
    can_id: int
    data: bytes
    flags: int = 0


def sealed(can_id: int, body: bytes, counter: int) -> bytes:
    buf = bytearray(body.ljust(8, b"\0")[:8])
    e2e.seal(can_id, buf, counter)
    return bytes(buf)


command_ids = st.sampled_from(
    [RELAY_ID, BALANCE_ID, HEARTBEAT_ID]
    + [codec.FRAME_IDS["RelayCommand"] | n for n in (0, 1, 15)]
    + [codec.FRAME_IDS["BalanceCommand"] | n for n in (2, 4)]
)


@st.composite
def node_frames(draw: st.DrawFn) -> NodeFrame:
    kind = draw(st.integers(0, 9))
    if kind <= 3:  # sealed correctly, random body and counter: gets past the CRC
        can_id = draw(command_ids)
        data = sealed(can_id, draw(st.binary(min_size=8, max_size=8)), draw(st.integers(0, 15)))
        return NodeFrame(can_id, data)
    if kind <= 6:  # on a command id, random bytes of any length
        return NodeFrame(draw(command_ids), draw(st.binary(max_size=8)))
    if kind == 7:  # sealed, but sent as a remote request or with a 29-bit id
        can_id = draw(command_ids)
        data = sealed(can_id, draw(st.binary(min_size=8, max_size=8)), draw(st.integers(0, 15)))
        return NodeFrame(can_id, data, draw(st.sampled_from([FLAG_RTR, FLAG_EXT_ID])))
    can_id = draw(st.one_of(st.integers(0, 0x7FF), st.integers(0, 0x1FFFFFFF)))
    flags = FLAG_EXT_ID if can_id > 0x7FF else draw(st.sampled_from([0, FLAG_RTR, FLAG_EXT_ID]))
    return NodeFrame(can_id, draw(st.binary(max_size=8)), flags)


def definitely_rejected(f: NodeFrame) -> bool:
    """A frame on one of this node's protected ids that cannot pass its checks."""
    if f.flags & FLAG_EXT_ID or f.can_id not in PROTECTED:
        return False
    return bool(
        f.flags & FLAG_RTR or len(f.data) != PROTECTED[f.can_id] or not e2e.crc_ok(f.can_id, f.data)
    )


def passes_crc(f: NodeFrame, can_id: int) -> bool:
    return f.can_id == can_id and not f.flags and len(f.data) == 8 and e2e.crc_ok(can_id, f.data)


class Rig:
    def __init__(self) -> None:
        self.hw = SimHardware(cells=CELLS, temps=TEMPS)
        self.bus = LoopbackBus(tx_capacity=512, rx_capacity=256, honour_filters=False)
        config = load_config({"node_id": NODE_ID, "cells": CELLS, "temp_sensors": TEMPS})
        self.node = Node(config, self.hw, self.bus)
        self.now = 0
        self.out = Frame()
        self.sent = 0

    def step(self) -> None:
        self.now += CYCLE_MS
        self.node.step(self.now)
        node = self.node
        assert node.error is None, node.error
        assert not node.faults & INTERNAL
        if node.faults:
            assert not self.hw.relay_drive, f"relay driven closed with faults {node.faults:#x}"
        self.drain()

    def drain(self) -> None:
        """Every frame the node sent is a frame of the DBC with its length, and decodes."""
        out = self.out
        while self.bus.take(out):
            self.sent += 1
            base = out.id & 0x7F0
            assert out.id & 0xF == NODE_ID or base not in codec.SENDERS
            assert codec.SENDERS.get(base) == "Node", hex(out.id)
            assert out.dlc == codec.LENGTHS[base]
            codec.DECODERS[base](bytes(out.data[: out.dlc]))


@fuzz(400)
@given(batches=st.lists(st.lists(node_frames(), max_size=40), min_size=1, max_size=10))
def test_random_frames_never_raise_and_bad_commands_are_counted(
    batches: list[list[NodeFrame]],
) -> None:
    rig = Rig()
    node = rig.node
    rig.step()
    heartbeat_seen = relay_seen = False
    fed = 0
    for batch in batches:
        before = node.rejected_commands
        for f in batch:
            assert rig.bus.inject(f.can_id, f.data, f.flags)
        fed += len(batch)
        for _ in range(len(batch) // MAX_RX_PER_CYCLE + 1):  # the node takes 32 per cycle
            rig.step()
        rejected = (node.rejected_commands - before) % 256
        protected = sum(1 for f in batch if f.can_id in PROTECTED and not f.flags & FLAG_EXT_ID)
        assert sum(map(definitely_rejected, batch)) <= rejected <= protected
        heartbeat_seen |= any(passes_crc(f, HEARTBEAT_ID) for f in batch)
        relay_seen |= any(passes_crc(f, RELAY_ID) for f in batch)
        if node.relay_closed:
            assert heartbeat_seen and relay_seen, "relay closed without a sealed request"
        assert node.state in (0, 1, 2, 3, 4, 5)
    FRAMES["node"] += fed


healthy_cells = st.lists(st.integers(3000, 3400), min_size=CELLS, max_size=CELLS)
any_cells = st.lists(
    st.integers(-1000, 70_000) | st.just(NOT_AVAILABLE), min_size=CELLS, max_size=CELLS
)
healthy_temps = st.lists(st.integers(100, 300), min_size=TEMPS, max_size=TEMPS)
any_temps = st.lists(
    st.integers(-2000, 2000) | st.just(NOT_AVAILABLE), min_size=TEMPS, max_size=TEMPS
)
readings = st.tuples(
    st.one_of(healthy_cells, any_cells),
    st.one_of(healthy_temps, any_temps),
    st.one_of(st.integers(-50_000, 50_000), st.integers(-2_000_000, 2_000_000)),
    st.booleans() | st.just(True),
    st.integers(1, 60),  # cycles the reading is held
)


@fuzz(200)
@given(plan=st.lists(readings, min_size=1, max_size=6))
def test_random_readings_never_raise_and_a_fault_keeps_the_relay_open(
    plan: list[tuple[list[int], list[int], int, bool, int]],
) -> None:
    """A gateway that keeps asking to close, and sensors reading anything at all: healthy
    stretches close the relay, any fault opens it in the same cycle."""
    rig = Rig()
    hw = rig.hw
    counter = 0
    for cells, temps, current, fresh, hold in plan:
        hw.cell_mv[:] = cells
        hw.temp_dc[:] = temps
        hw.pack_mv = sum(c for c in cells if c != NOT_AVAILABLE)
        hw.current_ma = current
        hw.fresh = fresh
        for _ in range(hold):
            counter += 1
            rig.bus.inject(HEARTBEAT_ID, sealed(HEARTBEAT_ID, HEARTBEAT, counter))
            rig.bus.inject(RELAY_ID, sealed(RELAY_ID, CLOSE, counter))
            rig.step()
            if rig.node.relay_closed:
                CLOSED["cycles with the relay closed"] += 1
            FRAMES["node"] += 2
