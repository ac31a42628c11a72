"""Gateway commands: end-to-end checks, rejection counting, reset edges, loss of the gateway."""

from __future__ import annotations

from collections.abc import Callable

from bms import codec, e2e, protect
from bms.can import FLAG_RTR
from bms.lifecycle import ACTIVE, STANDBY, TRIPPED
from tests.firmware.harness import Bench

NODE = 5
RELAY_ID = 0x110 | NODE


def standby(bench: Callable[..., Bench], honour_filters: bool = True) -> Bench:
    b = bench(settings={"node_id": NODE}, honour_filters=honour_filters)
    b.settle()
    assert b.node.state == STANDBY
    return b


def rejected(b: Bench) -> int:
    b.run(100)  # PackStatus goes out every 100 ms
    return int(b.last("PackStatus")["RejectedCommands"])


def test_a_valid_close_request_closes_the_relay(bench: Callable[..., Bench]) -> None:
    b = standby(bench)
    assert b.gateway.relay("Close")
    b.run(100)
    assert b.node.state == ACTIVE and b.hw.relay_drive
    state = b.last("NodeState")
    assert state["RelayRequest"] == "Close"
    assert state["GatewayLink"] == "Ok"
    assert rejected(b) == 0


def test_bad_crc_is_rejected_and_counted(bench: Callable[..., Bench]) -> None:
    b = standby(bench)
    frame_id, buf = b.gateway.sealed("RelayCommand", {"Request": "Close", "ResetFault": 0})
    buf[0] ^= 0x01
    b.bus.inject(frame_id, buf)
    b.run(500)
    assert b.node.state == STANDBY
    assert rejected(b) == 1


def test_payload_corruption_is_rejected(bench: Callable[..., Bench]) -> None:
    b = standby(bench)
    frame_id, buf = b.gateway.sealed("RelayCommand", {"Request": "Open", "ResetFault": 0})
    buf[1] ^= 0x30  # Open (01) becomes Close (10) on the wire
    b.bus.inject(frame_id, buf)
    b.run(500)
    assert b.node.state == STANDBY
    assert rejected(b) == 1


def test_repeated_counter_is_rejected(bench: Callable[..., Bench]) -> None:
    b = standby(bench)
    frame_id, buf = b.gateway.sealed("RelayCommand", {"Request": "Open", "ResetFault": 0})
    b.bus.inject(frame_id, buf)
    b.run(50)
    frame_id, buf = b.gateway.sealed(
        "RelayCommand", {"Request": "Close", "ResetFault": 0}, counter=b.gateway.counters[frame_id]
    )
    b.bus.inject(frame_id, buf)  # a stuck sender: same counter, valid CRC
    b.run(500)
    assert b.node.state == STANDBY
    assert rejected(b) == 1


def test_jumping_counter_is_rejected_until_it_runs_in_sequence(
    bench: Callable[..., Bench],
) -> None:
    b = standby(bench)
    b.gateway.relay("Open")  # counter 0
    b.run(50)
    b.gateway.counters[RELAY_ID] = 7
    b.gateway.relay("Close")  # counter 8: jumped
    b.run(100)
    assert b.node.state == STANDBY
    assert rejected(b) == 1
    b.gateway.relay("Close")  # counter 9 follows 8: in sequence again
    b.run(100)
    assert b.node.state == ACTIVE


def test_wrong_length_is_rejected(bench: Callable[..., Bench]) -> None:
    b = standby(bench)
    frame_id, buf = b.gateway.sealed("RelayCommand", {"Request": "Close", "ResetFault": 0})
    b.bus.inject(frame_id, buf[:7])
    b.run(500)
    assert b.node.state == STANDBY
    assert rejected(b) == 1


def test_remote_request_on_a_command_id_is_rejected(bench: Callable[..., Bench]) -> None:
    b = standby(bench)
    b.bus.inject(RELAY_ID, bytes(8), FLAG_RTR)
    b.run(200)
    assert rejected(b) == 1


def test_command_sealed_for_another_node_is_rejected(bench: Callable[..., Bench]) -> None:
    """A frame built for node 3 and put on node 5's identifier fails the CRC."""
    b = standby(bench)
    _, buf = b.gateway.sealed("RelayCommand", {"Request": "Close", "ResetFault": 0}, node_id=3)
    b.bus.inject(RELAY_ID, buf)
    b.run(500)
    assert b.node.state == STANDBY
    assert rejected(b) == 1


def test_other_nodes_commands_are_ignored_not_counted(bench: Callable[..., Bench]) -> None:
    """On a shared bus without hardware filters the node sees every node's commands."""
    b = standby(bench, honour_filters=False)
    for node in range(16):
        if node != NODE:
            frame_id, buf = b.gateway.sealed(
                "RelayCommand", {"Request": "Close", "ResetFault": 0}, node_id=node
            )
            b.bus.inject(frame_id, buf)
    b.run(500)
    assert b.node.state == STANDBY
    assert rejected(b) == 0


def test_hardware_filters_pass_only_this_nodes_identifiers(bench: Callable[..., Bench]) -> None:
    b = standby(bench)
    assert sorted(f[0] for f in b.bus.filters) == [0x115, 0x120, 0x165]
    _, buf = b.gateway.sealed("RelayCommand", {"Request": "Close", "ResetFault": 0}, node_id=4)
    assert not b.bus.inject(0x114, buf)


def test_undefined_request_value_is_rejected(bench: Callable[..., Bench]) -> None:
    b = standby(bench)
    buf = bytearray(8)
    buf[1] = 0x30  # Request = 3
    e2e.seal(RELAY_ID, buf, 0)
    b.bus.inject(RELAY_ID, buf)
    b.run(200)
    assert b.node.relay_request == codec.RELAY_COMMAND_REQUEST_NONE
    assert rejected(b) == 1


def test_rejected_commands_wrap_at_255(bench: Callable[..., Bench]) -> None:
    b = standby(bench)
    frame_id, buf = b.gateway.sealed("RelayCommand", {"Request": "Close", "ResetFault": 0})
    buf[0] ^= 0xFF
    for _ in range(258):
        b.bus.inject(frame_id, buf)
        b.step()
    assert rejected(b) == 2


def test_bad_heartbeat_does_not_keep_the_link(bench: Callable[..., Bench]) -> None:
    b = bench(heartbeat=False, request="Close")
    b.gateway.heartbeat()
    b.settle()
    assert b.node.state == ACTIVE
    t0 = b.now
    while b.now < t0 + 8000:
        if b.now % 500 == 0:
            frame_id, buf = b.gateway.sealed("GatewayHeartbeat", {"GatewayState": "Running"})
            buf[7] ^= 0x04
            b.bus.inject(frame_id, buf)
        b.step()
    assert b.node.gateway_link == codec.NODE_STATE_GATEWAY_LINK_LOST
    assert b.node.warnings & protect.COMM_LOSS


def test_reset_acts_once_per_rising_edge(bench: Callable[..., Bench]) -> None:
    b = bench(request="Close")
    b.settle()
    b.set_cell(0, 3700)
    b.run(500)
    assert b.node.state == TRIPPED
    b.reset = 1  # reset while the fault is still active: ignored
    b.run(1000)
    assert b.node.state == TRIPPED
    b.set_cell(0, 3300)
    b.run(1000)  # the fault clears; ResetFault is still 1: no new edge
    assert b.node.state == TRIPPED
    assert b.last("NodeState")["TripCleared"] == "Yes"
    b.reset = 0
    b.run(400)
    b.reset = 1
    b.run(400)
    assert b.node.state == ACTIVE
    b.reset = 0
    b.run(200)
    b.set_cell(0, 3700)  # a second trip
    b.run(500)
    b.set_cell(0, 3300)
    b.run(1000)
    assert b.node.state == TRIPPED  # the earlier edge does not carry over


def test_comm_loss_keeps_the_relay_by_default(bench: Callable[..., Bench]) -> None:
    b = bench(request="Close")
    b.settle()
    assert b.node.state == ACTIVE
    b.heartbeat = False
    b.request = None
    lost_at = b.now
    b.run_until(lambda: bool(b.node.warnings & protect.COMM_LOSS), 10_000)
    assert b.now - lost_at >= 5000  # the default gateway timeout
    b.run(1000)
    assert b.node.state == ACTIVE and b.hw.relay_drive
    assert not b.node.faults
    state = b.last("NodeState")
    assert state["GatewayLink"] == "Lost"
    assert state["WarnCommLoss"] == "Active"
    assert state["FaultCommLoss"] == "Clear"
    assert state["RelayRequest"] == "None"  # the held request is forgotten with the link


def test_comm_loss_opens_the_relay_when_configured(bench: Callable[..., Bench]) -> None:
    b = bench(request="Close", settings={"comm_loss_action": "open"})
    b.settle()
    assert b.node.state == ACTIVE
    b.heartbeat = False
    b.request = None
    b.run(5500)
    assert b.node.state == TRIPPED and not b.hw.relay_drive
    assert b.node.faults == protect.COMM_LOSS
    b.heartbeat = True  # the gateway is back
    b.run(600)
    assert not b.node.faults
    assert b.last("NodeState")["TripCleared"] == "Yes"
    assert b.node.state == TRIPPED
    b.request, b.reset = "Close", 1
    b.run(400)
    assert b.node.state == ACTIVE


def test_gateway_never_seen(bench: Callable[..., Bench]) -> None:
    b = bench(heartbeat=False)
    b.run(4900)
    assert not b.node.warnings & protect.COMM_LOSS
    b.run(300)
    assert b.node.warnings & protect.COMM_LOSS
    assert b.last("NodeState")["GatewayLink"] == "NeverSeen"
    b.gateway.relay("Close")
    b.run(200)
    assert b.node.state == STANDBY  # no close without a live gateway


def test_restarted_gateway_is_accepted_at_once_after_loss(bench: Callable[..., Bench]) -> None:
    b = bench(request="Close")
    b.settle()
    b.heartbeat = False
    b.request = None
    b.run(6000)
    b.gateway.counters.clear()  # the gateway restarts its counters
    b.gateway.counters[0x120] = 8
    b.heartbeat = True
    b.run(600)
    assert b.node.gateway_link == codec.NODE_STATE_GATEWAY_LINK_OK
    assert rejected(b) == 0
