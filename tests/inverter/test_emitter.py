"""Send timing with simulated time."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from gateway.contracts.decision import Alarm, Severity
from gateway.outputs.inverter import Emitter
from tests.inverter.helpers import NAN, limits, profile, report

NORMAL = report()


def sent_at(emitter: Emitter, t: float, r=NORMAL) -> Emitter:
    assert emitter.due(t, r)
    emitter.sent(t, r)
    return emitter


def test_first_report_is_due_at_once() -> None:
    assert Emitter(1.0, 0.1).due(123.0, NORMAL)


def test_unchanged_report_waits_for_the_period() -> None:
    e = sent_at(Emitter(1.0, 0.1), 0.0)
    assert not e.due(0.5, NORMAL)
    assert not e.due(0.999, NORMAL)
    assert e.due(1.0, NORMAL)


def test_simulated_minute_sends_once_per_period() -> None:
    e = Emitter(1.0, 0.2)
    sends = []
    for tick in range(0, 600):  # 60 s of 0.1 s ticks
        now = tick / 10
        if e.due(now, NORMAL):
            e.sent(now, NORMAL)
            sends.append(now)
    assert sends == [float(s) for s in range(60)]


DROPS = {
    "cvl down": {"limits": limits(cvl=55.0)},
    "ccl down": {"limits": limits(ccl=90.0)},
    "cvl invalid": {"limits": limits(cvl=NAN)},
    "dvl invalid": {"limits": limits(dvl=NAN)},
    "alarm appears": {"alarms": {Alarm.HIGH_TEMPERATURE: Severity.WARNING}},
}
STOPS = {
    "ccl to 0": {"limits": limits(ccl=0.0)},
    "dcl to 0": {"limits": limits(dcl=0.0)},
    "ccl invalid": {"limits": limits(ccl=NAN)},
    "charge disabled": {"limits": limits(charge_enable=False)},
    "discharge disabled": {"limits": limits(discharge_enable=False)},
}


@pytest.mark.parametrize("change", DROPS.values(), ids=DROPS.keys())
def test_a_drop_is_sent_at_once_but_not_before_the_min_interval(change) -> None:
    dropped = dataclasses.replace(NORMAL, **change)
    e = sent_at(Emitter(1.0, 0.2), 0.0)
    assert not e.due(0.1, dropped)  # within the minimum interval
    assert e.due(0.2, dropped)
    e.sent(0.2, dropped)
    assert not e.due(0.5, dropped)  # sent: nothing new until the period
    assert e.due(1.2, dropped)


@pytest.mark.parametrize("change", STOPS.values(), ids=STOPS.keys())
def test_a_stop_is_sent_at_once_even_within_the_min_interval(change) -> None:
    stop = dataclasses.replace(NORMAL, **change)
    e = sent_at(Emitter(1.0, 0.2), 0.0)
    assert e.due(0.01, stop)  # a stop does not wait for the minimum interval
    e.sent(0.01, stop)
    assert not e.due(0.02, stop)  # sent: nothing new until the period
    assert not e.due(0.05, NORMAL)  # the way back waits for the period
    assert e.due(1.01, NORMAL)


def test_stops_cannot_storm() -> None:
    # Flapping between stopped and allowed every 10 ms: the increases wait for the period,
    # so each period carries at most the periodic set and one stop.
    e = Emitter(1.0, 0.2)
    stop = dataclasses.replace(NORMAL, limits=limits(ccl=0.0))
    sends = 0
    for tick in range(1000):  # 10 s
        r = stop if tick % 2 else NORMAL
        if e.due(tick / 100, r):
            e.sent(tick / 100, r)
            sends += 1
    assert sends <= 2 * 10 + 1


def test_an_alarm_escalating_is_urgent_and_one_clearing_is_not() -> None:
    warning = report(alarms={Alarm.LOW_TEMPERATURE: Severity.WARNING})
    alarm = report(alarms={Alarm.LOW_TEMPERATURE: Severity.ALARM})
    e = sent_at(Emitter(1.0, 0.1), 0.0, warning)
    assert e.due(0.3, alarm)
    e.sent(0.3, alarm)
    assert not e.due(0.6, warning)
    assert not e.due(0.6, NORMAL)


INCREASES = {
    "cvl up": limits(cvl=56.0),
    "ccl up": limits(ccl=120.0),
    "dcl up": limits(dcl=200.0),
}


@pytest.mark.parametrize("raised", INCREASES.values(), ids=INCREASES.keys())
def test_an_increase_waits_for_the_next_period(raised) -> None:
    e = sent_at(Emitter(1.0, 0.1), 0.0)
    up = report(limits=raised)
    assert not e.due(0.5, up)
    assert e.due(1.0, up)


def test_an_enable_set_again_waits_for_the_next_period() -> None:
    stopped = report(limits=limits(charge_enable=False))
    e = sent_at(Emitter(1.0, 0.1), 0.0, stopped)
    assert not e.due(0.5, NORMAL)


def test_changes_below_the_frame_resolution_are_not_urgent() -> None:
    e = sent_at(Emitter(1.0, 0.1), 0.0)
    assert not e.due(0.5, report(limits=limits(cvl=55.16, ccl=99.95, dcl=149.95)))
    assert e.due(0.5, report(limits=limits(cvl=55.1)))


def test_a_slow_ramp_down_is_sent_each_time_it_moves_a_step() -> None:
    # CVL falling 0.016 V per 0.1 s tick (a float ramp): urgent about every 0.7 s, never
    # more often than the resolution allows.
    e = Emitter(1.0, 0.1)
    sends = []
    for tick in range(100):
        now = tick / 10
        r = report(limits=limits(cvl=55.2 - 0.016 * tick))
        if e.due(now, r):
            e.sent(now, r)
            sends.append(tick)
    gaps = [b - a for a, b in itertools.pairwise(sends)]
    assert min(gaps) >= 6
    assert max(gaps) <= 10


def test_a_clock_stepping_back_makes_it_due() -> None:
    e = sent_at(Emitter(1.0, 0.1), 100.0)
    assert e.due(50.0, NORMAL)
    e.sent(50.0, NORMAL)
    assert not e.due(50.5, NORMAL)
    assert e.due(51.0, NORMAL)


@pytest.mark.parametrize(("period", "min_interval"), [(1.0, 1.5), (1.0, -0.1)])
def test_inconsistent_timing_is_refused(period: float, min_interval: float) -> None:
    with pytest.raises(ValueError, match="min_interval"):
        Emitter(period, min_interval)


@pytest.mark.parametrize(("name", "min_interval"), [("pylontech", 0.1), ("sma-sunny-island", 0.2)])
def test_for_profile(name: str, min_interval: float) -> None:
    e = Emitter.for_profile(profile(name, period=0.8))
    assert (e.period, e.min_interval) == (0.8, min_interval)
