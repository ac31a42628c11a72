"""Invariants of the strategy for arbitrary snapshot sequences (hypothesis)."""

from __future__ import annotations

import math
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.contracts.chemistry import LFP
from gateway.contracts.decision import Alarm, Phase
from gateway.contracts.snapshot import BatterySnapshot, ProtectionKind
from gateway.soc import SocState
from gateway.strategy import ChargeController, StrategySettings
from tests.strategy.battery import snapshot

N = 16
MAX_CHARGE, MAX_DISCHARGE = 120.0, 80.0
kinds = st.frozensets(st.sampled_from(list(ProtectionKind)), max_size=2)
voltage = st.floats(2.0, 4.0) | st.just(math.nan)
# The parts of a step, each strategy built once: built in every draw they took most of the
# tests' time.
string_counts = st.integers(1, 2)
levels = st.floats(2.5, 3.7)
coins = st.booleans()
offsets = st.floats(-0.05, 0.05)  # a cell around the level
one_in_4 = st.integers(0, 3)  # 0: every cell of a node at the level
one_in_5 = st.integers(0, 4)
one_in_10 = st.integers(0, 9)
low_temps = st.floats(-30.0, 60.0) | st.just(math.nan)
temp_spans = st.floats(0.0, 20.0)
currents = st.floats(-300.0, 300.0) | st.just(math.nan)
data_ages = st.sampled_from([0.2, 1.0, 4.9, 5.1, 60.0, math.inf, math.nan])
time_steps = st.sampled_from([0.1, 1.0, 1.0, 1.0, 5.0, 3600.0, -10.0])
socs = st.floats(0.0, 100.0)


@st.composite
def steps(draw: st.DrawFn) -> tuple[float, BatterySnapshot, float]:
    """(time step, snapshot at time 0, SoC): the time is filled in by the test."""
    strings = draw(string_counts)
    level = draw(levels)
    cells = [
        [draw(voltage) if draw(coins) else level + draw(offsets) for _ in range(N)]
        if draw(one_in_4)
        else [level] * N
        for _ in range(strings)
    ]
    t_low = draw(low_temps)
    snap = snapshot(
        cells,
        current=draw(currents),
        temps=(t_low, t_low + draw(temp_spans)),
        data_age=draw(data_ages),
        faults=draw(kinds) if draw(one_in_10) == 0 else frozenset(),
        warnings=draw(kinds) if draw(one_in_5) == 0 else frozenset(),
        infos=draw(kinds),
    )
    if draw(one_in_10) == 0:
        snap = replace(snap, valid=False)
    dt = draw(time_steps)
    return dt, snap, draw(socs)


def check(decision_steps: list[tuple[float, BatterySnapshot, float]], full_charges: bool) -> None:
    cfg = StrategySettings(
        max_charge_current_a=MAX_CHARGE,
        max_discharge_current_a=MAX_DISCHARGE,
        phases={"full_charge_interval_days": 1.0 if full_charges else 0.0},
    )
    c = ChargeController(cfg, LFP, N)
    if full_charges:
        c.request_full_charge()
    ceiling = N * (LFP.full_charge_v if full_charges else LFP.charge_target_v)
    t = 1.7e9
    for dt, drawn, soc in decision_steps:
        t += dt
        snap = replace(drawn, time=t)
        d = c.step(snap, SocState(soc=soc))
        lim = d.limits
        assert math.isfinite(lim.cvl) and 0.0 < lim.cvl <= ceiling + 1e-9
        assert math.isfinite(lim.ccl) and 0.0 <= lim.ccl <= MAX_CHARGE
        assert math.isfinite(lim.dcl) and 0.0 <= lim.dcl <= MAX_DISCHARGE
        assert lim.dvl > 0.0
        assert lim.charge_enable == (lim.ccl > 0.0)
        assert lim.discharge_enable == (lim.dcl > 0.0)
        stale = not (snap.valid and snap.data_age <= cfg.data_timeout_s)
        if stale:  # the stop is in this very step
            assert d.phase is Phase.STOPPED
            assert lim.ccl == lim.dcl == 0.0
            assert Alarm.BATTERY_DATA_STALE in d.alarms
            assert lim.cvl <= N * LFP.float_v + 1e-9
        if snap.faults:
            assert lim.ccl == lim.dcl == 0.0
        for b in d.balance:
            assert 0 <= b.cells < 1 << N and math.isfinite(b.floor)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(steps(), min_size=1, max_size=40))
def test_invariants_hold_for_any_snapshots(seq: list[tuple[float, BatterySnapshot, float]]) -> None:
    check(seq, full_charges=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(steps(), min_size=1, max_size=40))
def test_invariants_hold_with_full_charges(seq: list[tuple[float, BatterySnapshot, float]]) -> None:
    check(seq, full_charges=True)
