"""Fuzzing the firmware node: random frames into its CAN backend, random sensor readings.

No frame and no reading may raise inside the node (an exception would latch the Internal
fault), every frame on a protected identifier that fails its end-to-end checks is counted as
rejected, the relay closes only after a frame that passed the CRC asked for it, never while
a fault is active, and every frame the node sends is a well-formed frame of the DBC.
"""

from __future__ import annotations

import random
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
from tests.fuzz.profile import FRAMES, LONG, fuzz

CLOSED: Counter[str] = Counter()

NODE_ID = 3
CELLS, TEMPS = 16, 4
CYCLE_MS = 50
RELAY_ID = codec.FRAME_IDS["RelayCommand"] | NODE_ID
BALANCE_ID = codec.FRAME_IDS["BalanceCommand"] | NODE_ID
HEARTBEAT_ID = codec.FRAME_IDS["GatewayHeartbeat"]
PROTECTED = {RELAY_ID: 8, BALANCE_ID: 8, HEARTBEAT_ID: 8}  # id -> DLC
CLOSE = codec.encode_relay_command(codec.RelayCommand(0, 0, 2, 0, 0, 0))  # Request = Close
RESET = codec.encode_relay_command(codec.RelayCommand(0, 0, 2, 1, 0, 0))  # Close + ResetFault
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


# The parts of a frame, each strategy built once (as tests/fuzz/test_gateway_fuzz.py does).
frame_kinds = st.integers(0, 9)
bodies = st.binary(min_size=8, max_size=8)
payloads = st.binary(max_size=8)
counters = st.integers(0, 15)  # the end-to-end counter
sealed_but_wrong = st.sampled_from([FLAG_RTR, FLAG_EXT_ID])
any_id = st.one_of(st.integers(0, 0x7FF), st.integers(0, 0x1FFFFFFF))
standard_id_flags = st.sampled_from([0, FLAG_RTR, FLAG_EXT_ID])


@st.composite
def node_frames(draw: st.DrawFn) -> NodeFrame:
    kind = draw(frame_kinds)
    if kind <= 3:  # sealed correctly, random body and counter: gets past the CRC
        can_id = draw(command_ids)
        data = sealed(can_id, draw(bodies), draw(counters))
        return NodeFrame(can_id, data)
    if kind <= 6:  # on a command id, random bytes of any length
        return NodeFrame(draw(command_ids), draw(payloads))
    if kind == 7:  # sealed, but sent as a remote request or with a 29-bit id
        can_id = draw(command_ids)
        data = sealed(can_id, draw(bodies), draw(counters))
        return NodeFrame(can_id, data, draw(sealed_but_wrong))
    can_id = draw(any_id)
    flags = FLAG_EXT_ID if can_id > 0x7FF else draw(standard_id_flags)
    return NodeFrame(can_id, draw(payloads), flags)


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


# -- The protection invariant under values drawn around every threshold ----------------------

CHARGE_DETECT_MA = 500
CHARGE_DETECT_MAMS = 2_000_000  # charge_detect_as: 2 A s, in mA x ms
SENSOR_DEBOUNCE_MS = 500


@dataclass(frozen=True)
class Guard:
    """One fault-level check of the node as docs/safety.md states it."""

    name: str
    debounce_ms: int


GUARDS = (
    Guard("cell over 3.65 V", 200),
    Guard("cell under 2.50 V", 200),
    Guard("charge over 45 degC", 1000),
    Guard("charge under 0 degC", 1000),
    Guard("discharge over 55 degC", 1000),
    Guard("discharge under -20 degC", 1000),
    Guard("charge over 100 A", 100),
    Guard("discharge over 100 A", 100),
)
THRESHOLDS = (  # (guard index, quantity, fault level in its unit)
    (0, "cell", 3650),
    (1, "cell", 2500),
    (2, "temp", 450),
    (3, "temp", 0),
    (4, "temp", 550),
    (5, "temp", -200),
    (6, "current", 100_000),
    (7, "current", -100_000),
)
# Windows (in cycles) over which the documented share bound is checked for each guard.
WINDOW_FACTORS = (1, 2, 3, 4, 6, 8)


class ChargeDetection:
    """The direction as docs/firmware.md defines it: charging once the charge above
    charge_detect_a reaches charge_detect_as (the sum never below 0), until the sum is back
    at 0. An unreadable current counts as 0 A. The sensor has no offset here (0 A through an
    open relay), so the node's learned zero is 0."""

    def __init__(self) -> None:
        self.total = 0
        self.charging = False
        self.dt = 0  # the node's first cycle has no time before it

    def sample(self, current: int, known: bool) -> bool:
        excess = (current if known else 0) - CHARGE_DETECT_MA
        self.total = min(max(self.total + excess * self.dt, 0), CHARGE_DETECT_MAMS)
        self.dt = CYCLE_MS
        if self.total == 0:
            self.charging = False
        elif self.total == CHARGE_DETECT_MAMS:
            self.charging = True
        return self.charging


def beyond(temp: int, cell: int, current: int, current_known: bool, charging: bool) -> list[bool]:
    """Which guards a sample's true values violate; the direction as the node defines it
    (charging: ChargeDetection's verdict on this sample).

    With no current reading the node applies both temperature windows.
    """
    charge_window = charging or not current_known
    discharge_window = not charging or not current_known
    return [
        cell > 3650,
        cell < 2500,
        charge_window and temp > 450,
        charge_window and temp < 0,
        discharge_window and temp > 550,
        discharge_window and temp < -200,
        current > 100_000,
        current < -100_000,
    ]


class Regime:
    """A stretch of samples: values around one threshold, steady, alternating or flickering."""

    def __init__(self, rng: random.Random) -> None:
        self.guard, self.quantity, level = rng.choice(THRESHOLDS)
        spread = {"cell": 60, "temp": 60, "current": 8000}[self.quantity]
        self.high = level + rng.randint(1, spread)
        self.low = level - rng.randint(1, spread)
        self.bad_cycles = rng.randint(1, 6)
        self.good_cycles = rng.choice((0, 0, rng.randint(1, 6)))
        self.unreadable = rng.choice((0.0, 0.0, 0.1, 0.5, 0.9))  # share of NOT_AVAILABLE
        self.current_unreadable = rng.choice((0.0, 0.0, 0.0, 0.3))
        self.current = rng.choice((-60_000, -10_000, 0, 200, 10_000, 60_000))
        self.length = rng.randint(1, 400)
        self.flip = rng.random() < 0.5  # which of high / low is the first phase


def test_a_guarded_value_beyond_its_fault_level_longer_than_its_bound_opens_the_relay() -> None:
    """>= 10**5 node cycles (2 x 10**6 with MOAT_BMS_FUZZ=long) with values drawn around
    every threshold, alternating, intermittent and with NOT_AVAILABLE mixed in. The
    invariant, from docs/safety.md: whenever a guarded value has been beyond its fault level

    * in every sample of the last D + 500 ms (sensor debounce), however many were unreadable,
      the relay is open;
    * readably in a share p of the samples of the last T ms with T (5 p - 1) >= 4 D, the
      relay has opened within those T ms (it may have closed again after the value came
      back and the trip was reset);

    D is the guard's debounce. A gateway keeps asking to close and resets
    every trip, so the relay closes whenever the node lets it."""
    cycles = 2_000_000 if LONG else 100_000
    rng = random.Random(0x12 if not LONG else None)
    rig = Rig()
    hw = rig.hw
    node = rig.node
    guards = len(GUARDS)
    # Per guard: prefix sums of readable samples beyond the fault level, and the length of
    # the current run of samples whose true value is beyond it (readable or not).
    prefix = [[0] for _ in range(guards)]
    run = [0] * guards
    heartbeats = relays = 0
    last_open = -1  # the last cycle with the relay open
    regime = Regime(rng)
    phase = 0
    checked = 0
    detection = ChargeDetection()
    for k in range(cycles):
        if regime.length == 0:
            regime = Regime(rng)
            phase = 0
        regime.length -= 1
        period = regime.bad_cycles + regime.good_cycles
        in_high = phase % period < regime.bad_cycles
        phase += 1
        if regime.flip:
            in_high = not in_high
        value = regime.high if in_high else regime.low
        cell, temp, current = 3300, 250, regime.current
        if regime.quantity == "cell":
            cell = value
        elif regime.quantity == "temp":
            temp = value
        else:
            current = value
        if not hw.relay_closed:
            current = 0  # the physics: no current through an open relay
        cell_known = rng.random() >= regime.unreadable
        temp_known = rng.random() >= regime.unreadable
        current_known = rng.random() >= regime.current_unreadable
        hw.cell_mv[7] = cell if cell_known else NOT_AVAILABLE
        hw.temp_dc[2] = temp if temp_known else NOT_AVAILABLE
        hw.pack_mv = 3300 * (CELLS - 1) + cell  # the physics: the true cell voltage
        hw.current_ma = current if current_known else NOT_AVAILABLE
        truth = beyond(temp, cell, current, current_known, detection.sample(current, current_known))
        readable = (cell_known, cell_known) + (temp_known,) * 4 + (current_known,) * 2

        if k % 10 == 0:
            heartbeats += 1
            rig.bus.inject(HEARTBEAT_ID, sealed(HEARTBEAT_ID, HEARTBEAT, heartbeats))
        if k % 4 == 0:  # Close, with a ResetFault edge every other frame once a trip cleared
            relays += 1
            command = RESET if node.trip_cleared and relays % 2 else CLOSE
            rig.bus.inject(RELAY_ID, sealed(RELAY_ID, command, relays))
        rig.step()
        closed = rig.hw.relay_drive

        for g in range(guards):
            p = prefix[g]
            # The verdict of this sample counts from the next cycle on (the interval after it).
            run[g] = run[g] + 1 if truth[g] else 0
            if closed:
                debounce = GUARDS[g].debounce_ms
                steady = (debounce + SENSOR_DEBOUNCE_MS) // CYCLE_MS + 1
                if run[g] > steady:
                    raise AssertionError(f"{GUARDS[g].name}: beyond for {run[g]} cycles, closed")
                n = len(p) - 1  # samples before this one
                for factor in WINDOW_FACTORS:
                    window = factor * debounce // CYCLE_MS
                    if window > n or window == 0 or last_open >= k - window:
                        continue  # the relay has been open within the window
                    bad = p[n] - p[n - window]
                    if CYCLE_MS * (5 * bad - window) >= 4 * debounce:
                        raise AssertionError(
                            f"{GUARDS[g].name}: {bad} of the last {window} samples beyond"
                            f" its fault level, relay closed at cycle {k}"
                        )
                checked += 1
            p.append(p[-1] + (1 if truth[g] and readable[g] else 0))
        if closed:
            CLOSED["cycles with the relay closed (invariant)"] += 1
        else:
            last_open = k
    assert checked >= len(GUARDS) * cycles // 20  # the relay was closed for 5 % of the run
    FRAMES["node"] += heartbeats + relays
