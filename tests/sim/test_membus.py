"""The in-memory bus (gateway/sim/membus.py) gives the same simulation as python-can's
virtual bus: the long runs that use it (the week in make test, the soak) test what the
virtual bus would."""

from __future__ import annotations

import copy
import io

import can
import pytest

from gateway.sim.membus import Bridge, CopyCheapMessage, MemoryBus, received
from gateway.sim.scenarios import SCENARIOS
from gateway.sim.system import SimSystem
from tests.sim.test_scenarios import ON_BOTH_BUSES, nan_safe, samples


def run_logged(name: str, bus: str, duration: float) -> tuple[str, list[tuple[object, ...]]]:
    scenario = SCENARIOS[name]
    log = io.StringIO()
    sim, record = scenario.build(3, bus=bus, log=log)
    with sim:
        sim.run(duration)
        assert scenario.check(sim, record) == []
    return log.getvalue(), nan_safe(samples(record))


@pytest.mark.parametrize("name", ON_BOTH_BUSES)  # four nodes and a trip; a kill and a restart
def test_a_scenario_runs_frame_for_frame_as_on_the_virtual_bus(name: str) -> None:
    """The whole scenario, its checks holding on both buses (test_scenarios.py leaves these
    to this test)."""
    duration = SCENARIOS[name].duration
    virtual_log, virtual_samples = run_logged(name, "virtual", duration)
    memory_log, memory_samples = run_logged(name, "memory", duration)
    assert virtual_log.count("\n") > 10 * duration  # both buses were logged, every second
    # Every frame on both buses, in the same order, with the same simulated time stamp.
    assert memory_log == virtual_log
    assert memory_samples == virtual_samples


def test_frames_reach_every_other_bus_in_order_and_never_the_sender() -> None:
    a, b, c = (MemoryBus("t-order") for _ in range(3))
    try:
        for n in range(3):
            a.send(can.Message(arbitration_id=0x100 + n, data=[n], is_extended_id=False))
        b.send(can.Message(arbitration_id=0x1ABCDEF, data=b"", is_extended_id=True))
        assert a.recv(0).arbitration_id == 0x1ABCDEF  # type: ignore[union-attr]
        assert a.recv(0) is None
        got = [b.recv(0) for _ in range(4)]
        assert [m.arbitration_id for m in got if m] == [0x100, 0x101, 0x102]
        assert got[3] is None
        from_c = [c.recv(0) for _ in range(5)]
        assert [m.arbitration_id for m in from_c if m] == [0x100, 0x101, 0x102, 0x1ABCDEF]
        assert from_c[3] is not None and from_c[3].is_extended_id
    finally:
        for bus in (a, b, c):
            bus.shutdown()


def test_each_receiver_gets_its_own_copy() -> None:
    a, b, c = (MemoryBus("t-copy") for _ in range(3))
    try:
        sent = can.Message(arbitration_id=0x351, data=b"\x01\x02", is_extended_id=False)
        a.send(sent)
        got_b, got_c = b.recv(0), c.recv(0)
        assert got_b is not None and got_c is not None
        assert got_b is not got_c and got_b is not sent
        got_b.data[0] = 0xFF  # a receiver changing its frame (the log writer stamps them)
        got_b.timestamp = 123.0
        assert got_c.data == bytearray(b"\x01\x02") and got_c.timestamp != 123.0
        assert sent.data == bytearray(b"\x01\x02")
        assert got_c.is_rx and got_c.channel == "t-copy"
        fd = can.Message(arbitration_id=0x123, data=bytes(12), is_fd=True, bitrate_switch=True)
        a.send(fd)
        got_fd = b.recv(0)
        assert got_fd is not None and got_fd.is_fd and got_fd.bitrate_switch
        assert got_fd.dlc == 12 and got_fd.data == bytearray(12)
    finally:
        for bus in (a, b, c):
            bus.shutdown()


def test_filters_and_channels_and_a_closed_bus() -> None:
    a = MemoryBus("t-filter")
    b = MemoryBus("t-filter", can_filters=[{"can_id": 0x300, "can_mask": 0x700}])
    other = MemoryBus("t-elsewhere")
    try:
        for can_id in (0x123, 0x351, 0x7FF, 0x305):
            a.send(can.Message(arbitration_id=can_id, is_extended_id=False))
        ids = []
        while (msg := b.recv(0)) is not None:
            ids.append(msg.arbitration_id)
        assert ids == [0x351, 0x305]
        assert other.recv(0) is None  # another channel hears nothing
    finally:
        b.shutdown()
        other.shutdown()
    a.send(can.Message(arbitration_id=0x1))  # alone on its channel now: goes nowhere
    a.shutdown()
    with pytest.raises(can.CanOperationError):
        a.send(can.Message(arbitration_id=0x1))


def test_an_unknown_bus_name_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="virtual, memory"):
        SimSystem(SCENARIOS["cold-charge"].setup(), bus="vcan")


def test_a_receiver_that_names_its_frames_is_queued_only_those() -> None:
    """A node's acceptance filter (SimSystem sets it from the firmware's filters): frames it
    would drop are never queued for it; other receivers still get every frame."""
    a, node, monitor = (MemoryBus("t-accept") for _ in range(3))
    node.accept = lambda can_id, extended: can_id & 0x7F0 == 0x110 and not extended
    try:
        for can_id in (0x111, 0x351, 0x112):
            a.send(can.Message(arbitration_id=can_id, is_extended_id=False))
        a.send(can.Message(arbitration_id=0x111, is_extended_id=True))
        assert [m.arbitration_id for m in iter(lambda: node.recv(0), None)] == [0x111, 0x112]
        assert len(list(iter(lambda: monitor.recv(0), None))) == 4
    finally:
        for bus in (a, node, monitor):
            bus.shutdown()


def test_send_frame_delivers_what_send_of_the_same_message_does() -> None:
    a, b = MemoryBus("t-frame"), MemoryBus("t-frame")
    try:
        a.send(can.Message(arbitration_id=0x1ABCDEF, data=b"\x01\x02", is_extended_id=True))
        a.send_frame(0x1ABCDEF, b"\x01\x02", True)
        a.send(can.Message(arbitration_id=0x123, is_remote_frame=True, is_extended_id=False))
        a.send_frame(0x123, b"", False, remote=True)
        got = list(iter(lambda: b.recv(0), None))
        assert len(got) == 4
        for sent, framed in (got[0:2], got[2:4]):
            assert sent.equals(framed, timestamp_delta=None, check_channel=True)
            assert framed.is_rx and framed.data is not sent.data
    finally:
        a.shutdown()
        b.shutdown()
    with pytest.raises(can.CanOperationError):
        a.send_frame(0x1, b"", False)


def test_a_bridge_joins_a_memory_channel_to_a_virtual_bus_in_send_order() -> None:
    """Frames sent on the memory side reach the virtual side at once; the virtual side's
    reach the memory side at the next pump; no side hears its own frames back."""
    node_a, node_b = MemoryBus("t-bridge-nodes"), MemoryBus("t-bridge-nodes")
    gateway = can.Bus(interface="virtual", channel="t-bridge-battery")
    bridge = Bridge("t-bridge-nodes", can.Bus(interface="virtual", channel="t-bridge-battery"))
    try:
        node_a.send_frame(0x111, b"\x01", False)
        gateway.send(can.Message(arbitration_id=0x201, data=b"\x02", is_extended_id=False))
        node_b.send_frame(0x1ABCDEF, b"", True)
        heard = [(f.id, f.data, f.extended) for f in received(gateway)]
        assert heard == [(0x111, b"\x01", False), (0x1ABCDEF, b"", True)]
        assert [f.id for f in node_b.frames()] == [0x111]  # not yet what the gateway sent
        bridge.pump()
        assert [f.id for f in node_a.frames()] == [0x1ABCDEF, 0x201]
        assert [f.id for f in node_b.frames()] == [0x201]
        assert received(gateway) == []  # the pumped frame is not sent back
        bridge.pump()
        assert node_a.frames() == []
    finally:
        for bus in (node_a, node_b, gateway, bridge):
            bus.shutdown()


def test_the_sims_messages_copy_as_deepcopy_does() -> None:
    msg = CopyCheapMessage(
        timestamp=1.5, arbitration_id=0x355, data=b"\x01\x02", is_extended_id=False, channel="x"
    )
    twin = copy.deepcopy(msg)
    assert type(twin) is can.Message and twin is not msg and twin.data is not msg.data
    assert twin.equals(msg, timestamp_delta=0.0, check_channel=True)
    assert twin.equals(copy.deepcopy(can.Message(**_fields(msg))), check_channel=True)


def _fields(msg: can.Message) -> dict[str, object]:
    return {name: getattr(msg, name) for name in can.Message.__slots__ if name != "__weakref__"}


def test_keep_only_drops_what_a_new_filter_rejects() -> None:
    a, node = MemoryBus("t-keep"), MemoryBus("t-keep")
    try:
        for can_id in (0x111, 0x351, 0x112):
            a.send_frame(can_id, b"", False)
        a.send(can.Message(arbitration_id=0x113, is_extended_id=True))
        node.keep_only(lambda can_id, extended: can_id & 0x7F0 == 0x110 and not extended)
        assert [f.id for f in node.frames()] == [0x111, 0x112]
    finally:
        a.shutdown()
        node.shutdown()
