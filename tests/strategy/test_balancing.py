"""Balancing policy: start voltage, selection, hysteresis, limits and options."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.contracts.chemistry import LFP
from gateway.contracts.decision import BalanceRequest, Phase
from gateway.contracts.snapshot import BatterySnapshot, ProtectionKind
from gateway.strategy.balancing import BalancingPolicy
from gateway.strategy.settings import BalanceSettings
from tests.strategy.battery import node, snapshot

START = 3.40


def policy(**cfg: object) -> BalancingPolicy:
    return BalancingPolicy(BalanceSettings.model_validate(cfg), replace(LFP, balance_start_v=START))


def mask(*cells: int) -> int:
    """Bit mask of 1-based cell numbers."""
    return sum(1 << (c - 1) for c in cells)


def pack(*high: tuple[int, float], base: float = 3.40, n: int = 16) -> list[float]:
    """n cells at `base` V, with (cell number, voltage) overrides."""
    v = [base] * n
    for c, volts in high:
        v[c - 1] = volts
    return v


def step(p: BalancingPolicy, snap: BatterySnapshot, phase: Phase = Phase.BULK, dt: float = 1.0):  # type: ignore[no-untyped-def]
    return p.step(snap, phase, dt)


def test_nothing_bleeds_below_the_start_voltage_but_every_node_gets_a_request() -> None:
    snap = snapshot([pack((3, 3.395), base=3.30), pack(base=3.30)])
    assert step(policy(), snap) == (
        BalanceRequest(0, 0, pytest.approx(3.305)),
        BalanceRequest(1, 0, pytest.approx(3.305)),
    )


def test_cells_above_the_lowest_by_the_threshold_bleed() -> None:
    snap = snapshot([pack((3, 3.45), (7, 3.411), (9, 3.409))])
    (req,) = step(policy(), snap)
    assert req.cells == mask(3, 7)  # 9 is only 9 mV above the lowest
    assert req.floor == pytest.approx(3.405)


def test_highest_first_and_at_most_n_per_node() -> None:
    snap = snapshot([pack((1, 3.42), (2, 3.43), (3, 3.44), (4, 3.45), (5, 3.46), (6, 3.47))])
    (req,) = step(policy(max_cells_per_node=3), snap)
    assert req.cells == mask(4, 5, 6)


def test_avoid_adjacent_cells() -> None:
    snap = snapshot([pack((4, 3.47), (5, 3.46), (6, 3.45), (8, 3.44))])
    (req,) = step(policy(avoid_adjacent=True), snap)
    assert req.cells == mask(4, 6, 8)
    (req,) = step(policy(avoid_adjacent=False), snap)
    assert req.cells == mask(4, 5, 6, 8)


def test_a_bleeding_cell_goes_on_until_the_release_voltage() -> None:
    p = policy()
    step(p, snapshot([pack((3, 3.42))]))
    (req,) = step(p, snapshot([pack((3, 3.407))]))  # 7 mV: below the threshold, above release
    assert req.cells == mask(3)
    (req,) = step(p, snapshot([pack((3, 3.405))]))
    assert req.cells == 0
    (req,) = step(p, snapshot([pack((3, 3.407))]))  # released: needs the threshold again
    assert req.cells == 0


def test_start_voltage_hysteresis() -> None:
    p = policy()
    step(p, snapshot([pack((3, 3.42), base=3.37)]))
    (req,) = step(p, snapshot([pack((3, 3.395), base=3.37)]))  # below start, within threshold
    assert req.cells == mask(3)
    (req,) = step(p, snapshot([pack((3, 3.389), base=3.37)]))
    assert req.cells == 0
    (req,) = step(p, snapshot([pack((3, 3.395), base=3.37)]))
    assert req.cells == 0


def test_the_lowest_cell_of_the_whole_string_counts() -> None:
    # Node 1 is entirely above node 0's lowest cell: all its high cells bleed.
    snap = snapshot([pack((1, 3.40), base=3.40), pack(base=3.42)], strings=[[0, 1]])
    r0, r1 = step(policy(max_cells_per_node=16), snap)
    assert r0.cells == 0
    assert r1.cells == mask(*range(1, 17))
    assert r0.floor == r1.floor == pytest.approx(3.405)


def test_each_parallel_string_balances_against_its_own_lowest() -> None:
    snap = snapshot([pack(base=3.40), pack((2, 3.44), base=3.42)])
    r0, r1 = step(policy(), snap)
    assert r0.cells == 0
    assert r1.cells == mask(2)
    assert r1.floor == pytest.approx(3.425)


def test_a_hot_balancer_and_a_missing_node() -> None:
    hot = node(0, pack((3, 3.45)), warnings=frozenset({ProtectionKind.BALANCER_OVER_TEMP}))
    snap = snapshot([pack((3, 3.45)), pack((3, 3.45))], nodes={0: hot})
    r0, r1 = step(policy(), snap)
    assert (r0.cells, r1.cells) == (0, mask(3))
    gone = snapshot([pack((3, 3.45)), pack((3, 3.45))], nodes={1: node(1, pack(), present=False)})
    assert [r.node for r in step(policy(), gone)] == [0]


def test_only_when_idle() -> None:
    p = policy(only_when_idle=True, idle_current_a=2.0, idle_time_s=60.0)
    busy = snapshot([pack((3, 3.45))], current=10.0)
    idle = snapshot([pack((3, 3.45))], current=1.0)
    assert step(p, busy)[0].cells == 0
    assert all(step(p, idle)[0].cells == 0 for _ in range(59))
    assert step(p, idle)[0].cells == mask(3)
    assert step(p, busy)[0].cells == 0


@pytest.mark.parametrize(
    ("phase", "bleeds"),
    [
        (Phase.BULK, False),
        (Phase.ABSORPTION, True),
        (Phase.FLOAT, True),
        (Phase.FULL_CHARGE, True),
        (Phase.STOPPED, False),
    ],
)
def test_only_in_absorption_or_float(phase: Phase, bleeds: bool) -> None:
    p = policy(only_in_absorption_or_float=True)
    (req,) = step(p, snapshot([pack((3, 3.45))]), phase)
    assert (req.cells != 0) is bleeds


def test_disabled_or_invalid_data_bleeds_nothing() -> None:
    snap = snapshot([pack((3, 3.45))])
    assert step(policy(enabled=False), snap)[0].cells == 0
    assert step(policy(), snapshot([pack((3, 3.45))], valid=False))[0].cells == 0


def test_settings_validation() -> None:
    with pytest.raises(ValueError):
        BalanceSettings(threshold_v=0.005, release_v=0.005)
