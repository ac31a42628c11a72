"""The saved SoC state: the new fields round-trip, and a file of the version before loads."""

from __future__ import annotations

import json

import pytest

from gateway.contracts.chemistry import LFP
from gateway.soc import SocEstimator, SocSettings, SocSource, SocState
from gateway.soc.state import MAX_UNCERTAINTY
from tests.soc.rig import Rig, TrueString

# A state file as version 1 wrote it (one SoC for the battery, a capacity measurement running
# from the last 100 % point).
V1 = {
    "version": 1,
    "soc": 72.5,
    "source": "full",
    "health": 0.93,
    "cycles": 41.5,
    "since_full": 0.25,
    "uncounted_s": 30.0,
    "learned": 4,
    "last_full": 1.75e9,
    "last_empty": None,
}


def test_a_version_1_file_loads_and_counts_on() -> None:
    state = SocState.from_dict(json.loads(json.dumps(V1)))
    assert (state.soc, state.source, state.health, state.cycles, state.learned) == (
        72.5,
        SocSource.FULL,
        0.93,
        41.5,
        4,
    )
    assert state.trusted and state.uncertainty == 1.0
    # The measurement from full goes on: 25 % of rated out since the 100 % point.
    assert state.anchor_soc == 100.0 and state.since_anchor == -0.25
    assert state.strings == () and state.offsets == ()
    # Two strings: both start from the battery's SoC; the new file is version 2.
    rig = Rig([TrueString(72.5), TrueString(72.5)], state=state)
    rig.run(60.0)
    assert rig.est.state.strings == pytest.approx((72.5, 72.5))
    assert SocState.from_dict(rig.est.state.to_dict()) == rig.est.state
    assert rig.est.state.to_dict()["version"] == 2


@pytest.mark.parametrize(
    ("source", "trusted", "uncertainty"),
    [("ocv", True, 20.0), ("estimate", False, MAX_UNCERTAINTY), ("user", True, 0.0)],
)
def test_a_version_1_value_gets_the_uncertainty_it_deserves(
    source: str, trusted: bool, uncertainty: float
) -> None:
    """Version 1 trusted a rested voltage on the flat plateau: such a value is rough."""
    state = SocState.from_dict(V1 | {"source": source, "since_full": None})
    assert state.trusted is trusted and state.uncertainty == uncertainty
    assert state.anchor_soc is None


def test_a_version_1_file_with_garbage_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"SoC state.*since_full"):
        SocState.from_dict(V1 | {"since_full": "x"})
    with pytest.raises(ValueError, match=r"SoC state.*unknown key"):
        SocState.from_dict(V1 | {"strings": []})


def test_a_changed_topology_starts_every_string_from_the_battery() -> None:
    saved = SocState(soc=60.0, source=SocSource.FULL, uncertainty=1.0, strings=(80.0, 40.0))
    saved = SocState.from_dict(saved.to_dict() | {"offsets": [0.5, 0.2]})
    est = SocEstimator(SocSettings(), LFP, saved)
    rig = Rig([TrueString(60.0)] * 3)
    rig.est = est
    rig.run(10.0)
    assert est.state.strings == pytest.approx((60.0,) * 3)
    assert est.state.offsets == (0.0,) * 3
