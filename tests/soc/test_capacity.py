"""Capacity learned from partial cycles between two trusted points (issue 14: a battery that
never reaches empty never learned its capacity loss)."""

from __future__ import annotations

import itertools
import json

import pytest

from gateway.soc import SocSettings, SocSource, SocState
from tests.soc.rig import Rig, TrueString

HOUR = 3600.0
# A lossless count, a minute per sample: the truth and the count differ only by capacity.
EXACT = SocSettings(charge_efficiency=1.0, max_step_s=60.0)


def full_battery(capacity_ah: float) -> Rig:
    """A 100 Ah string that really holds `capacity_ah`, just recalibrated at 100 %."""
    state = SocState(soc=100.0, source=SocSource.FULL, uncertainty=1.0, anchor_soc=100.0)
    return Rig([TrueString(100.0, capacity_ah=capacity_ah)], settings=EXACT, state=state)


def day(rig: Rig, ah: float) -> float:
    """Out `ah` at 20 A, an hour's rest, back in at 20 A, a tail current at the top until
    recalibrated. Returns the count's error before the rest (points)."""
    rig.run(ah / 20.0 * HOUR, amps=-20.0, dt=60.0)
    error = rig.est.state.soc - rig.true_soc
    rig.run(HOUR, dt=60.0)
    rig.run(ah / 20.0 * HOUR, amps=20.0, dt=60.0)
    rig.run(600.0, amps=0.5, dt=5.0)
    assert rig.est.state.source is SocSource.FULL
    return error


def test_partial_cycles_teach_a_capacity_loss() -> None:
    """Down to 25 % (steep enough to rest on) and back to full each day: never empty."""
    rig = full_battery(80.0)
    errors = [day(rig, 60.0) for _ in range(7)]
    state = rig.est.state
    assert state.learned == 14  # twice a day: at the rest and at full
    assert state.health == pytest.approx(0.8, abs=0.01)
    assert errors[0] == pytest.approx(15.0, abs=0.5)  # 60 of 80 Ah out counted as 60 %
    assert all(b < a for a, b in itertools.pairwise(errors))
    assert abs(errors[-1]) < 1.5


def test_a_rest_on_the_plateau_teaches_nothing() -> None:
    rig = full_battery(80.0)
    day(rig, 40.0)  # to 50 %: the voltage there says nothing
    assert rig.est.state.learned == 0 and rig.est.state.health == 1.0


def test_a_short_span_teaches_nothing() -> None:
    """Between 100 % and 72 % (steep enough there) the span is under learn_min_span."""
    rig = full_battery(100.0)
    day(rig, 28.0)
    state = rig.est.state
    assert state.learned == 0 and state.health == 1.0


def test_an_implausible_measurement_is_ignored() -> None:
    """A cell that held half of rated (a sensor gain fault, a wrong capacity setting): the
    measurement is out of bounds and the learned capacity stays."""
    rig = full_battery(40.0)
    rig.run(1.5 * HOUR, amps=-20.0, dt=60.0)  # 30 of 40 Ah: 25 % left
    rig.run(HOUR, dt=60.0)
    state = rig.est.state
    assert state.anchor_soc == pytest.approx(25.0)  # the rest point is taken
    assert state.learned == 0 and state.health == 1.0


def test_the_learned_capacity_is_persisted() -> None:
    rig = full_battery(90.0)
    day(rig, 70.0)
    state = rig.est.state
    assert state.learned == 2 and state.health < 0.98
    again = SocState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again.health == state.health and again.learned == 2
    assert again.anchor_soc == state.anchor_soc
