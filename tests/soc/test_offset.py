"""Current-sensor offset: learned while a string's relay is open (no current can flow), then
subtracted from its readings (issue 14: a 0.5 A offset drifted the SoC by days)."""

from __future__ import annotations

import json

import pytest

from gateway.contracts.snapshot import ProtectionKind
from gateway.soc import SocSettings, SocState
from tests.soc.rig import Rig, TrueString

HOUR = 3600.0
WEEK = 7 * 24 * HOUR
SLOW = SocSettings(max_step_s=60.0)  # samples a minute apart, all counted


def week_at_rest(rig: Rig) -> float:
    """A week in which no current flows (the sensor still reads its offset); returns the
    error of the counted SoC against the truth, in points."""
    rig.run(WEEK, dt=60.0)
    return rig.est.state.soc - rig.true_soc


def test_an_offset_unlearned_drifts_the_count() -> None:
    rig = Rig([TrueString(50.0, offset_a=0.5)], settings=SLOW)
    rig.est.set_soc(50.0)
    assert week_at_rest(rig) == pytest.approx(50.0)  # 84 Ah counted in: clamped at 100 %


def test_an_open_relay_teaches_the_offset() -> None:
    string = TrueString(50.0, offset_a=0.5, relay_closed=False)
    rig = Rig([string], settings=SLOW)
    rig.est.set_soc(50.0)
    rig.run(1800.0, dt=60.0)  # half an hour open: the node reads 0.5 A, none flows
    assert rig.est.state.offsets[0] == pytest.approx(0.5, abs=0.01)
    assert rig.est.state.soc == pytest.approx(50.0)  # an open string counts nothing
    string.relay_closed = True
    assert abs(week_at_rest(rig)) < 1.0


def test_the_offset_is_per_string_and_survives_a_restart() -> None:
    strings = [TrueString(50.0, offset_a=0.5), TrueString(50.0, offset_a=-0.3)]
    rig = Rig(strings, settings=SLOW)
    rig.est.set_soc(50.0)
    for s in strings:
        s.relay_closed = False
    rig.run(1800.0, dt=60.0)
    offsets = rig.est.state.offsets
    assert offsets == pytest.approx((0.5, -0.3), abs=0.01)
    saved = json.loads(json.dumps(rig.est.state.to_dict()))
    for s in strings:
        s.relay_closed = True
    again = Rig(strings, settings=SLOW, state=SocState.from_dict(saved), t=rig.t)
    again.run(WEEK, dt=60.0)
    assert abs(again.est.state.soc - again.true_soc) < 1.0


def test_a_reading_too_large_for_an_offset_is_not_learned() -> None:
    """5 A on a 100 Ah string with its relay open is a broken sensor (0.05 C > 0.02 C): the
    node reports it; the count is not corrected by it."""
    rig = Rig([TrueString(50.0, offset_a=5.0, relay_closed=False)], settings=SLOW)
    rig.est.set_soc(50.0)
    rig.run(HOUR, dt=60.0)
    assert rig.est.state.offsets == (0.0,)


def test_a_node_that_doubts_its_sensor_teaches_nothing() -> None:
    string = TrueString(50.0, offset_a=0.5, relay_closed=False)
    string.faults = frozenset({ProtectionKind.SENSOR_FAULT})
    rig = Rig([string], settings=SLOW)
    rig.est.set_soc(50.0)
    rig.run(HOUR, dt=60.0)
    assert rig.est.state.offsets == (0.0,)


def test_the_offset_is_learned_only_after_the_relay_settles() -> None:
    rig = Rig([TrueString(50.0, offset_a=0.5, relay_closed=False)], settings=SLOW)
    rig.est.set_soc(50.0)
    rig.run(30.0, dt=5.0)  # opening: contacts and filters settle
    assert rig.est.state.offsets == (0.0,)
