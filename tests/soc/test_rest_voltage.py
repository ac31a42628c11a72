"""The rested voltage corrects the SoC only where the OCV curve is steep enough (issue 14).

Traces are synthetic: cells whose rested voltage is the cited LFP curve (LFP_OCV_POINTS)."""

from __future__ import annotations

import itertools

import pytest

from gateway.contracts.chemistry import LFP, LFP_OCV_POINTS
from gateway.soc import SocEstimator, SocSettings, SocSource, SocState
from gateway.soc.state import MAX_UNCERTAINTY
from tests.soc.rig import Rig, TrueString

HOUR = 3600.0


@pytest.mark.parametrize("truth", [20.0, 50.0, 80.0])
def test_a_fresh_start_then_a_rest_never_trusts_the_flat_plateau(truth: float) -> None:
    """A gateway started on a battery at 20/50/80 %: a first reading under load, then an
    hour's rest. Main read 35/75/95 % there, trusted; the uncertainty must cover the truth,
    and a trusted value must be within the documented bound."""
    rig = Rig([TrueString(truth)])
    first = rig.run(5.0, amps=-30.0)  # under load
    assert first.source is SocSource.ESTIMATE and not first.trusted
    assert abs(first.soc - truth) <= first.uncertainty
    rested = rig.run(HOUR)
    assert abs(rested.soc - rig.true_soc) <= rested.uncertainty
    if rested.trusted:
        assert rested.uncertainty <= SocSettings().ocv_max_error
        assert abs(rested.soc - rig.true_soc) <= SocSettings().ocv_max_error
    if truth >= 50.0:  # the plateau: under 1 mV per %
        assert not rested.trusted
        assert rested.uncertainty > 10.0


def test_the_count_is_the_truth_on_the_plateau() -> None:
    """A counted SoC that rests on the plateau is left alone, even when the voltage, read
    with a few millivolts of hysteresis, says otherwise."""
    rig = Rig([TrueString(100.0)], settings=SocSettings(charge_efficiency=1.0))
    rig.est.set_soc(100.0)
    rig.run(2 * HOUR, amps=-25.0)  # to 50 %
    before = rig.est.state.soc
    rig.strings[0].soc += 8.0  # the cell's voltage reads like 58 % (3 mV higher)
    after = rig.run(2 * HOUR)
    assert after.soc == pytest.approx(before, abs=0.05)
    assert after.source is SocSource.USER


def test_a_rest_on_the_steep_low_end_recalibrates_a_drifted_count() -> None:
    rig = Rig([TrueString(12.0)])
    rig.est.set_soc(30.0)  # the count has drifted 18 points
    rig.run(HOUR)  # growing uncertainty does not matter: the user's value is exact (0)
    assert rig.est.state.soc == pytest.approx(30.0, abs=0.1)
    rig.est.request_ocv()
    state = rig.run(HOUR)
    assert state.source is SocSource.OCV
    assert abs(state.soc - 12.0) < 0.5 and state.uncertainty <= 5.0


def test_a_trusted_count_takes_a_better_rest_voltage() -> None:
    """A count whose uncertainty has grown beyond the rested voltage's is replaced by it."""
    drifted = SocState(soc=25.0, source=SocSource.FULL, uncertainty=9.0)
    rig = Rig([TrueString(17.0)], state=drifted)
    state = rig.run(HOUR)
    assert state.source is SocSource.OCV
    assert abs(state.soc - 17.0) < 0.5
    assert state.uncertainty < 3.0


def test_the_slope_threshold_and_error_bound() -> None:
    """Wherever the correction applies, a voltage off by ocv_voltage_error_v gives an SoC
    off by at most the reported uncertainty, which is at most ocv_max_error; it applies only
    where the curve's slope is at least ocv_voltage_error_v / ocv_max_error (2 mV per %)."""
    cfg = SocSettings()
    e = cfg.ocv_voltage_error_v
    threshold = 1000.0 * e / cfg.ocv_max_error  # mV per %
    assert threshold == pytest.approx(2.0)
    est = SocEstimator(cfg, LFP)
    used = []
    for truth in [x / 2 for x in range(0, 201)]:
        v = LFP.ocv.at(truth)
        error = est._ocv_error(v, e)
        if error > cfg.ocv_max_error:
            continue
        used.append(truth)
        for off in (-e, e):
            assert abs(LFP.soc_from_ocv(v + off) - truth) <= error + 1e-9
    # The cited curve is usable at the ends and around 15-35 % and 70-75 %, never in the
    # middle of the plateau.
    assert 5.0 in used and 20.0 in used and 99.5 in used
    assert not any(40.0 <= u <= 65.0 or 80.0 <= u <= 97.0 for u in used)
    # Inside a segment steeper than the threshold by half again, it is used.
    for (x0, v0), (x1, v1) in itertools.pairwise(LFP_OCV_POINTS):
        slope = 1000.0 * (v1 - v0) / (x1 - x0)
        mid = 0.5 * (v0 + v1)
        if slope >= 1.5 * threshold and v1 - mid >= e and mid - v0 >= e:
            assert est._ocv_error(mid, e) <= cfg.ocv_max_error
    assert est._ocv_error(LFP.ocv.at(50.0), e) > 15.0
    assert est._ocv_error(LFP.ocv.at(50.0), 1.0) == MAX_UNCERTAINTY
