"""GatewayCanPort: python-can bus with reconnect, non-blocking send and counters."""

from __future__ import annotations

import anyio
import can
import pytest

from gateway.contracts.frame import Frame
from gateway.record.counters import BusCounters
from gateway.runtime.canport import CAN_ERR_BUSOFF, GatewayCanPort


class FlakyBus(can.BusABC):
    """A python-can virtual bus whose adapter can vanish: recv/send raise while `gone`."""

    gone = False
    opened = 0
    fail_opens = 0

    def __init__(self, channel: str = "flaky", **kwargs) -> None:
        if FlakyBus.fail_opens > 0:
            FlakyBus.fail_opens -= 1
            raise can.CanInitializationError("adapter not found")
        FlakyBus.opened += 1
        self.inner = can.Bus(interface="virtual", channel=channel)
        self.channel_info = "flaky"
        super().__init__(channel=channel)

    def _recv_internal(self, timeout):
        if FlakyBus.gone:
            raise can.CanOperationError("adapter disappeared")
        return self.inner.recv(timeout), False

    def send(self, msg, timeout=None) -> None:
        if FlakyBus.gone:
            raise can.CanOperationError("adapter disappeared")
        self.inner.send(msg, timeout)

    def shutdown(self) -> None:
        self.inner.shutdown()
        super().shutdown()


@pytest.fixture(autouse=True)
def reset_flaky():
    FlakyBus.gone = False
    FlakyBus.opened = 0
    FlakyBus.fail_opens = 0


async def wait_for(condition, what: str) -> None:
    with anyio.fail_after(5, shield=False):
        while not condition():
            await anyio.sleep(0.005)


@pytest.mark.anyio
async def test_frames_arrive_and_sends_are_counted() -> None:
    counters = BusCounters()
    port = GatewayCanPort("battery", {"channel": "t1"}, counters, open_bus=FlakyBus)
    peer = can.Bus(interface="virtual", channel="t1")
    got: list[Frame] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(port.run, got.extend)
        await wait_for(lambda: port.connected, "open")
        peer.send(can.Message(arbitration_id=0x130, data=bytes(8), is_extended_id=False))
        await wait_for(lambda: got, "frame")
        assert port.send(Frame(0x351, bytes(8)))
        echoed = peer.recv(1.0)
        tg.cancel_scope.cancel()
    peer.shutdown()
    assert got[0] == Frame(0x130, bytes(8))
    assert echoed is not None and echoed.arbitration_id == 0x351
    assert counters.sent == 1


@pytest.mark.anyio
async def test_adapter_that_disappears_is_reopened_with_back_off() -> None:
    counters = BusCounters()
    port = GatewayCanPort(
        "battery",
        {"channel": "t2"},
        counters,
        open_bus=FlakyBus,
        reconnect_min=0.01,
        reconnect_max=0.05,
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(port.run, lambda batch: None)
        await wait_for(lambda: port.connected, "open")
        FlakyBus.gone = True
        FlakyBus.fail_opens = 2  # the adapter is away for two open attempts
        await wait_for(lambda: not port.connected, "noticed")
        assert not port.send(Frame(0x351, bytes(8)))  # never blocks, never raises
        FlakyBus.gone = False
        await wait_for(lambda: port.connected, "reopened")
        tg.cancel_scope.cancel()
    assert counters.reconnects >= 1
    assert counters.send_failed >= 1
    assert FlakyBus.opened >= 2
    assert "adapter" in port.last_error


@pytest.mark.anyio
async def test_bus_off_error_frame_reopens_the_bus() -> None:
    counters = BusCounters()
    port = GatewayCanPort(
        "battery",
        {"channel": "t3"},
        counters,
        open_bus=FlakyBus,
        reconnect_min=0.01,
        reconnect_max=0.05,
    )
    peer = can.Bus(interface="virtual", channel="t3")
    async with anyio.create_task_group() as tg:
        tg.start_soon(port.run, lambda batch: None)
        await wait_for(lambda: port.connected, "open")
        peer.send(can.Message(arbitration_id=CAN_ERR_BUSOFF, is_error_frame=True, data=bytes(8)))
        await wait_for(lambda: port.bus_off == 1 and port.connected and counters.reconnects, "")
        tg.cancel_scope.cancel()
    peer.shutdown()
    assert counters.reconnects == 1


def test_send_without_a_bus_is_counted_not_raised() -> None:
    counters = BusCounters()
    port = GatewayCanPort("inverter", {}, counters)
    assert not port.send(Frame(0x351, bytes(8)))
    assert counters.send_failed == 1
