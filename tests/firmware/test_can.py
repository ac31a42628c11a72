"""The CAN shim: NodeCanPort (drops, bus-off back-off), loopback, machine.CAN, pyb.CAN,
python-can."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import can
import pytest

from bms.can import (
    FLAG_EXT_ID,
    FLAG_RTR,
    FLAG_UNORDERED,
    STATE_ACTIVE,
    STATE_BUS_OFF,
    STATE_PASSIVE,
    STATE_WARNING,
    Frame,
)
from bms.can.loopback import LoopbackBus
from bms.can.machine_can import MachineCanBus
from bms.can.port import NodeCanPort
from bms.can.pyb_can import PybCanBus
from bms.can.pythoncan import PythonCanBus
from bms.config import load_config
from bms.hw.sim import SimHardware
from bms.lifecycle import ACTIVE
from bms.node import Node
from tests.firmware.harness import Bench, GatewayPeer

# ---- NodeCanPort ----


def restart_times(port: NodeCanPort, bus: LoopbackBus, until: int, step: int = 10) -> list[int]:
    times = []
    for now in range(0, until, step):
        before = bus.restarts
        port.poll(now)
        if bus.restarts != before:
            times.append(now)
    return times


def test_bus_off_restarts_with_doubling_back_off() -> None:
    bus = LoopbackBus()
    port = NodeCanPort(bus)
    bus.bus_state = STATE_BUS_OFF
    bus.stuck_bus_off = True
    times = restart_times(port, bus, 30_000)
    intervals = [b - a for a, b in zip([0, *times], times, strict=False)]
    assert intervals[:8] == [100, 200, 400, 800, 1600, 3200, 5000, 5000]
    assert port.bus_off_count == 1
    assert port.restarts == len(times)


def test_back_off_resets_after_the_bus_stays_healthy() -> None:
    bus = LoopbackBus()
    port = NodeCanPort(bus)
    bus.bus_state = STATE_BUS_OFF
    port.poll(0)
    port.poll(100)  # restart: the bus recovers
    assert bus.restarts == 1 and bus.bus_state == STATE_ACTIVE
    port.poll(110)
    bus.bus_state = STATE_BUS_OFF  # off again soon: the next wait is longer
    port.poll(1000)
    port.poll(1100)
    assert bus.restarts == 1
    port.poll(1200)
    assert bus.restarts == 2
    for now in range(1210, 6300, 10):  # healthy for 5 s
        port.poll(now)
    bus.bus_state = STATE_BUS_OFF
    port.poll(7000)
    port.poll(7100)
    assert bus.restarts == 3  # back to 100 ms


def test_frames_are_dropped_and_counted_while_bus_off() -> None:
    bus = LoopbackBus()
    port = NodeCanPort(bus)
    bus.bus_state = STATE_BUS_OFF
    port.poll(0)
    assert not port.send(0x100, bytes(8))
    assert port.tx_dropped == 1
    assert bus.pending() == 0


def test_driver_errors_never_reach_the_caller() -> None:
    class Broken:
        def send(self, *args: Any) -> bool:
            raise OSError(5)

        def recv(self, frame: Frame) -> bool:
            raise OSError(5)

        def state(self) -> int:
            raise OSError(5)

        def restart(self) -> None:
            raise OSError(5)

        def set_filters(self, filters: Any) -> None:
            raise ValueError("too many filters")

    port = NodeCanPort(Broken(), tx_queue=2)
    port.set_filters([(0x100, 0x7FF, 0)])
    assert port.send(0x100, bytes(8))  # queued
    assert port.send(0x101, bytes(8))
    assert not port.send(0x102, bytes(8))
    assert port.recv() is None
    assert port.tx_dropped == 1
    assert port.errors == 5  # every driver call failed: filters, 3 sends, 1 receive
    for now in range(0, 1000, 50):  # an unreadable state counts as bus-off
        port.poll(now)
    assert port.bus_off
    assert port.restarts > 0


class Mailboxes:
    """A controller with three transmit buffers that empty when the bus sends them."""

    def __init__(self) -> None:
        self.pending: list[tuple[int, bytes]] = []
        self.sent: list[tuple[int, bytes]] = []
        self.bus_state = STATE_ACTIVE

    def send(self, can_id: int, data: Any, flags: int) -> bool:
        if len(self.pending) == 3:
            return False
        self.pending.append((can_id, bytes(data)))
        return True

    def transmit(self) -> None:
        self.sent += self.pending
        self.pending.clear()

    def recv(self, frame: Frame) -> bool:
        return False

    def set_filters(self, filters: Any) -> None:
        pass

    def state(self) -> int:
        return self.bus_state

    def restart(self) -> None:
        self.bus_state = STATE_ACTIVE


def test_a_burst_larger_than_the_mailboxes_goes_out_in_order() -> None:
    hw = Mailboxes()
    port = NodeCanPort(hw)
    for k in range(9):
        assert port.send(0x100 + k, bytes([k, 0, 0, 0, 0, 0, 0, k]))
    assert port.queue.count == 6
    for now in (0, 1, 2):
        hw.transmit()
        port.poll(now)
    hw.transmit()
    assert [i for i, _ in hw.sent] == [0x100 + k for k in range(9)]
    assert all(data == bytes([k, 0, 0, 0, 0, 0, 0, k]) for k, (_, data) in enumerate(hw.sent))
    assert (port.tx_frames, port.tx_deferred, port.tx_dropped) == (9, 6, 0)


def test_queued_frames_keep_their_length() -> None:
    hw = Mailboxes()
    port = NodeCanPort(hw)
    for _ in range(3):
        port.send(0x100, b"")
    port.send(0x7FF, b"\x01\x02\x03")
    hw.transmit()
    port.poll(0)
    hw.transmit()
    assert hw.sent[-1] == (0x7FF, b"\x01\x02\x03")


def test_full_queue_drops_and_counts() -> None:
    bus = LoopbackBus(tx_capacity=2)
    port = NodeCanPort(bus, tx_queue=4)
    for k in range(6):
        assert port.send(0x100 + k, bytes([k]))
    assert not port.send(0x106, b"\x06")
    assert (port.tx_frames, port.tx_dropped, port.queue.count) == (2, 1, 4)


def test_bus_off_drops_the_queued_frames() -> None:
    hw = Mailboxes()
    port = NodeCanPort(hw)
    for k in range(5):
        port.send(0x100 + k, b"")
    hw.bus_state = STATE_BUS_OFF
    port.poll(0)
    assert port.queue.count == 0
    assert port.tx_dropped == 2


def test_node_recovers_from_bus_off(bench: Callable[..., Bench]) -> None:
    b = bench(request="Close")
    b.settle()
    b.bus.bus_state = STATE_BUS_OFF
    b.run(60)
    assert b.node.port.bus_off
    b.run(100)
    assert b.bus.restarts == 1
    assert not b.node.port.bus_off
    b.sent.clear()
    b.run(500)
    assert b.decoded("NodeState")
    assert b.node.state == ACTIVE  # the relay never depended on the bus


# ---- loopback ----


def test_loopback_honours_filters_and_counts_overruns() -> None:
    bus = LoopbackBus(rx_capacity=2)
    bus.set_filters([(0x120, 0x7FF, 0)])
    assert not bus.inject(0x121, b"\x00")
    assert not bus.inject(0x120, b"\x00", FLAG_EXT_ID)
    assert bus.inject(0x120, b"\x01")
    assert bus.inject(0x120, b"\x02")
    assert not bus.inject(0x120, b"\x03")
    assert bus.rx_overruns == 1
    frame = Frame()
    assert bus.recv(frame) and frame.data[0] == 1
    assert bus.recv(frame) and frame.data[0] == 2
    assert not bus.recv(frame)


def test_loopback_raises_like_machine_can_while_bus_off() -> None:
    bus = LoopbackBus()
    bus.bus_state = STATE_BUS_OFF
    with pytest.raises(OSError):
        bus.send(0x100, b"", 0)
    bus.restart()
    assert bus.send(0x100, b"", 0)


# ---- machine.CAN ----


class FakeMachineCan:
    """machine.CAN as documented for MicroPython 1.28 (constants with their own values)."""

    FLAG_RTR = 0x10
    FLAG_EXT_ID = 0x20
    FLAG_UNORDERED = 0x40
    STATE_STOPPED, STATE_ACTIVE, STATE_WARNING, STATE_PASSIVE, STATE_BUS_OFF = 10, 11, 12, 13, 14
    TX_QUEUE_LEN = 2

    def __init__(self) -> None:
        self.queue: list[tuple[int, bytes, int]] = []
        self.rx: list[tuple[int, bytes, int, int]] = []
        self.filters: Any = "unset"
        self.hw_state = self.STATE_ACTIVE
        self.restarts = 0

    def send(self, can_id: int, data: Any, flags: int = 0) -> int | None:
        if self.hw_state == self.STATE_BUS_OFF:
            raise OSError(5)
        if len(self.queue) == self.TX_QUEUE_LEN:
            return None
        self.queue.append((can_id, bytes(data), flags))
        return len(self.queue) - 1

    def recv(self, arg: list[Any]) -> list[Any] | None:
        if not self.rx:
            return None
        can_id, data, flags, errs = self.rx.pop(0)
        base = arg[1].obj
        base[: len(data)] = data  # the real driver resizes the memoryview in place
        arg[0], arg[1], arg[2], arg[3] = can_id, memoryview(base)[: len(data)], flags, errs
        return arg

    def set_filters(self, filters: Any) -> None:
        self.filters = filters

    def state(self) -> int:
        return self.hw_state

    def restart(self) -> None:
        self.restarts += 1
        self.hw_state = self.STATE_ACTIVE


def test_machine_can_send_maps_flags_and_reports_a_full_queue() -> None:
    hw = FakeMachineCan()
    bus = MachineCanBus(hw)
    assert bus.send(0x1ABCDE, b"\x01", FLAG_EXT_ID | FLAG_UNORDERED)
    assert bus.send(0x100, b"", FLAG_RTR)
    assert not bus.send(0x101, b"", 0)
    assert hw.queue == [(0x1ABCDE, b"\x01", 0x60), (0x100, b"", 0x10)]


def test_machine_can_receive_and_state() -> None:
    hw = FakeMachineCan()
    bus = MachineCanBus(hw)
    hw.rx.append((0x120, b"\x01\x02\x03", 0x20, 1))
    frame = Frame()
    assert bus.recv(frame)
    assert (frame.id, frame.flags, frame.dlc, bytes(frame.data[:3])) == (
        0x120,
        FLAG_EXT_ID,
        3,
        b"\x01\x02\x03",
    )
    assert bus.rx_errors == 1
    assert not bus.recv(frame)
    for hw_state, state in (
        (hw.STATE_ACTIVE, STATE_ACTIVE),
        (hw.STATE_WARNING, STATE_WARNING),
        (hw.STATE_PASSIVE, STATE_PASSIVE),
        (hw.STATE_BUS_OFF, STATE_BUS_OFF),
    ):
        hw.hw_state = hw_state
        assert bus.state() == state
    bus.restart()
    assert hw.restarts == 1
    bus.set_filters([(0x113, 0x7FF, 0), (0x18FF0000, 0x1FFF0000, FLAG_EXT_ID)])
    assert hw.filters == [(0x113, 0x7FF, 0), (0x18FF0000, 0x1FFF0000, 0x20)]


# ---- pyb.CAN ----


class FakePybCan:
    """pyb.CAN (bxCAN) as of MicroPython 1.20+: 5-element recv list, extframe keywords."""

    STOPPED, ERROR_ACTIVE, ERROR_WARNING, ERROR_PASSIVE, BUS_OFF = 0, 1, 2, 3, 4
    LIST16, MASK16, LIST32, MASK32 = 0, 1, 2, 3

    def __init__(self) -> None:
        self.mailboxes: list[tuple[int, bytes, bool]] = []
        self.fifos: list[list[tuple[int, bool, bool, bytes]]] = [[], []]
        self.banks: dict[int, tuple[int, int, tuple[int, ...], bool]] = {}
        self.hw_state = self.ERROR_ACTIVE
        self.raised = 0  # exceptions raised into the driver (each allocates on MicroPython)
        self.tec = self.rec = 0

    def info(self, lst: list[int]) -> list[int]:
        lst[:8] = [self.tec, self.rec, 0, 0, 0, len(self.mailboxes), *map(len, self.fifos)]
        return lst

    def deliver(self, can_id: int, data: bytes) -> None:
        """A standard frame through the filter banks into its bank's FIFO (3 deep; a full
        FIFO overwrites its newest frame, as bxCAN does with FIFO locking off)."""
        for mode, fifo, params, ext in self.banks.values():
            if ext or mode != self.MASK16:
                continue
            for fid, mask in ((params[0], params[1]), (params[2], params[3])):
                if can_id & mask == fid & mask:
                    queue = self.fifos[fifo]
                    if len(queue) == 3:
                        queue.pop()
                    queue.append((can_id, False, False, data))
                    return

    def send(self, data: Any, can_id: int, *, timeout: int = 0, extframe: bool = False) -> None:
        assert timeout == 0
        if len(self.mailboxes) == 3:
            self.raised += 1
            raise OSError(110)
        self.mailboxes.append((can_id, bytes(data), extframe))

    def any(self, fifo: int) -> bool:
        return bool(self.fifos[fifo])

    def recv(self, fifo: int, lst: list[Any], *, timeout: int = 5000) -> list[Any]:
        can_id, ext, rtr, data = self.fifos[fifo].pop(0)
        base = lst[4].obj
        base[: len(data)] = data
        lst[0], lst[1], lst[2], lst[3], lst[4] = can_id, ext, rtr, 0, memoryview(base)[: len(data)]
        return lst

    def setfilter(
        self, bank: int, mode: int, fifo: int, params: tuple[int, ...], *, extframe: bool = False
    ) -> None:
        self.banks[bank] = (mode, fifo, params, extframe)

    def state(self) -> int:
        return self.hw_state

    def restart(self) -> None:
        self.hw_state = self.ERROR_ACTIVE


def test_pyb_can_busy_mailboxes_are_a_false_return() -> None:
    hw = FakePybCan()
    bus = PybCanBus(hw)
    for k in range(3):
        assert bus.send(0x100 + k, bytes([k]), 0)
    assert not bus.send(0x103, b"", 0)
    hw.mailboxes.clear()
    assert bus.send(0x1ABCDE, b"\x09", FLAG_EXT_ID)
    assert hw.mailboxes == [(0x1ABCDE, b"\x09", True)]


def test_pyb_can_receives_from_both_fifos() -> None:
    hw = FakePybCan()
    bus = PybCanBus(hw)
    hw.fifos[1].append((0x120, False, False, b"\x05\x06"))
    hw.fifos[0].append((0x18FF50E5, True, False, b"\x07"))
    frame = Frame()
    assert bus.recv(frame)
    assert (frame.id, frame.flags, frame.dlc) == (0x18FF50E5, FLAG_EXT_ID, 1)
    assert bus.recv(frame)
    assert (frame.id, frame.flags, bytes(frame.data[:2])) == (0x120, 0, b"\x05\x06")
    assert not bus.recv(frame)


def test_pyb_can_filters_use_16_bit_mask_banks() -> None:
    hw = FakePybCan()
    bus = PybCanBus(hw)
    bus.set_filters([(0x113, 0x7FF, 0), (0x120, 0x7FF, 0), (0x163, 0x7FF, 0)])
    assert hw.banks == {
        0: (hw.MASK16, 0, (0x113, 0x7FF, 0x120, 0x7FF), False),
        1: (hw.MASK16, 1, (0x163, 0x7FF, 0x163, 0x7FF), False),
    }
    hw.banks.clear()
    bus.set_filters(None)
    assert hw.banks[0] == (hw.MASK16, 0, (0, 0, 0, 0), False)
    assert hw.banks[1] == (hw.MASK16, 1, (0, 0, 0, 0), True)


def test_pyb_can_state_and_restart() -> None:
    hw = FakePybCan()
    bus = PybCanBus(hw)
    hw.hw_state = hw.BUS_OFF
    assert bus.state() == STATE_BUS_OFF
    bus.restart()
    assert bus.state() == STATE_ACTIVE


# ---- python-can ----


def test_node_talks_through_python_can_virtual(moat_db: Any) -> None:
    """A node on a python-can virtual bus and a 'gateway' on another end of the channel."""
    channel = "bms-test-node"
    with (
        can.Bus(interface="virtual", channel=channel) as node_side,
        can.Bus(interface="virtual", channel=channel) as gateway,
    ):
        hw = SimHardware(cells=16, temps=4)
        node = Node(load_config({"node_id": 2}), hw, PythonCanBus(node_side))
        peer = GatewayPeer(moat_db, LoopbackBus(), 2)
        received = []
        for k in range(60):
            now = k * 50
            if now % 500 == 0:
                frame_id, buf = peer.sealed("GatewayHeartbeat", {"GatewayState": "Running"})
                gateway.send(can.Message(arbitration_id=frame_id, data=buf, is_extended_id=False))
            if now >= 2000 and now % 200 == 0:
                frame_id, buf = peer.sealed("RelayCommand", {"Request": "Close", "ResetFault": 0})
                gateway.send(can.Message(arbitration_id=frame_id, data=buf, is_extended_id=False))
            node.step(now)
            while (msg := gateway.recv(timeout=0)) is not None:
                received.append(msg)
        assert node.state == ACTIVE and hw.relay_drive
        names = {moat_db.get_message_by_frame_id(m.arbitration_id & 0x7F0).name for m in received}
        assert {"NodeState", "PackStatus", "CellVoltages", "NodeInfo"} <= names
        assert all(m.arbitration_id & 0xF == 2 for m in received)


def test_python_can_full_queue_is_a_false_return() -> None:
    class FullBus(can.BusABC):
        def __init__(self, channel: str) -> None:
            super().__init__(channel)

        def send(self, msg: can.Message, timeout: float | None = None) -> None:
            raise can.CanOperationError("No buffer space available")

        def _recv_internal(self, timeout: float | None) -> tuple[None, bool]:
            return None, False

    with FullBus(channel="x") as raw:
        bus = PythonCanBus(raw)
        assert not bus.send(0x100, b"\x00", 0)
        assert not bus.recv(Frame())
        assert bus.state() == STATE_ACTIVE
        bus.restart()


def test_python_can_filters_skip_other_frames_without_stalling() -> None:
    # With python-can's own software filtering, recv(timeout=0) returns None after one
    # non-matching frame: a node on a busy virtual bus then never reached the gateway's
    # heartbeat behind the other nodes' frames. The backend filters itself.
    with (
        can.Bus(interface="virtual", channel="filters") as node_side,
        can.Bus(interface="virtual", channel="filters") as other,
    ):
        bus = PythonCanBus(node_side)
        bus.set_filters([(0x120, 0x7FF, 0)])
        for i in range(50):
            other.send(can.Message(arbitration_id=0x101, data=bytes([i]), is_extended_id=False))
        other.send(can.Message(arbitration_id=0x120, data=b"\x07", is_extended_id=False))
        frame = Frame()
        assert bus.recv(frame)
        assert (frame.id, frame.data[0]) == (0x120, 7)
        assert not bus.recv(frame)
