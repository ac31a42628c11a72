"""Relay policy: close only when safe, the parallel voltage window, user actions, opening."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from gateway.contracts.decision import RelayAction, RelayRequest
from gateway.contracts.snapshot import BatterySnapshot, NodeSnapshot, NodeState, ProtectionKind
from gateway.strategy.relays import RelayPolicy
from gateway.strategy.settings import RelaySettings
from tests.strategy.battery import node, snapshot

OPEN, CLOSE, NONE = RelayAction.OPEN, RelayAction.CLOSE, RelayAction.NONE


def policy(**cfg: object) -> RelayPolicy:
    return RelayPolicy(RelaySettings.model_validate(cfg))


def standby(n: int, cell_v: float = 3.3, **kw: object) -> NodeSnapshot:
    kw.setdefault("state", NodeState.STANDBY)
    kw.setdefault("relay_closed", False)
    return node(n, [cell_v] * 16, **kw)  # type: ignore[arg-type]


def actions(requests: tuple[RelayRequest, ...]) -> list[RelayAction]:
    return [r.action for r in requests]


def battery(*reports: NodeSnapshot, strings: list[list[int]] | None = None) -> BatterySnapshot:
    cells = [[r.voltage / 16 if r.present else 3.3] * 16 for r in reports]
    return snapshot(cells, nodes={r.node: r for r in reports}, strings=strings)


def test_a_healthy_node_is_asked_to_close_and_kept_closed() -> None:
    p = policy()
    assert actions(p.step(battery(standby(0)), 0.0, 1.0)) == [CLOSE]
    assert actions(p.step(battery(node(0, [3.3] * 16)), 0.0, 1.0)) == [CLOSE]


@pytest.mark.parametrize(
    ("report", "reason"),
    [
        (standby(0, faults=frozenset({ProtectionKind.CELL_OVER_VOLTAGE})), "fault"),
        (standby(0, state=NodeState.TRIPPED), "node 0 tripped"),
        (standby(0, state=NodeState.TRIPPED, trip_cleared=True), "waiting for a reset"),
        (standby(0, state=NodeState.INIT), "node 0 init"),
        (standby(0, state=NodeState.CONFIG_ERROR), "node 0 config_error"),
    ],
)
def test_never_close_a_faulty_tripped_or_unready_node(report: NodeSnapshot, reason: str) -> None:
    (req,) = policy().step(battery(report), 0.0, 1.0)
    assert req.action is NONE
    assert reason in req.reason


def test_a_reset_closes_a_cleared_trip_and_is_sent_for_one_step() -> None:
    p = policy()
    tripped = standby(0, state=NodeState.TRIPPED, trip_cleared=True)
    p.reset(0)
    (req,) = p.step(battery(tripped), 0.0, 1.0)
    assert (req.action, req.reset_fault) == (CLOSE, True)
    (req,) = p.step(battery(tripped), 0.0, 1.0)
    assert (req.action, req.reset_fault) == (NONE, False)


def test_a_reset_does_not_close_while_the_trip_has_not_cleared() -> None:
    p = policy()
    p.reset(0)
    (req,) = p.step(battery(standby(0, state=NodeState.TRIPPED)), 0.0, 1.0)
    assert (req.action, req.reset_fault) == (NONE, True)


def test_user_open_holds_until_released() -> None:
    p = policy()
    p.request(0, OPEN)
    for _ in range(3):
        assert actions(p.step(battery(node(0, [3.3] * 16)), 0.0, 1.0)) == [OPEN]
    p.request(0, NONE)
    assert actions(p.step(battery(standby(0)), 0.0, 1.0)) == [CLOSE]


def test_without_auto_close_only_a_user_close_closes() -> None:
    p = policy(auto_close=False)
    assert actions(p.step(battery(standby(0)), 0.0, 1.0)) == [NONE]
    p.request(0, CLOSE)
    assert actions(p.step(battery(standby(0)), 0.0, 1.0)) == [CLOSE]


@pytest.mark.parametrize(
    ("cell_v", "action"),
    [(3.3 + 0.25 / 16, CLOSE), (3.3 + 0.27 / 16, NONE), (3.3 - 0.25 / 16, CLOSE)],
)
def test_a_parallel_string_closes_only_within_the_window(
    cell_v: float, action: RelayAction
) -> None:
    # Bus at 52.8 V: the window is min(1 V, 0.5 % = 0.264 V).
    closed = node(0, [3.3] * 16)
    req = policy().step(battery(closed, standby(1, cell_v)), 0.0, 1.0)
    assert actions(req) == [CLOSE, action]
    if action is NONE:
        assert "+0.27 V from the bus, waiting" in req[1].reason


def test_the_wider_fraction_or_volts_window_is_not_used() -> None:
    closed = node(0, [3.3] * 16)
    req = policy(parallel_window_v=0.1).step(battery(closed, standby(1, 3.3 + 0.2 / 16)), 0.0, 1.0)
    assert actions(req) == [CLOSE, NONE]


def test_with_no_bus_the_string_most_others_agree_with_closes_first() -> None:
    reports = [standby(0, 3.3 + 0.5 / 16), standby(1, 3.3), standby(2, 3.3 + 0.1 / 16)]
    assert actions(policy().step(battery(*reports), 0.0, 1.0)) == [NONE, CLOSE, CLOSE]


def test_series_nodes_close_together_and_wait_for_each_other() -> None:
    p = policy()
    both = battery(standby(0), standby(1), strings=[[0, 1]])
    assert actions(p.step(both, 0.0, 1.0)) == [CLOSE, CLOSE]
    faulty = battery(
        standby(0), standby(1, faults=frozenset({ProtectionKind.SENSOR_FAULT})), strings=[[0, 1]]
    )
    assert actions(p.step(faulty, 0.0, 1.0)) == [NONE, NONE]


def test_a_node_silent_too_long_opens_its_string() -> None:
    p = policy(open_after_s=60.0)
    gone = replace(standby(1), present=False, age=30.0)
    snap = battery(node(0, [3.3] * 16), gone, strings=[[0, 1]])
    for _ in range(100):  # uptime passes the grace; the node's age does not
        reqs = p.step(snap, 0.0, 1.0)
    assert actions(reqs) == [NONE, NONE]
    assert "node 1 missing" in reqs[0].reason
    snap = battery(node(0, [3.3] * 16), replace(gone, age=61.0), strings=[[0, 1]])
    reqs = p.step(snap, 0.0, 1.0)
    assert actions(reqs) == [OPEN, OPEN]
    assert "node 1 silent" in reqs[0].reason


def test_a_node_never_heard_opens_its_string_only_after_the_grace_from_start() -> None:
    p = policy(open_after_s=60.0)
    never = replace(standby(1), present=False, age=math.inf)
    snap = battery(node(0, [3.3] * 16), never, strings=[[0, 1]])
    steps = [actions(p.step(snap, 0.0, 1.0)) for _ in range(61)]
    assert steps[59] == [NONE, NONE]
    assert steps[60] == [OPEN, OPEN]


def test_stale_data_opens_everything_after_the_grace() -> None:
    p = policy(open_after_s=60.0)
    snap = battery(node(0, [3.3] * 16), node(1, [3.3] * 16))
    assert actions(p.step(snap, 60.0, 1.0)) == [CLOSE, CLOSE]
    reqs = p.step(snap, 60.5, 1.0)
    assert actions(reqs) == [OPEN, OPEN]
    assert "stale" in reqs[0].reason
