"""The node life-cycle state machine, one test per transition (and per refusal)."""

from __future__ import annotations

from bms import codec
from bms.lifecycle import ACTIVE, CONFIG_ERROR, INIT, STANDBY, TRIPPED, Lifecycle
from bms.protect import CELL_OVER_VOLTAGE

SETTLE = 2000
FAULT = CELL_OVER_VOLTAGE
NONE = codec.RELAY_COMMAND_REQUEST_NONE
OPEN = codec.RELAY_COMMAND_REQUEST_OPEN
CLOSE = codec.RELAY_COMMAND_REQUEST_CLOSE


def machine(state: int = INIT, auto_reclose_ms: int = 0, now: int = 0) -> Lifecycle:
    """A state machine brought into state at time now through its own transitions."""
    m = Lifecycle(SETTLE, auto_reclose_ms, config_ok=True)
    m.update(0, 0, NONE, True, False)
    if state == INIT:
        return m
    m.update(SETTLE, 0, NONE, True, False)
    if state == STANDBY:
        return m
    if state == ACTIVE:
        assert m.update(SETTLE + 50, 0, CLOSE, True, False)
        return m
    assert state == TRIPPED
    m.update(SETTLE + 50, FAULT, NONE, True, False)
    assert m.state == TRIPPED
    return m


def test_init_keeps_the_relay_open_until_the_settle_time_is_over() -> None:
    m = machine(INIT)
    for t in range(0, SETTLE, 50):
        assert not m.update(t, 0, CLOSE, True, False)
        assert m.state == INIT


def test_init_to_standby_when_settled() -> None:
    m = machine(INIT)
    assert not m.update(SETTLE, 0, CLOSE, True, False)
    assert m.state == STANDBY


def test_init_to_tripped_on_a_fault() -> None:
    m = machine(INIT)
    assert not m.update(100, FAULT, NONE, True, False)
    assert m.state == TRIPPED


def test_standby_to_active_on_close_with_the_gateway_link() -> None:
    m = machine(STANDBY)
    assert m.update(SETTLE + 50, 0, CLOSE, True, False)
    assert m.state == ACTIVE


def test_standby_stays_without_the_gateway_link() -> None:
    m = machine(STANDBY)
    assert not m.update(SETTLE + 50, 0, CLOSE, False, False)
    assert m.state == STANDBY


def test_standby_stays_on_open_or_no_request() -> None:
    m = machine(STANDBY)
    assert not m.update(SETTLE + 50, 0, OPEN, True, False)
    assert not m.update(SETTLE + 100, 0, NONE, True, False)
    assert m.state == STANDBY


def test_standby_to_tripped_on_a_fault() -> None:
    m = machine(STANDBY)
    assert not m.update(SETTLE + 50, FAULT, CLOSE, True, False)
    assert m.state == TRIPPED


def test_active_to_standby_on_open() -> None:
    m = machine(ACTIVE)
    assert not m.update(SETTLE + 100, 0, OPEN, True, False)
    assert m.state == STANDBY


def test_active_stays_on_no_request_or_without_the_link() -> None:
    m = machine(ACTIVE)
    assert m.update(SETTLE + 100, 0, NONE, True, False)
    assert m.update(SETTLE + 150, 0, CLOSE, False, False)
    assert m.state == ACTIVE


def test_active_to_tripped_on_a_fault() -> None:
    m = machine(ACTIVE)
    assert not m.update(SETTLE + 100, FAULT, CLOSE, True, False)
    assert m.state == TRIPPED
    assert m.trips == 1


def test_tripped_stays_while_a_fault_is_active_whatever_is_requested() -> None:
    m = machine(TRIPPED)
    for t in range(SETTLE + 100, SETTLE + 5000, 50):
        assert not m.update(t, FAULT, CLOSE, True, True)
        assert m.state == TRIPPED
        assert not m.trip_cleared


def test_tripped_stays_latched_when_the_fault_clears() -> None:
    m = machine(TRIPPED)
    for t in range(SETTLE + 100, SETTLE + 600_000, 1000):
        assert not m.update(t, 0, CLOSE, True, False)
    assert m.state == TRIPPED
    assert m.trip_cleared


def test_tripped_to_standby_on_reset_once_clear() -> None:
    m = machine(TRIPPED)
    assert not m.update(SETTLE + 100, 0, CLOSE, True, True)
    assert m.state == STANDBY
    assert not m.trip_cleared
    assert m.update(SETTLE + 150, 0, CLOSE, True, False)  # the held Close acts next cycle
    assert m.state == ACTIVE


def test_tripped_to_standby_by_auto_reclose_after_its_delay() -> None:
    m = machine(TRIPPED, auto_reclose_ms=10_000)
    m.update(SETTLE + 100, 0, CLOSE, True, False)  # clear from here
    assert not m.update(SETTLE + 10_050, 0, CLOSE, True, False)
    assert m.state == TRIPPED
    m.update(SETTLE + 10_100, 0, CLOSE, True, False)
    assert m.state == STANDBY


def test_auto_reclose_delay_restarts_when_a_fault_returns() -> None:
    m = machine(TRIPPED, auto_reclose_ms=10_000)
    m.update(SETTLE + 100, 0, CLOSE, True, False)
    m.update(SETTLE + 9_000, FAULT, CLOSE, True, False)
    m.update(SETTLE + 9_050, 0, CLOSE, True, False)
    m.update(SETTLE + 19_000, 0, CLOSE, True, False)
    assert m.state == TRIPPED
    m.update(SETTLE + 19_050, 0, CLOSE, True, False)
    assert m.state == STANDBY


def test_a_trip_during_init_returns_to_init_when_reset_early() -> None:
    m = machine(INIT)
    m.update(100, FAULT, NONE, True, False)
    m.update(150, 0, NONE, True, True)
    assert m.state == INIT
    assert not m.update(SETTLE - 50, 0, CLOSE, True, False)
    m.update(SETTLE, 0, CLOSE, True, False)
    assert m.state == STANDBY


def test_config_error_never_closes() -> None:
    m = Lifecycle(SETTLE, 1000, config_ok=False)
    assert m.state == CONFIG_ERROR
    for t in range(0, 20_000, 50):
        assert not m.update(t, 0, CLOSE, True, t % 1000 == 0)
    m.trip()
    assert m.state == CONFIG_ERROR


def test_trip_enters_tripped_from_any_running_state() -> None:
    for state in (INIT, STANDBY, ACTIVE):
        m = machine(state)
        m.trip()
        assert m.state == TRIPPED
        assert m.trips == 1
