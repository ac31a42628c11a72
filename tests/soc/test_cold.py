"""The SoC's calibration points in the cold (issue 14: the cold morning's SoC error).

A cold cell reaches its voltage ends with less of its rated charge moved: the end of a
charge at 10 degC and the empty voltage at -7 degC are not 100 % and 0 % of the rated
capacity. The estimator counts charge against the rated capacity, so it sets those points
where the chemistry's capacity by temperature puts them (docs/soc.md, "Cold").
"""

from __future__ import annotations

import pytest

from gateway.contracts.chemistry import LFP, LTO, NMC
from gateway.contracts.decision import Phase
from gateway.contracts.snapshot import BatterySnapshot
from gateway.soc import SocEstimator, SocSettings, SocSource
from tests.strategy.battery import snapshot

CAP = 100.0
TOP = (3.45,) * 16  # every cell at LFP's charge target
LOW = (3.10,) * 15 + (2.95,)  # the lowest cell under the empty voltage
MID = (3.30,) * 16


def snap(t: float, current: float, cells: tuple[float, ...], temp: float) -> BatterySnapshot:
    return snapshot([cells], time=t, current=current, capacity_ah=CAP, temps=(temp, temp + 1))


def estimator(soc: float) -> SocEstimator:
    est = SocEstimator(SocSettings(max_step_s=60.0), LFP)
    est.set_soc(soc)
    return est


def end_of_charge(est: SocEstimator, t: float, temp: float) -> None:
    est.update(snap(t, 2.0, TOP, temp), Phase.ABSORPTION)
    est.update(snap(t + 1.0, 2.0, TOP, temp), Phase.FLOAT)


def empty(est: SocEstimator, t: float, temp: float, current: float = -10.0) -> float:
    for _ in range(13):  # the 60 s hold
        est.update(snap(t, current, LOW, temp))
        t += 5.0
    return t


def test_the_cited_lfp_figures() -> None:
    # 80 % of the rated capacity at 0 degC, 70 % at -20 degC, all of it at 25 degC.
    cap = LFP.capacity_by_temp
    assert (cap.at(-20.0), cap.at(0.0), cap.at(25.0), cap.at(40.0)) == (0.7, 0.8, 1.0, 1.0)
    # No cited figure for the others: no correction.
    for chem in (NMC, LTO):
        assert chem.capacity_by_temp.at(-20.0) == 1.0 == chem.capacity_by_temp.at(25.0)


@pytest.mark.parametrize("temp", [25.0, 30.0])
def test_a_warm_charge_ends_at_100(temp: float) -> None:
    est = estimator(90.0)
    end_of_charge(est, 0.0, temp)
    assert est.state.source is SocSource.FULL
    assert est.state.soc == 100.0


def test_a_cold_charge_ends_short_of_100_by_half_the_capacity_the_cold_takes() -> None:
    est = estimator(80.0)
    end_of_charge(est, 0.0, 10.0)  # the coldest cell at 10 degC: 88 % of the capacity
    s = est.state
    assert s.source is SocSource.FULL
    assert s.soc == pytest.approx(94.0)
    # The cold's share of either end is not known: the value is the middle, and its
    # uncertainty reaches both 100 % and 88 %.
    assert s.soc + s.uncertainty >= 100.0 and s.soc - s.uncertainty <= 88.0


def test_a_cold_empty_point_is_above_0() -> None:
    est = estimator(20.0)
    empty(est, 0.0, -7.0)  # 76.5 % of the capacity at -7 degC
    s = est.state
    assert s.source is SocSource.EMPTY
    assert s.soc == pytest.approx(11.75)
    assert s.soc - s.uncertainty <= 0.0


def test_a_winter_empty_point_teaches_no_capacity_loss() -> None:
    """Empty at -7 degC, then charged warm to full: the charge counted between the two
    points is the rated capacity less the 11.75 % the cold left in: the capacity learnt is
    the rated one, where an empty point at 0 % would teach a battery 12 % smaller."""
    est = estimator(20.0)
    t = empty(est, 0.0, -7.0)
    assert est.state.soc == pytest.approx(11.75)
    est.update(snap(t, 0.0, MID, 25.0))
    hours = 0.8825 / 0.5 / SocSettings().charge_efficiency  # at 0.5 C
    steps = round(hours * 60)
    for _ in range(steps):
        t += 60.0
        est.update(snap(t, 0.5 * CAP, MID, 25.0))
    t += 60.0
    end_of_charge(est, t, 25.0)
    s = est.state
    assert s.soc == 100.0 and s.learned == 1
    assert s.health == pytest.approx(1.0, abs=0.01)
