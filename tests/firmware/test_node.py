"""Whole-node behaviour: the headline safety scenario, reboots, internal errors."""

from __future__ import annotations

import time
from collections.abc import Callable

from bms import protect
from bms.can import Frame
from bms.lifecycle import ACTIVE, INIT, STANDBY, TRIPPED
from bms.node import Node
from tests.firmware.harness import Bench

HOUR_MS = 3_600_000


def test_gateway_silent_for_an_hour_still_protects(bench: Callable[..., Bench]) -> None:
    """The required headline test: no gateway for an hour, then a cell over its fault limit."""
    b = bench(request="Close")
    b.settle()
    assert b.node.state == ACTIVE
    b.heartbeat = False
    b.request = None
    node, hw, bus, frame = b.node, b.hw, b.bus, Frame()
    started = time.perf_counter()
    end = b.now + HOUR_MS
    while b.now < end:  # a lean loop: 72 000 cycles
        node.step(b.now)
        while bus.take(frame):
            pass
        assert hw.relay_drive  # comm loss keeps the relay by default
        b.now += b.cycle_ms
    assert time.perf_counter() - started < 30
    assert node.warnings & protect.COMM_LOSS
    assert node.state == ACTIVE

    onset = b.now
    b.set_cell(9, 3700)  # cell 10 above its 3650 mV fault limit
    opened = b.run_until(lambda: not hw.relay_drive, 5000)
    assert opened - onset <= b.config.debounce_voltage_ms + b.cycle_ms
    assert opened - onset >= b.config.debounce_voltage_ms
    b.run(600_000)  # and it stays open
    assert not hw.relay_drive and not hw.relay_closed
    assert node.state == TRIPPED
    state = b.last("NodeState")
    assert state["FaultCellOverVoltage"] == "Active"
    assert state["GatewayLink"] == "Lost"


def test_reboot_opens_the_relay_and_settles_again(bench: Callable[..., Bench]) -> None:
    b = bench(request="Close")
    b.settle()
    assert b.hw.relay_drive
    b.node = Node(b.config, b.hw, b.bus)  # same hardware, new node
    b.step()
    assert not b.hw.relay_drive
    assert b.node.state == INIT
    b.run(b.config.settle_ms - 100)
    assert not b.hw.relay_drive
    b.run(200)
    assert b.node.state == ACTIVE  # the gateway keeps asking for Close


def test_reboot_switches_the_balancer_outputs_off(bench: Callable[..., Bench]) -> None:
    b = bench(request="Close", balance_cells=0b110, balance_floor_v=3.0)
    b.set_cells(3400)
    b.settle()
    b.run(1000)
    assert b.hw.balance_mask == 0b110
    b.node = Node(b.config, b.hw, b.bus)
    b.balance_cells = None
    b.step()
    assert b.hw.balance_mask == 0


def test_a_fault_present_at_boot_trips_before_the_relay_may_close(
    bench: Callable[..., Bench],
) -> None:
    b = bench(request="Close")
    b.hw.temp_dc[0] = 600
    b.run(10_000)
    assert b.node.state == TRIPPED
    assert b.hw.relay_switches == 0


def test_an_internal_error_opens_the_relay_and_latches(bench: Callable[..., Bench]) -> None:
    b = bench(request="Close", reset=1)
    b.settle()
    assert b.hw.relay_drive

    def broken(now_ms: int) -> bool:
        raise ZeroDivisionError("a bug")

    b.hw.sample = broken  # type: ignore[method-assign]
    b.step()
    assert not b.hw.relay_drive
    assert b.node.faults & protect.INTERNAL
    assert b.node.state == TRIPPED
    assert "ZeroDivisionError" in str(b.node.error)
    del b.hw.sample  # the bug goes away; the Internal fault stays until a reboot
    b.run(5000)
    assert b.node.state == TRIPPED and not b.hw.relay_drive
    assert b.last("NodeState")["FaultInternal"] == "Active"


def test_a_cell_monitor_bus_error_counts_as_stale_data(bench: Callable[..., Bench]) -> None:
    b = bench(request="Close")
    b.settle()
    real = b.hw.sample

    def flaky(now_ms: int) -> bool:
        real(now_ms)
        raise OSError(5)

    b.hw.sample = flaky  # type: ignore[method-assign]
    b.run(900)
    assert b.node.state == ACTIVE  # within sensor_stale_ms
    b.run(1000)
    assert b.node.faults & protect.SENSOR_FAULT
    assert b.node.error is None


def test_open_request_opens_and_close_closes_again(bench: Callable[..., Bench]) -> None:
    b = bench(request="Close")
    b.settle()
    b.request = "Open"
    b.run(250)
    assert b.node.state == STANDBY and not b.hw.relay_drive
    b.request = "Close"
    b.run(250)
    assert b.node.state == ACTIVE and b.hw.relay_drive
