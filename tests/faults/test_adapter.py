"""The CAN adapter failing on send: python-can raising while the gateway transmits.

Receiving failures (the adapter vanishing and returning, bus-off) are proven with real
reader threads in tests/gateway/test_canport.py; these are the transmit side, where a
failure must be counted and must never reach the tick that sent the frame.
"""

from __future__ import annotations

import can

from gateway.contracts.frame import Frame
from gateway.record.counters import BusCounters
from gateway.runtime.canport import GatewayCanPort


class RaisingBus:
    """Stands in for an open python-can bus whose send raises `error`."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.sent: list[can.Message] = []

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        if self.error is not None:
            raise self.error
        self.sent.append(msg)


def port_with(bus: RaisingBus) -> tuple[GatewayCanPort, BusCounters]:
    counters = BusCounters()
    port = GatewayCanPort("battery", {}, counters)
    port.bus = bus  # type: ignore[assignment]
    return port, counters


def test_a_full_transmit_queue_drops_the_frame_and_keeps_the_bus() -> None:
    bus = RaisingBus(can.CanOperationError("Transmit buffer full"))
    port, counters = port_with(bus)
    for _ in range(100):
        assert port.send(Frame(0x351, bytes(8))) is False
    assert counters.send_failed == 100 and counters.sent == 0
    assert port.bus is bus  # not a reason to reopen
    bus.error = None
    assert port.send(Frame(0x351, bytes(8)))
    assert counters.sent == 1 and bus.sent[0].arbitration_id == 0x351


def test_an_adapter_gone_on_send_is_counted_and_marked_for_reopening() -> None:
    for error in (can.CanError("device gone"), OSError(19, "No such device"), ValueError("closed")):
        port, counters = port_with(RaisingBus(error))
        assert port.send(Frame(0x120, bytes(8))) is False
        assert counters.send_failed == 1
        assert port.last_error == str(error)
