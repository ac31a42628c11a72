"""Protected node commands: CRC, counters, periods, reset edge, balance groups."""

from __future__ import annotations

import json

import cantools
import pytest

from bms import e2e
from gateway.contracts.decision import BalanceRequest, RelayAction, RelayRequest
from gateway.sources.moat_nodes.commands import (
    BALANCE_PERIOD,
    HEARTBEAT_PERIOD,
    RELAY_PERIOD,
    NodeCommander,
)
from tests.common import DBC_DIR

DB = cantools.database.load_file(str(DBC_DIR / "moat_bms.dbc"))


def decode(frame):
    fid, data = frame.id, frame.data
    return DB.get_message_by_frame_id(fid & 0x7F0 if fid & 0x7F0 != 0x120 else fid).decode(
        data, decode_choices=False
    )


def by_id(frames, fid):
    return [f for f in frames if f.id == fid]


def test_first_call_sends_heartbeat_and_every_command_with_valid_crc() -> None:
    cmd = NodeCommander({0: 16, 3: 16})
    frames = cmd.due_frames(0.0)
    assert sorted(f.id for f in frames) == [0x110, 0x113, 0x120, 0x160, 0x163]
    for f in frames:
        assert len(f.data) == 8
        assert e2e.crc_ok(f.id, f.data), hex(f.id)


def test_counters_advance_per_frame_id_and_wrap() -> None:
    cmd = NodeCommander({0: 16})
    counters = []
    t = 0.0
    for _ in range(20):
        counters += [decode(f)["Counter"] for f in by_id(cmd.due_frames(t), 0x120)]
        t += HEARTBEAT_PERIOD
    assert counters == [i % 16 for i in range(20)]
    check = e2e.AliveCheck(max_delta=1)
    assert all(check.check(c) == e2e.ACCEPT for c in counters)


def test_commands_repeat_at_their_dbc_periods() -> None:
    cmd = NodeCommander({0: 16})
    cmd.due_frames(0.0)
    assert cmd.due_frames(RELAY_PERIOD / 2) == []
    assert [f.id for f in cmd.due_frames(RELAY_PERIOD)] == [0x110]
    later = cmd.due_frames(BALANCE_PERIOD)
    assert {f.id for f in later} == {0x110, 0x120, 0x160}


def test_relay_change_goes_out_at_once_and_reset_is_held_for_a_few_frames() -> None:
    cmd = NodeCommander({2: 16})
    cmd.due_frames(0.0)
    cmd.request_relay(RelayRequest(2, RelayAction.CLOSE, reset_fault=True))
    resets = []
    t = 0.01
    for _ in range(6):
        for f in by_id(cmd.due_frames(t), 0x112):
            msg = decode(f)
            assert msg["Request"] == int(RelayAction.CLOSE)
            resets.append(msg["ResetFault"])
        t += RELAY_PERIOD
    assert resets == [1, 1, 1, 0, 0, 0]


def test_balance_bits_reach_the_right_groups_and_cells() -> None:
    cmd = NodeCommander({1: 48})
    cells = (1 << 0) | (1 << 17) | (1 << 40)  # cells 1, 18, 41
    cmd.request_balance(BalanceRequest(1, cells, 3.35))
    frames = by_id(cmd.due_frames(0.0), 0x161)
    assert len(frames) == 2
    g0, g1 = (decode(f) for f in frames)
    assert g0["CellGroup"] == 0 and g0["BleedCells01To16"] == 1 and g0["BleedCells17To32"] == 2
    assert g1["CellGroup"] == 1 and g1["BleedCells33To48"] == 1 << 8
    assert g0["BleedFloorVoltage"] == 3.35


def test_a_16_cell_node_gets_one_balance_frame() -> None:
    cmd = NodeCommander({0: 16})
    assert len(by_id(cmd.due_frames(0.0), 0x160)) == 1


def test_keyed_relay_commands_are_accepted_by_a_keyed_node_and_forgeries_are_not() -> None:
    """The gateway's Mac and Freshness against the node firmware's own checks (bms.auth)."""
    from bms.can import Frame  # noqa: PLC0415
    from bms.commands import Commands  # noqa: PLC0415

    key = bytes(range(16))
    cmd = NodeCommander({3: 16}, key)
    node = Commands(3, 5000, key)
    cmd.request_relay(RelayRequest(3, RelayAction.CLOSE))
    frame = Frame()
    for t in range(3):  # the alive counter synchronises on the first frames
        sent = cmd.relay_frame(3, cmd._nodes[3])
        frame.set(sent.id, sent.data, 8, 0)
        node.accept(frame, 50 * t, None)
    assert node.request == 2 and node.mac_failures == 0
    # A forger with the wrong key, a newer freshness and a valid CRC and counter: rejected.
    node.request = 0
    forged = NodeCommander({3: 16}, bytes(16))
    forged._counters = dict(cmd._counters)
    forged._nodes[3].relay = RelayAction.CLOSE
    forged._nodes[3].freshness = cmd._nodes[3].freshness + 10
    sent = forged.relay_frame(3, forged._nodes[3])
    frame.set(sent.id, sent.data, 8, 0)
    node.accept(frame, 50, None)
    assert node.request == 0 and node.mac_failures == 1
    # The genuine gateway goes on once the lockout after a wrong Mac is over (its next
    # counter repeats the forger's: sent twice).
    from bms.commands import MAC_LOCKOUT_MS  # noqa: PLC0415

    for t in (100 + MAC_LOCKOUT_MS, 150 + MAC_LOCKOUT_MS):
        sent = cmd.relay_frame(3, cmd._nodes[3])
        frame.set(sent.id, sent.data, 8, 0)
        node.accept(frame, t, None)
    assert node.request == 2
    # Replaying that genuine frame later: its freshness is no longer new.
    node.request = 0
    node._relay_alive.reset()
    node.accept(frame, 200 + MAC_LOCKOUT_MS, None)
    assert node.request == 0


def test_a_gateway_restarted_with_its_clock_behind_still_closes_a_keyed_node() -> None:
    """Review finding: Freshness came from the clock alone, so a gateway restarted an hour
    behind (a Pi without a real-time clock) had its Close refused until the clock caught up.
    The last Freshness sent is kept in the state file and resumed past it."""
    from bms.can import Frame as NodeFrame  # noqa: PLC0415
    from bms.commands import Commands  # noqa: PLC0415

    key = bytes(range(16))
    node = Commands(3, 5000, key)
    frame = NodeFrame()
    t0 = 1_800_000_000.0

    def close_from(cmd: NodeCommander, now: float, frames: int) -> int:
        node.request = 0
        for k in range(frames):
            sent = cmd.relay_frame(3, cmd._nodes[3], now + 0.2 * k)
            frame.set(sent.id, sent.data, 8, 0)
            node.accept(frame, int(now * 1000) + 200 * k, None)
        return node.request

    before = NodeCommander({3: 16}, key)
    before.request_relay(RelayRequest(3, RelayAction.CLOSE))
    assert close_from(before, t0, 3) == RelayAction.CLOSE
    saved = json.loads(json.dumps(before.saved()))

    behind = t0 - 3600.0
    forgetful = NodeCommander({3: 16}, key)
    forgetful._counters = dict(before._counters)
    forgetful.request_relay(RelayRequest(3, RelayAction.CLOSE))
    assert close_from(forgetful, behind, 3) == 0  # its Freshness looks old: refused

    resumed = NodeCommander({3: 16}, key)
    resumed._counters = dict(forgetful._counters)
    resumed.restore(saved, skip=1200)
    resumed.request_relay(RelayRequest(3, RelayAction.CLOSE))
    assert close_from(resumed, behind, 3) == RelayAction.CLOSE


def test_saved_commands_that_do_not_fit_name_the_key() -> None:
    cmd = NodeCommander({3: 16})
    with pytest.raises(ValueError, match="commands state unusable: freshness"):
        cmd.restore({"version": 1, "freshness": {"3": "soon"}}, skip=0)
