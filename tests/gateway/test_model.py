"""Battery model and frame routing: ages, topology, blocked strings, urgency, counters."""

from __future__ import annotations

import logging
import math

import pytest

from gateway.codec import moat_bms as codec
from gateway.contracts.frame import Frame
from gateway.contracts.snapshot import CellRef, NodeState, ProtectionKind
from gateway.contracts.topology import TopologySettings
from gateway.record.counters import BusCounters
from gateway.sim import nodeframes as nf
from gateway.sources.moat_nodes.ingest import BatteryIngest
from gateway.sources.moat_nodes.model import BatteryModel

TIMEOUT = 3.0


class Rig:
    """Two parallel strings of two nodes in series, 16 cells each."""

    def __init__(self, strings=((0, 1), (2, 3))) -> None:
        topo = TopologySettings(
            strings=[list(s) for s in strings], cells_per_node=16, capacity_ah=100.0
        )
        self.model = BatteryModel(topo, node_timeout=TIMEOUT)
        self.counters = BusCounters()
        self.ingest = BatteryIngest(self.model, self.counters)
        self.counter = dict.fromkeys(self.model.nodes, 0)

    def feed(self, frame: Frame, now: float) -> bool:
        return self.ingest.on_frame(frame, now)

    def node_ok(
        self,
        node: int,
        now: float,
        volts: float = 53.0,
        amps: float = 10.0,
        vmin: float = 3.30,
        vmax: float = 3.32,
        **state,
    ) -> None:
        self.counter[node] += 1
        self.feed(nf.node_state(node, self.counter[node], **state), now)
        self.feed(nf.pack_status(node, volts, amps), now)
        self.feed(nf.cell_extremes(node, vmin, vmax), now)
        self.feed(nf.temperature_extremes(node, 20.0 + node, 25.0 + node), now)


def test_two_parallel_strings_make_one_battery() -> None:
    rig = Rig()
    packs = {0: (26.0, 10.0), 1: (26.5, 10.0), 2: (26.2, 8.0), 3: (26.4, 8.0)}
    for node, (v, a) in packs.items():
        rig.node_ok(
            node, now=100.0, volts=v, amps=a, vmin=3.30 - node / 100, vmax=3.40 + node / 100
        )
    snap = rig.model.snapshot(100.5)
    assert snap.valid
    assert snap.strings_online == 2
    assert [s.voltage for s in snap.strings] == [pytest.approx(52.5), pytest.approx(52.6)]
    assert snap.voltage == pytest.approx(52.55)
    assert snap.current == pytest.approx(18.0)
    assert snap.capacity_ah == 200.0
    assert snap.cells_in_series == 32
    assert snap.max_cell == pytest.approx(3.43)
    assert snap.max_cell_at == CellRef(3, 2)
    assert snap.min_cell == pytest.approx(3.27)
    assert snap.min_cell_at == CellRef(3, 1)
    assert snap.min_temp == pytest.approx(20.0)
    assert snap.max_temp == pytest.approx(28.0)
    assert snap.data_age == pytest.approx(0.5)
    assert snap.online_fraction == 1.0


def test_missing_node_blocks_its_string_and_removes_its_capacity() -> None:
    rig = Rig()
    for node in (0, 1, 2):
        rig.node_ok(node, now=10.0)
    snap = rig.model.snapshot(10.1)
    assert snap.valid  # string 0 still has full data
    assert snap.strings[1].blocked and snap.strings[1].reason == "node 3 missing"
    assert not snap.strings[1].online
    assert math.isnan(snap.strings[1].voltage)
    assert snap.capacity_ah == 100.0
    assert snap.online_fraction == 0.5
    assert not snap.nodes[3].present


def test_stale_data_means_invalid_not_last_value() -> None:
    rig = Rig(strings=((0,),))
    rig.node_ok(0, now=0.0)
    assert rig.model.snapshot(TIMEOUT).valid
    snap = rig.model.snapshot(TIMEOUT + 0.01)
    assert not snap.valid
    assert snap.data_age == math.inf
    assert math.isnan(snap.voltage) and math.isnan(snap.current) and math.isnan(snap.max_cell)
    assert snap.strings[0].reason == "node 0 missing"


def test_a_stuck_node_repeating_its_state_frame_goes_stale() -> None:
    rig = Rig(strings=((0,),))
    frame = nf.node_state(0, 5)
    for t in range(0, 10):
        rig.feed(frame, float(t))  # same alive counter every time
        rig.feed(nf.pack_status(0, 53.0, 0.0), float(t))
        rig.feed(nf.cell_extremes(0, 3.3, 3.3), float(t))
    assert not rig.model.snapshot(9.0).valid
    assert rig.model.nodes[0].state_frames_ignored == 9


def test_tripped_node_blocks_its_string_with_the_reason() -> None:
    rig = Rig()
    for node in (0, 1, 2, 3):
        rig.node_ok(node, now=1.0)
    rig.node_ok(
        1,
        now=1.1,
        state=int(NodeState.TRIPPED),
        relay=0,
        faults=frozenset({ProtectionKind.CELL_OVER_VOLTAGE}),
    )
    snap = rig.model.snapshot(1.2)
    assert snap.strings[0].blocked and snap.strings[0].reason == "node 1 tripped"
    assert snap.strings_online == 1
    assert snap.faults == {ProtectionKind.CELL_OVER_VOLTAGE}
    assert snap.nodes[1].state == NodeState.TRIPPED


def test_flags_of_all_three_levels_reach_the_snapshot() -> None:
    rig = Rig(strings=((0,),))
    rig.node_ok(
        0,
        now=0.0,
        warnings=frozenset({ProtectionKind.CHARGE_UNDER_TEMP}),
        infos=frozenset({ProtectionKind.CELL_OVER_VOLTAGE, ProtectionKind.INTERNAL}),
    )
    snap = rig.model.snapshot(0.0)
    assert snap.warnings == {ProtectionKind.CHARGE_UNDER_TEMP}
    assert snap.infos == {ProtectionKind.CELL_OVER_VOLTAGE, ProtectionKind.INTERNAL}
    assert snap.faults == frozenset()


def test_state_change_is_urgent_a_repeat_is_not() -> None:
    rig = Rig(strings=((0,),))
    assert rig.feed(nf.node_state(0, 1), 0.0)  # first sight
    assert not rig.feed(nf.node_state(0, 2), 0.1)
    warn = frozenset({ProtectionKind.CELL_OVER_VOLTAGE})
    assert rig.feed(nf.node_state(0, 3, warnings=warn), 0.2)


def test_a_cell_beyond_the_alert_bound_is_urgent() -> None:
    rig = Rig(strings=((0,),))
    rig.model.alert_high_cell = 3.50
    rig.model.alert_low_cell = 2.80
    assert not rig.feed(nf.cell_extremes(0, 3.3, 3.49), 0.0)
    assert rig.feed(nf.cell_extremes(0, 3.3, 3.50), 0.1)
    assert rig.feed(nf.cell_voltages(0, 2, (3.3, 3.3, 2.79, 3.3)), 0.2)
    assert not rig.feed(nf.cell_voltages(0, 2, (3.3, 3.3, 3.31, 3.3)), 0.3)


def test_cell_voltages_land_on_their_cells_and_expire() -> None:
    rig = Rig(strings=((0,),))
    rig.node_ok(0, now=0.0)
    rig.feed(nf.cell_voltages(0, 1, (3.301, 3.302, math.nan, 3.2)), 0.0)
    rig.node_ok(0, now=2.0)
    cells = rig.model.snapshot(2.0).cell_voltages[0]
    assert len(cells) == 16
    assert cells[4:6] == (3.301, 3.302)
    assert math.isnan(cells[6]) and cells[7] == 3.2
    assert math.isnan(cells[0])  # never received
    rig.node_ok(0, now=4.0)
    assert math.isnan(rig.model.snapshot(4.0).cell_voltages[0][4])  # older than the timeout


def test_unknown_malformed_and_error_frames_are_counted_never_raised(caplog) -> None:
    rig = Rig(strings=((0,),))
    caplog.set_level(logging.WARNING)
    frame = nf.pack_status(0, 53.0, 1.0)
    assert not rig.ingest.on_frame(Frame(0x7FF, b"\x00"), 0.0)
    assert not rig.ingest.on_frame(Frame(frame.id | 5, frame.data), 0.0)  # node 5 is not configured
    assert not rig.ingest.on_frame(Frame(frame.id, frame.data[:5]), 0.0)  # short
    assert not rig.ingest.on_frame(frame._replace(extended=True), 0.0)
    assert not rig.ingest.on_frame(frame._replace(remote=True), 0.0)
    assert not rig.ingest.on_frame(Frame(0, b"", error=True), 0.0)
    c = rig.counters
    assert (c.received, c.unknown, c.malformed, c.errors) == (6, 4, 1, 1)
    assert c.unknown_ids[0x7FF] == 1
    assert "node 5 is not configured" in caplog.text


def test_undecodable_multiplexer_is_malformed() -> None:
    rig = Rig(strings=((0,),))
    assert not rig.ingest.on_frame(Frame(0x180, bytes([99, 0, 0, 0, 0, 0, 0, 0])), 0.0)
    assert rig.counters.malformed == 1


def test_bad_frames_are_logged_once_per_id_per_minute(caplog) -> None:
    rig = Rig(strings=((0,),))
    caplog.set_level(logging.WARNING)
    for t in range(0, 59):
        rig.ingest.on_frame(Frame(0x7FF, b""), float(t))
    assert caplog.text.count("0x7FF") == 1
    rig.ingest.on_frame(Frame(0x7FF, b""), 60.0)
    assert caplog.text.count("0x7FF") == 2
    assert rig.counters.unknown == 60


def test_node_reporting_another_cell_count_is_a_mismatch() -> None:
    rig = Rig(strings=((0,),))
    info = codec.encode_node_info(codec.NodeInfo(0, 1, 0, 15, 4, 0, 280.0))
    rig.ingest.on_frame(Frame(codec.FRAME_IDS["NodeInfo"], info), 0.0)
    assert rig.model.mismatches() == ["node 0 reports 15 cells, configured 16"]


def test_undefined_content_is_a_decode_error_counted_as_malformed() -> None:
    # CellVoltages group 20: the DBC defines groups 0..15 only.
    data = bytearray(nf.cell_voltages(0, 0, (3.3, 3.3, 3.3, 3.3)).data)
    data[0] = (data[0] & 0xE0) | 20
    with pytest.raises(codec.DecodeError):
        codec.decode_cell_voltages(bytes(data))
    rig = Rig()
    assert not rig.ingest.on_frame(Frame(codec.FRAME_IDS["CellVoltages"], bytes(data)), 0.0)
    assert rig.counters.malformed == 1


def test_a_node_whose_temperatures_went_stale_makes_the_battery_temperature_unknown() -> None:
    """Review finding: node 3 reports 60 degC, then only its TemperatureExtremes stop while
    its other frames stay fresh: the battery's temperature is unknown, not the others'."""
    rig = Rig()
    for node in rig.model.nodes:
        rig.node_ok(node, now=100.0)
    rig.feed(nf.temperature_extremes(3, 21.0, 60.0), 100.0)
    assert rig.model.snapshot(100.0).max_temp == 60.0
    for t in (102.0, 104.0, 106.0):  # node 3's temperature frames stop, the rest go on
        for node in rig.model.nodes:
            rig.counter[node] += 1
            rig.feed(nf.node_state(node, rig.counter[node]), t)
            rig.feed(nf.pack_status(node, 53.0, 10.0), t)
            rig.feed(nf.cell_extremes(node, 3.30, 3.32), t)
            if node != 3:
                rig.feed(nf.temperature_extremes(node, 20.0, 25.0), t)
    snap = rig.model.snapshot(106.0)
    assert snap.valid and snap.nodes[3].present
    assert math.isnan(snap.max_temp) and math.isnan(snap.min_temp)
