"""Fuzzing the gateway core: any frames, any order, any time -> no exception, every frame
counted in the right class, no NaN in what it keeps or shows, limits within their invariants.

Frames come from every corner: the node frames of dbc/moat_bms.dbc for configured and
unconfigured nodes with random payloads of every length (CAN FD lengths too), gateway
commands from "another gateway", the inverter ids, random 11- and 29-bit ids, remote and
error frames, and floods of one id. A valid-looking payload is often a valid frame with
extreme values (the generated codecs accept every bit pattern of a field), so the model and
the strategy see cells at 0 V and at 65 V, -3000 degC and bus-sized currents.
"""

from __future__ import annotations

import json
import math
import operator
from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st

from gateway.codec import moat_bms as codec
from gateway.codec import pylontech_lv as inverter_codec
from gateway.config.root import Settings, validate
from gateway.contracts.frame import Frame
from gateway.core import GatewayCore
from gateway.sim import nodeframes as nf
from gateway.web import views
from tests.fuzz.profile import FRAMES, fuzz

NODES = (0, 1, 2, 3)  # configured; 4..15 are not
MAX_CCL, MAX_DCL = 120.0, 150.0
NODE_BASES = tuple(fid for fid, sender in codec.SENDERS.items() if sender == "Node")
GATEWAY_BASES = tuple(fid for fid, sender in codec.SENDERS.items() if sender == "Gateway")
KEEPALIVE_ID = inverter_codec.FRAME_IDS["InverterKeepalive"]
STATUS_ID = inverter_codec.FRAME_IDS["InverterStatus"]


def from_inverter(f: CanFrame) -> bool:
    """0x305 with an 11- or a 29-bit id (issue 15 item 6), or a plain 0x306 (SMA status)."""
    if f.remote or f.error:
        return False
    return f.id == KEEPALIVE_ID or (f.id == STATUS_ID and not f.extended)


T0 = 1_780_000_000.0


def make_settings(shared_bus: bool) -> Settings:
    data: dict[str, object] = {
        "battery": {"topology": {"strings": [[0, 1], [2, 3]], "cells_per_node": 8}},
        "strategy": {"max_charge_current_a": MAX_CCL, "max_discharge_current_a": MAX_DCL},
        "inverter": {"startup_grace": 5, "keepalive_timeout": 3},
    }
    if not shared_bus:
        data["buses"] = {"inverter": {"interface": "virtual", "channel": "inverter"}}
    return validate(data)


CanFrame = Frame


# ------------------------------------------------------------------ strategies

# Every strategy is built once here: one built per draw (flatmap) cost more than the
# gateway's handling of the frame.
node_bases = st.sampled_from(NODE_BASES)
node_numbers = st.integers(0, 15)  # a frame id's low four bits
node_ids = st.builds(operator.or_, node_bases, node_numbers)
payload_of = {  # a node frame's payload of its own length, by frame base
    base: st.binary(min_size=codec.LENGTHS[base], max_size=codec.LENGTHS[base])
    for base in NODE_BASES
}
any_id = st.one_of(
    node_ids,
    st.builds(operator.or_, st.sampled_from(GATEWAY_BASES), node_numbers),
    st.sampled_from(sorted(inverter_codec.FRAME_IDS.values())),
    st.integers(0, 0x7FF),
)
payload = st.one_of(st.binary(max_size=8), st.binary(min_size=9, max_size=64))
frame_kinds = st.integers(0, 9)
any_29_bit_id = st.integers(0, 0x1FFFFFFF)
ours_or_any_29_bit_id = st.one_of(node_ids, any_29_bit_id)


@st.composite
def frames(draw: st.DrawFn) -> CanFrame:
    kind = draw(frame_kinds)
    if kind <= 3:  # a node frame of the right length: random, often valid, values
        base = draw(node_bases)
        return CanFrame(base | draw(node_numbers), draw(payload_of[base]))
    if kind <= 6:  # known or random id, any length
        return CanFrame(draw(any_id), draw(payload))
    if kind == 7:  # 29-bit: the same numbers, but not ours
        return CanFrame(draw(ours_or_any_29_bit_id), draw(payload), True)
    if kind == 8:  # remote request on any id
        return CanFrame(draw(any_id), draw(payload), draw(st.booleans()), remote=True)
    return CanFrame(draw(any_29_bit_id), draw(payload), error=True)


@dataclass
class Step:
    dt: float  # seconds before this batch
    batch: list[CanFrame]
    flood: int = 0  # this many copies of the batch's first frame as well
    tick: bool = True


steps = st.builds(
    Step,
    dt=st.one_of(st.floats(0.0, 2.0), st.sampled_from([0.1, 5.0, 60.0, -0.5])),
    batch=st.lists(frames(), max_size=16),
    flood=st.one_of(st.just(0), st.just(0), st.just(0), st.integers(100, 600)),
    tick=st.booleans(),
)


# ------------------------------------------------------------------ the oracle


@dataclass
class Expected:
    """What the counters must say, from the frames alone."""

    battery_received: int = 0
    inverter_received: int = 0
    errors: int = 0
    unknown: int = 0
    malformed: int = 0
    accepted: int = 0
    inverter_errors: int = 0
    inverter_unknown: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    def battery(self, f: CanFrame, shared: bool) -> None:
        plain = not (f.extended or f.remote or f.error)
        if shared and from_inverter(f):
            self.inverter_received += 1
            return
        self.battery_received += 1
        base, node = f.id & 0x7F0, f.id & 0x00F
        if f.error:
            self.errors += 1
        elif not plain or base not in NODE_BASES or node not in NODES or f.id > 0x7FF:
            self.unknown += 1
        elif len(f.data) != codec.LENGTHS[base]:
            self.malformed += 1
        else:
            try:
                codec.DECODERS[base](f.data)
            except ValueError:
                self.malformed += 1
            else:
                self.accepted += 1

    def inverter(self, f: CanFrame) -> None:
        self.inverter_received += 1
        if f.error:
            self.inverter_errors += 1
        elif not from_inverter(f):
            self.inverter_unknown += 1


def check_invariants(core: GatewayCore, now: float, exp: Expected, views_too: bool) -> None:
    b, i = core.battery_counters, core.inverter_counters
    assert b.received == exp.battery_received
    assert b.errors == exp.errors
    assert b.unknown == exp.unknown
    assert b.malformed == exp.malformed
    assert i.received == exp.inverter_received
    assert i.errors == exp.inverter_errors
    assert i.unknown == exp.inverter_unknown
    assert len(b.unknown_ids) <= b.MAX_TRACKED_IDS

    soc = core.soc_state
    assert math.isfinite(soc.soc) and 0.0 <= soc.soc <= 100.0
    assert math.isfinite(soc.health) and soc.health > 0
    # What is kept and what is shown never carries NaN or infinity.
    json.dumps(core.persistent_state(), allow_nan=False)
    if views_too:
        json.dumps(views.status(core, now), allow_nan=False)
        json.dumps(views.nodes(core, now), allow_nan=False)

    if core.report is not None:
        lim = core.report.limits
        assert math.isfinite(lim.cvl) and lim.cvl > 0
        assert math.isfinite(lim.dvl) and lim.dvl > 0
        assert 0.0 <= lim.ccl <= MAX_CCL
        assert 0.0 <= lim.dcl <= MAX_DCL
    sent = core.sent
    if sent is not None:
        assert sent.cvl > 0
        assert 0.0 <= sent.ccl <= MAX_CCL
        assert 0.0 <= sent.dcl <= MAX_DCL


def run_steps(shared: bool, plan: list[Step], inverter_plan: list[list[CanFrame]]) -> int:
    now = T0
    core = GatewayCore(make_settings(shared), now)
    exp = Expected()
    fed = 0
    for n, step in enumerate(plan):
        now += step.dt
        batch = step.batch + (step.batch[:1] * step.flood)
        for f in batch:
            core.on_battery_frame(f, now)
            exp.battery(f, shared)
        fed += len(batch)
        if not shared and n < len(inverter_plan):
            for f in inverter_plan[n]:
                core.on_inverter_frame(f, now)
                exp.inverter(f)
            fed += len(inverter_plan[n])
        if step.tick:
            core.tick(now)
        check_invariants(core, now, exp, views_too=n % 4 == 3)
    core.tick(now + 0.1)
    check_invariants(core, now + 0.1, exp, views_too=True)
    return fed


@fuzz(300)
@given(
    shared=st.booleans(),
    plan=st.lists(steps, min_size=1, max_size=8),
    inverter_plan=st.lists(st.lists(frames(), max_size=6), max_size=8),
)
def test_any_frames_are_counted_and_never_break_the_gateway(
    shared: bool, plan: list[Step], inverter_plan: list[list[CanFrame]]
) -> None:
    FRAMES["gateway"] += run_steps(shared, plan, inverter_plan)


def _valid_node_frames(node: int, counter: int, cell_v: float, amps: float) -> list[CanFrame]:
    return [
        nf.node_state(node, counter),
        nf.pack_status(node, 8 * cell_v, amps),
        nf.cell_extremes(node, cell_v, cell_v, 1, 2, cell_v),
        nf.temperature_extremes(node, 20.0, 22.0, 1, 2, 21.0),
    ]


def _not_from_a_configured_node(f: CanFrame) -> bool:
    plain = not (f.extended or f.remote or f.error)
    return not (plain and f.id & 0x7F0 in NODE_BASES and f.id & 0xF in NODES)


@fuzz(60)
@given(
    garbage=st.lists(
        st.lists(frames().filter(_not_from_a_configured_node), max_size=8),
        min_size=12,
        max_size=24,
    ),
    cell_v=st.floats(3.0, 3.4),
    amps=st.floats(-80.0, 80.0),
)
def test_a_healthy_battery_behind_garbage_still_gets_limits(
    garbage: list[list[CanFrame]], cell_v: float, amps: float
) -> None:
    """Valid node frames interleaved with garbage: the gateway keeps the battery working
    (limits above zero once it is up) and the invariants hold throughout."""
    now = T0
    core = GatewayCore(make_settings(shared_bus=True), now)
    exp = Expected()
    fed = 0
    for n, junk in enumerate(garbage):
        now += 0.5
        batch = [f for node in NODES for f in _valid_node_frames(node, n, cell_v, amps)] + junk
        batch.append(CanFrame(KEEPALIVE_ID, bytes(8)))
        for f in batch:
            core.on_battery_frame(f, now)
            exp.battery(f, shared=True)
        fed += len(batch)
        core.tick(now)
        check_invariants(core, now, exp, views_too=n % 8 == 7)
    FRAMES["gateway"] += fed
    # Every node's own frames were accepted whatever surrounded them, so the battery is up.
    snap = core.snapshot
    assert snap.valid
    assert all(ns.present for ns in snap.nodes.values())


def test_a_flood_of_distinct_bad_ids_keeps_memory_bounded() -> None:
    core = GatewayCore(make_settings(shared_bus=True), T0)
    for i in range(20_000):
        core.on_battery_frame(Frame(0x1000 + i, b"\x00", extended=True), T0 + i * 1e-4)
        core.on_battery_frame(Frame(0x700 + (i % 0x100), bytes(9)), T0 + i * 1e-4)
    core.tick(T0 + 3)
    FRAMES["gateway"] += 40_000
    counters = core.battery_counters
    assert counters.received == counters.unknown == 40_000
    assert len(counters.unknown_ids) == counters.MAX_TRACKED_IDS
    assert len(core.source.ingest.log._last) <= core.source.ingest.log.MAX_KEYS


def test_node_info_claiming_255_sensors_does_not_break_the_nodes_view() -> None:
    """Found by the fuzzer: views.nodes indexed past the model's sensor list."""
    core = GatewayCore(make_settings(shared_bus=True), T0)
    info = codec.encode_node_info(
        codec.NodeInfo(
            **{**dict.fromkeys(codec.NodeInfo._fields, 0), "temperature_sensor_count": 255}
        )
    )
    assert core.on_battery_frame(Frame(0x1A0, info), T0) is False
    core.tick(T0)
    (node0,) = [n for n in views.nodes(core, T0) if n["node"] == 0]
    assert len(node0["temperatures"]) <= 64
