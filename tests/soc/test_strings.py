"""Each parallel string keeps its own SoC: one that was out rejoins with its own charge."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.soc import SocSettings, SocSource, SocState
from gateway.soc.estimator import _lowest_cell
from tests.soc.rig import Rig, TrueString

HOUR = 3600.0
EXACT = SocSettings(charge_efficiency=1.0)


def test_a_string_that_was_out_keeps_its_charge() -> None:
    strings = [TrueString(50.0), TrueString(50.0)]
    rig = Rig(strings, settings=EXACT)
    rig.est.set_soc(50.0)
    strings[1].relay_closed = False
    rig.run(HOUR, amps=30.0)  # 30 Ah into string 0 alone
    state = rig.est.state
    assert state.strings == pytest.approx((80.0, 50.0), abs=0.05)
    assert state.soc == pytest.approx(65.0, abs=0.05)  # the battery: 130 of 200 Ah
    assert state.soc == pytest.approx(rig.true_soc, abs=0.05)
    strings[1].relay_closed = True
    rig.run(HOUR, amps=-20.0)  # both again, 10 Ah each
    assert rig.est.state.strings == pytest.approx((70.0, 40.0), abs=0.1)
    assert rig.est.state.soc == pytest.approx(rig.true_soc, abs=0.1)


def test_strings_of_different_capacity_weigh_by_it() -> None:
    strings = [TrueString(100.0, rated_ah=100.0), TrueString(40.0, rated_ah=300.0)]
    start = SocState(soc=70.0, source=SocSource.USER, uncertainty=0.0, strings=(100.0, 40.0))
    rig = Rig(strings, settings=EXACT, state=start)
    rig.run(60.0)
    assert rig.est.state.soc == pytest.approx((100.0 * 100 + 40.0 * 300) / 400)


def test_a_full_point_sets_only_the_strings_that_took_part() -> None:
    strings = [TrueString(99.0), TrueString(40.0)]
    rig = Rig(strings, settings=EXACT)
    rig.est.set_soc(60.0)
    strings[1].relay_closed = False
    rig.run(1200.0, amps=3.0)  # the tail current at the top of string 0
    state = rig.est.state
    assert state.strings[0] == pytest.approx(100.0)
    assert state.strings[1] == pytest.approx(60.0)  # out: its count is untouched
    # The string that was out keeps its uncertainty (0: set by the user), weighted by half.
    assert state.uncertainty == pytest.approx(0.5 * 1.0 + 0.5 * 0.0, abs=0.05)


# A few values, so that NaN, infinities, 0 and negative readings are common.
_CELL = st.sampled_from([3.3, 3.21, 3.45, 0.0, -0.0, -1.0, math.nan, math.inf, -math.inf])


@given(st.lists(st.lists(_CELL, max_size=6).map(tuple), min_size=1, max_size=3))
def test_a_strings_lowest_cell_is_its_lowest_usable_reading(
    cells: list[tuple[float, ...]],
) -> None:
    """The lowest finite reading above 0 over the string's nodes, else the battery's: the
    builtins' shortcut gives what a filter over every reading gives."""
    snap = Rig([TrueString(50.0)]).snapshot([0.0])
    snap = dataclasses.replace(snap, cell_voltages=dict(enumerate(cells)), min_cell=3.0)
    usable = [v for volts in cells for v in volts if math.isfinite(v) and v > 0]
    want = min(usable) if usable else 3.0
    assert _lowest_cell(snap, tuple(range(len(cells)))) == want
