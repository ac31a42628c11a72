"""The 0x305 keepalive watch with simulated time."""

from __future__ import annotations

import pytest

from gateway.contracts.decision import Alarm, Severity
from gateway.outputs.inverter import InverterSettings, KeepaliveStatus, KeepaliveWatch

STARTING, OK, MISSING = KeepaliveStatus.STARTING, KeepaliveStatus.OK, KeepaliveStatus.MISSING


def test_start_up_grace_then_missing() -> None:
    w = KeepaliveWatch(start=1000.0, timeout=10.0, startup_grace=60.0)
    assert w.status(1000.0) is STARTING
    assert w.status(1059.9) is STARTING
    assert w.alarms(1059.9) == {}
    assert w.status(1060.0) is MISSING
    assert w.alarms(1060.0) == {Alarm.INVERTER_MISSING: Severity.ALARM}


def test_grace_shorter_than_the_timeout_still_waits_a_timeout() -> None:
    w = KeepaliveWatch(start=0.0, timeout=10.0, startup_grace=0.0)
    assert w.status(9.9) is STARTING
    assert w.status(10.0) is MISSING


def test_keepalives_timeout_and_recovery() -> None:
    w = KeepaliveWatch(start=0.0, timeout=10.0, startup_grace=60.0)
    w.on_keepalive(5.0)
    assert w.status(5.0) is OK
    assert w.status(14.9) is OK  # the grace no longer applies once it has been seen
    assert w.status(15.0) is MISSING
    assert w.alarms(15.0) == {Alarm.INVERTER_MISSING: Severity.ALARM}
    w.on_keepalive(20.0)
    assert w.status(20.0) is OK
    assert w.alarms(20.0) == {}


def test_regular_keepalives_stay_ok() -> None:
    w = KeepaliveWatch(start=0.0, timeout=3.0, startup_grace=0.0)
    for second in range(100):
        w.on_keepalive(float(second))
        assert w.status(second + 0.9) is OK


def test_missing_as_warning() -> None:
    w = KeepaliveWatch(start=0.0, timeout=10.0, startup_grace=0.0, missing_as_warning=True)
    assert w.alarms(10.0) == {Alarm.INVERTER_MISSING: Severity.WARNING}


def test_a_clock_stepping_back_restarts_the_timeout() -> None:
    w = KeepaliveWatch(start=0.0, timeout=10.0, startup_grace=0.0)
    w.on_keepalive(1000.0)
    assert w.status(500.0) is OK  # jumped back: counted from now
    assert w.status(509.9) is OK
    assert w.status(510.0) is MISSING


def test_a_clock_stepping_back_during_start_up_restarts_the_grace() -> None:
    w = KeepaliveWatch(start=1000.0, timeout=10.0, startup_grace=60.0)
    assert w.status(10.0) is STARTING
    assert w.status(69.9) is STARTING
    assert w.status(70.0) is MISSING


@pytest.mark.parametrize(("timeout", "grace"), [(0.0, 60.0), (10.0, -1.0)])
def test_bad_timing_is_refused(timeout: float, grace: float) -> None:
    with pytest.raises(ValueError):
        KeepaliveWatch(start=0.0, timeout=timeout, startup_grace=grace)


def test_from_settings() -> None:
    settings = InverterSettings(keepalive_timeout=5.0, startup_grace=20.0, missing_as_warning=True)
    w = KeepaliveWatch.from_settings(settings, start=0.0)
    assert w.status(19.9) is STARTING
    assert w.alarms(20.0) == {Alarm.INVERTER_MISSING: Severity.WARNING}
    w.on_keepalive(30.0)
    assert w.status(34.9) is OK
    assert w.status(35.0) is MISSING


def test_an_unwatched_inverter_is_never_missing() -> None:
    w = KeepaliveWatch.from_settings(InverterSettings(watch_keepalive=False), start=0.0)
    for now in (0.0, 100.0, 10_000.0):
        assert w.status(now) is KeepaliveStatus.OFF
        assert w.alarms(now) == {}
