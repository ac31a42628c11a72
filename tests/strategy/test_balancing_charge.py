"""Charge-based balancing: the estimate at the top, the account bled all day, its limits and
its survival across a restart (gateway/strategy/balancecharge.py, balancing.py)."""

from __future__ import annotations

import json
import math

import pytest

from gateway.contracts.chemistry import LFP
from gateway.contracts.decision import BalanceRequest, Phase
from gateway.contracts.snapshot import BatterySnapshot, ProtectionKind
from gateway.soc import SocState
from gateway.strategy import ChargeController, StrategySettings, StrategyState
from gateway.strategy.balancecharge import estimate_excess, tell_apart_v
from gateway.strategy.balancing import BalancingPolicy
from gateway.strategy.settings import BalanceSettings
from tests.strategy.battery import node, snapshot

CAPACITY = 100.0
WEAK = 4  # cell 5 (0-based 4): the one ahead at the top, as in the weak-cell case
PLATEAU = 3.342  # the others at the top: on the flat part, the OCV table says 90 %
AHEAD = 3.44  # the weak cell held near the daily target at the top
# The lower bound for it: SoC(3.44 V) = 99.56 % against the tell-apart point's 98 %, at 100 Ah
# and a gain of 0.8.
BOUND = 0.8 * (99.5 + 0.5 * (AHEAD - 3.418) / (3.598 - 3.418) - 98.0) / 100 * CAPACITY
# Above 99.5 % with the others on the plateau the bound is saturated: 2.5 % of the capacity.
OWED = 0.025 * CAPACITY


def policy(**cfg: object) -> BalancingPolicy:
    """A policy with charge-based balancing on (the default, said here for the reader)."""
    return BalancingPolicy(BalanceSettings.model_validate({"charge_based": True, **cfg}), LFP)


def cells(ahead: dict[int, float] | None = None, base: float = PLATEAU) -> list[float]:
    v = [base] * 16
    for k, volts in (ahead or {}).items():
        v[k] = volts
    return v


def battery(
    voltages: list[float], current: float = 0.0, bleeding: int = 0, **kw: object
) -> BatterySnapshot:
    return snapshot(
        [voltages],
        current=current,
        capacity_ah=CAPACITY,
        bleeding={0: bleeding},
        **kw,  # type: ignore[arg-type]
    )


def top(p: BalancingPolicy, voltages: list[float], seconds: int = 180) -> BalanceRequest:
    """The string at the top at low current (absorption's tail) for `seconds`."""
    req = None
    for _ in range(seconds):
        (req,) = p.step(battery(voltages, current=0.3), Phase.ABSORPTION, 1.0, soc=99.0)
    assert req is not None
    return req


def discharge(
    p: BalancingPolicy,
    seconds: float,
    dt: float = 60.0,
    soc: float = 60.0,
    voltages: list[float] | None = None,
    report: bool = True,
) -> list[BalanceRequest]:
    """The pack discharging on the flat part of the curve; the node reports bleeding what it
    was asked the step before (report=False: it bleeds nothing, e.g. held by its own floor),
    so the first `dt` counts nothing."""
    out: list[BalanceRequest] = []
    asked = 0
    for _ in range(round(seconds / dt)):
        snap = battery(voltages or cells(base=3.30), current=-20.0, bleeding=asked if report else 0)
        (req,) = p.step(snap, Phase.BULK, dt, soc=soc)
        asked = req.cells
        out.append(req)
    return out


def test_tell_apart_point_of_the_lfp_table() -> None:
    # 97 -> 98 % rises 3 mV, 98 -> 99 % rises 22 mV: the cells are told apart from 98 %.
    assert tell_apart_v(LFP.ocv, 5.0) == pytest.approx(3.348)
    assert tell_apart_v(LFP.ocv, 30.0) == pytest.approx(3.370)  # from 99 % only


def test_the_estimate_is_a_lower_bound_from_the_steep_part_only() -> None:
    soc_of = LFP.ocv.inverse()
    v = cells({WEAK: AHEAD})
    excess = estimate_excess(v, soc_of, 3.348, CAPACITY, 0.8, 0.010)
    assert excess[WEAK] == pytest.approx(BOUND, rel=1e-6)
    assert pytest.approx(1.249, abs=0.001) == BOUND
    assert [a for k, a in enumerate(excess) if k != WEAK] == [0.0] * 15
    # A plateau cell's few mV (90 % against 80 % by the table) are not charge it holds.
    excess = estimate_excess(cells({3: 3.339}), soc_of, 3.348, CAPACITY, 0.8, 0.001)
    assert excess == [0.0] * 16
    # Both in the steep part (a full charge): the whole difference counts.
    excess = estimate_excess(cells({WEAK: 3.50}, base=3.40), soc_of, 3.348, CAPACITY, 1.0, 0.010)
    assert excess[WEAK] == pytest.approx((soc_of.at(3.50) - soc_of.at(3.40)) / 100 * CAPACITY)


def test_a_saturated_bound_takes_a_share_of_the_capacity() -> None:
    soc_of = LFP.ocv.inverse()
    # At the very top (99.5 % and more) with the lowest unreadable: 2.5 % of the capacity.
    excess = estimate_excess(cells({WEAK: AHEAD}), soc_of, 3.348, CAPACITY, 0.8, 0.010, 0.025)
    assert excess[WEAK] == pytest.approx(2.5)
    # Below 99.5 % (3.418 V) the bound stays: 3.40 V is 99.31 %.
    excess = estimate_excess(cells({WEAK: 3.40}), soc_of, 3.348, CAPACITY, 0.8, 0.010, 0.025)
    assert excess[WEAK] == pytest.approx(0.8 * 1.3125, rel=1e-6)
    # Every cell readable (the lowest at 99 %): the difference is known, no saturation.
    excess = estimate_excess(
        cells({WEAK: 3.50}, base=3.37), soc_of, 3.348, CAPACITY, 1.0, 0.01, 0.025
    )
    assert excess[WEAK] == pytest.approx(soc_of.at(3.50) - 99.0)
    # A larger pack: the share scales (a day of bleeding still bounds what one top costs).
    excess = estimate_excess(cells({WEAK: AHEAD}), soc_of, 3.348, 280.0, 0.8, 0.010, 0.025)
    assert excess[WEAK] == pytest.approx(7.0)


def test_the_cell_ahead_at_the_top_bleeds_during_the_following_discharge() -> None:
    p = policy()
    req = top(p, cells({WEAK: AHEAD}))
    assert req.cells == 1 << WEAK  # top balancing bleeds it there too
    assert p.account.owed[0][WEAK] == pytest.approx(OWED, rel=1e-6)
    reqs = discharge(p, 3600.0)
    # On the flat part of the curve top balancing says nothing; the account does.
    assert all(r.cells == 1 << WEAK for r in reqs)
    # The floor is the cell's low limit plus a margin, not the lowest cell: the node may
    # bleed on the plateau.
    assert all(r.floor == pytest.approx(LFP.min_cell_v + 0.2) for r in reqs)
    assert p.account.owed[0][WEAK] == pytest.approx(OWED - 0.1 * 59 / 60, abs=1e-6)


def test_it_stops_when_its_account_is_bled() -> None:
    p = policy()
    top(p, cells({WEAK: AHEAD}))
    hours = OWED / 0.1  # 25 h at 100 mA
    reqs = discharge(p, (hours + 1) * 3600)
    bled = [r.cells == 1 << WEAK for r in reqs]
    assert all(bled[: int(hours * 60)])
    assert not any(bled[int(hours * 60) + 2 :])
    assert p.account.owed[0][WEAK] == 0.0
    assert p.account.saved() == ()


def test_only_what_the_node_reports_bleeding_is_counted() -> None:
    p = policy()
    top(p, cells({WEAK: AHEAD}))
    reqs = discharge(p, 3 * 3600, report=False)
    assert all(r.cells == 1 << WEAK for r in reqs)  # still asked
    assert p.account.owed[0][WEAK] == pytest.approx(OWED, rel=1e-6)  # nothing counted
    # A larger balancer (the setting) empties the account sooner.
    p = policy(bleed_current_a=0.2)
    top(p, cells({WEAK: AHEAD}))
    discharge(p, 3600.0)
    assert p.account.owed[0][WEAK] == pytest.approx(OWED - 0.2 * 59 / 60, abs=1e-6)


def test_the_next_top_re_estimates() -> None:
    p = policy()
    top(p, cells({WEAK: AHEAD}))
    discharge(p, 6 * 3600)
    assert p.account.owed[0][WEAK] == pytest.approx(OWED - 0.1 * (6 - 1 / 60), abs=1e-6)
    # Next top: the cell still ahead, less so -> the account is replaced, not added to.
    top(p, cells({WEAK: 3.40}))
    again = 0.8 * (99.3125 - 98.0) / 100 * CAPACITY
    assert p.account.owed[0][WEAK] == pytest.approx(again, rel=1e-6)
    discharge(p, 600.0)
    # The top after: another cell ahead, the weak one no longer -> it stops, cell 9 bleeds.
    top(p, cells({8: 3.43, WEAK: 3.345}))
    assert p.account.owed[0][WEAK] == 0.0
    reqs = discharge(p, 3600.0)
    assert all(r.cells == 1 << 8 for r in reqs)


def test_within_one_stay_at_the_top_the_largest_estimate_holds() -> None:
    p = policy()
    top(p, cells({WEAK: AHEAD}))
    # The charge phase ends: the float CVL lets the cell relax towards the plateau, still
    # at the top at low current, with no charge gone but what it bled.
    top(p, cells({WEAK: 3.40}), seconds=600)
    assert p.account.owed[0][WEAK] == pytest.approx(OWED, rel=1e-6)  # not 1.05 Ah
    # A new stay replaces it.
    discharge(p, 60.0)
    top(p, cells({WEAK: 3.40}))
    assert p.account.owed[0][WEAK] == pytest.approx(0.8 * 1.3125, rel=1e-6)


def test_within_one_stay_new_readings_are_estimated_at_once() -> None:
    # The same readings' estimate is given again step after step; the first step with new
    # ones (another cell coming ahead) estimates them.
    p = policy()
    top(p, cells({WEAK: AHEAD}))
    top(p, cells({WEAK: AHEAD, 9: 3.40}), seconds=1)
    assert p.account.owed[0][9] == pytest.approx(0.8 * 1.3125, rel=1e-6)
    assert p.account.owed[0][WEAK] == pytest.approx(OWED, rel=1e-6)
    # A reading unknown: no estimate from it, the account stays as it was.
    unknown = cells({WEAK: AHEAD, 9: math.nan})
    top(p, unknown, seconds=1)
    assert p.account.owed[0][9] == pytest.approx(0.8 * 1.3125, rel=1e-6)


def test_the_top_is_where_the_curve_tells_the_cells_apart() -> None:
    p = policy()
    assert p.estimate_v == pytest.approx(3.368)  # 3.348 V (98 %) + 20 mV
    # Held below the balance start voltage (an inverter's own CVL): still an estimate.
    top(p, cells({WEAK: 3.38}))
    assert p.account.owed[0][WEAK] == pytest.approx(0.8 * (99 + 0.5 * 10 / 48 - 98), rel=1e-6)
    # A cell 15 mV above the plateau may be a plateau cell on its charge branch: none.
    p = policy()
    top(p, cells({WEAK: 3.36}))
    assert p.account.saved() == ()


def test_no_estimate_under_current_or_before_it_settles() -> None:
    p = policy()
    # Charging at 5 A (0.05 C): the voltage is the cell's resistance as much as its charge.
    for _ in range(600):
        p.step(battery(cells({WEAK: AHEAD}), current=5.0), Phase.BULK, 1.0, soc=95.0)
    assert p.account.saved() == ()
    p = policy()
    top(p, cells({WEAK: AHEAD}), seconds=100)  # settles in 120 s
    assert p.account.saved() == ()
    top(p, cells({WEAK: AHEAD}), seconds=30)
    assert p.account.owed[0][WEAK] > 0.0


def test_never_below_the_minimum_soc_nor_the_floor() -> None:
    p = policy()
    top(p, cells({WEAK: AHEAD}))
    # The pack low (SoC below account_min_soc, 30 %) or its SoC unknown: no bleeding.
    for soc in (29.9, 10.0, math.nan):
        reqs = discharge(p, 600.0, soc=soc)
        assert all(r.cells == 0 for r in reqs)
    assert p.account.owed[0][WEAK] == pytest.approx(OWED, rel=1e-6)
    # A cell at or below the floor (3.10 V) is not asked for, whatever it owes.
    low = cells({WEAK: 3.10}, base=3.20)
    assert all(r.cells == 0 for r in discharge(p, 600.0, voltages=low))
    reqs = discharge(p, 600.0, voltages=cells({WEAK: 3.12}, base=3.20))
    assert all(r.cells == 1 << WEAK and r.floor == pytest.approx(3.10) for r in reqs)
    # A configured floor.
    p = policy(account_floor_v=3.25)
    top(p, cells({WEAK: AHEAD}))
    assert all(r.cells == 0 for r in discharge(p, 600.0, voltages=cells({WEAK: 3.24}, base=3.30)))
    reqs = discharge(p, 600.0, voltages=cells({WEAK: 3.26}, base=3.30))
    assert all(r.cells == 1 << WEAK and r.floor == pytest.approx(3.25) for r in reqs)


def test_the_account_waits_during_the_climb_to_the_target() -> None:
    p = policy()
    top(p, cells({WEAK: AHEAD}))
    discharge(p, 60.0)
    # Charging in bulk with the cell ahead at the top again: only the top rule bleeds.
    climb = cells({WEAK: 3.39})
    (req,) = p.step(battery(climb, current=30.0), Phase.BULK, 1.0, soc=95.0)
    assert req.cells == 0  # 3.39 V is under the balance start voltage
    (req,) = p.step(battery(cells({WEAK: 3.41}), current=30.0), Phase.BULK, 1.0, soc=95.0)
    assert req.cells == 1 << WEAK and req.floor == pytest.approx(PLATEAU + 0.005)
    # In absorption (the highest cell held at the target) the account bleeds again.
    held = cells({WEAK: 3.38})  # under the top rule's hysteresis (3.39 V)
    (req,) = p.step(battery(held, current=1.0), Phase.ABSORPTION, 1.0, soc=98.0)
    assert req.cells == 1 << WEAK and req.floor == pytest.approx(3.10)


def test_the_nodes_rules_and_the_options_still_apply() -> None:
    p = policy(max_cells_per_node=1)
    top(p, cells({WEAK: AHEAD, 9: 3.40}))
    reqs = discharge(p, 600.0)
    assert all(r.cells == 1 << WEAK for r in reqs)  # the larger account first, one cell
    # A hot balancer: nothing on that node.
    hot = frozenset({ProtectionKind.BALANCER_OVER_TEMP})
    snap = snapshot(
        [cells(base=3.30)],
        current=-20.0,
        capacity_ah=CAPACITY,
        nodes={0: node(0, cells(base=3.30), warnings=hot)},
    )
    (req,) = p.step(snap, Phase.BULK, 60.0, soc=60.0)
    assert req.cells == 0
    # Switched off, or only in absorption/float: not during the discharge.
    for cfg in ({"charge_based": False}, {"only_in_absorption_or_float": True}):
        p = policy(**cfg)
        top(p, cells({WEAK: AHEAD}))
        assert all(r.cells == 0 for r in discharge(p, 600.0))


def test_a_restart_keeps_the_account() -> None:
    settings = StrategySettings.model_validate({"balancing": {"charge_based": True}})
    c = ChargeController(settings, LFP, 16)
    for _ in range(180):
        c.balancing.step(battery(cells({WEAK: AHEAD}), current=0.3), Phase.ABSORPTION, 1.0, 99.0)
    saved = json.loads(json.dumps(c.state.to_dict()))
    assert saved["balance_owed"]["0"][WEAK] == pytest.approx(OWED, abs=1e-4)
    restarted = ChargeController(settings, LFP, 16, StrategyState.from_dict(saved))
    assert restarted.balancing.account.owed[0][WEAK] == pytest.approx(OWED, abs=1e-4)
    snap = battery(cells(base=3.30), current=-20.0, time=1000.0)
    d = restarted.step(snap, SocState(soc=60.0))
    assert d.balance == (BalanceRequest(0, 1 << WEAK, pytest.approx(3.10)),)


def test_saved_account_checks() -> None:
    state = StrategyState(balance_owed=((0, (0.0, 1.5)), (2, (0.25,))))
    assert StrategyState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    # A file of the previous version has no account: it starts empty.
    old = state.to_dict() | {"version": 1}
    del old["balance_owed"]
    assert StrategyState.from_dict(old).balance_owed == ()
    for bad in ({"x": [1.0]}, {"0": [-1.0]}, {"0": ["a"]}, {"0": [math.nan]}):
        with pytest.raises(ValueError, match="strategy state"):
            StrategyState.from_dict(state.to_dict() | {"balance_owed": bad})


def test_the_charge_current_fraction_is_for_the_top_only() -> None:
    settings = StrategySettings.model_validate(
        {"balancing": {"charge_based": True, "charge_current_fraction": 0.5}}
    )
    c = ChargeController(settings, LFP, 16, StrategyState(balance_owed=((0, (0.0,) * 4 + (2.0,)),)))
    for i in range(120):  # resumed, limits ramped up, charging on the plateau
        d = c.step(battery(cells(base=3.30), current=20.0, time=1000.0 + i), SocState(soc=60.0))
    assert d.balance[0].cells == 1 << WEAK  # bleeding from the account
    assert d.limits.ccl == pytest.approx(settings.max_charge_current_a)
    assert "charge current reduced while balancing" not in d.notes


def test_a_weak_cell_converges_over_days_without_swinging() -> None:
    """Cells on the chemistry's OCV table: cell 5 with 80 Ah, every cell at 45 % of its own
    capacity, so at the top cell 5 is 11 Ah ahead. Each day: charged until the highest cell
    is at 99.6 %, at rest there for the estimate, then 20 h on the plateau with the node
    bleeding what it is asked at 0.1 A."""
    ocv = LFP.ocv
    capacity = [CAPACITY] * 16
    capacity[WEAK] = 80.0
    charge = [0.45 * c for c in capacity]
    p = policy()
    leads = []
    for _ in range(10):
        top_in = min((0.996 - q / c) * c for q, c in zip(charge, capacity, strict=True))
        charge = [q + top_in for q in charge]
        leads.append(
            max(c - q for k, (q, c) in enumerate(zip(charge, capacity, strict=True)) if k != WEAK)
            - (capacity[WEAK] - charge[WEAK])
        )
        top(p, [ocv.at(100 * q / c) for q, c in zip(charge, capacity, strict=True)])
        for req in discharge(p, 20 * 3600):
            for k in range(16):
                if req.cells >> k & 1:
                    charge[k] -= 0.1 * 60 / 3600
        charge = [q - 45.0 for q in charge]  # in series: the same charge out of every cell
    assert leads[0] == pytest.approx(11.0, abs=0.1)
    # While it is far ahead the account is the saturated 2.5 Ah, bled in 20 h: 2 Ah a day.
    assert leads[1] == pytest.approx(9.0, abs=0.1)
    assert leads[:6] == pytest.approx([11.0, 9.0, 7.0, 5.0, 3.0, 1.0], abs=0.01)
    # Then every cell is readable at the top, the estimate is close: it settles without
    # swinging below the others.
    assert all(0.0 < lead < 0.3 for lead in leads[6:])
