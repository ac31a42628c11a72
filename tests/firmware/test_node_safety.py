"""Node safety, round two (issue 12): one test per finding, named after it.

Each test failed on the node before the fix. Simulated time throughout; the tick-wrap tests
run the node on MicroPython's own tick arithmetic (period 2**30 ms, see tests/firmware/ticks.py).
"""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bms import e2e, protect
from bms.can import Frame
from bms.can.loopback import LoopbackBus
from bms.can.mcp2515 import Mcp2515Bus
from bms.can.pyb_can import PybCanBus
from bms.config import load_config, load_config_file
from bms.hw import NOT_AVAILABLE
from bms.hw.sim import SimHardware
from bms.lifecycle import ACTIVE, TRIPPED
from bms.node import Node
from bms.tripstore import PERSISTENT_KINDS, FileTripStore
from tests.firmware import ticks
from tests.firmware.fake_mcp2515 import FakeIntPin, FakeMcp2515
from tests.firmware.harness import Bench
from tests.firmware.test_can import FakePybCan

CYCLE = 50
VOLTAGE_DEBOUNCE = 200
TEMPERATURE_DEBOUNCE = 1000


def active_bench(bench: Callable[..., Bench], **kwargs: Any) -> Bench:
    """A node past Init with its relay closed on the gateway's request."""
    b = bench(request="Close", **kwargs)
    b.run_until(lambda: b.node.state == ACTIVE, 5000)
    b.step()
    assert b.hw.relay_closed
    return b


def share_bound_ms(debounce_ms: int, bad: int, good: int) -> int:
    """docs/safety.md: bad in a share p > 1/5 of a stretch trips within 4 D / (5 p - 1)."""
    p = bad / (bad + good)
    return int(4 * debounce_ms / (5 * p - 1))


# -- Finding 1: debounce defeated by alternation ---------------------------------------------


@pytest.mark.parametrize(("bad", "good"), [(1, 1), (2, 2), (3, 3), (4, 4), (1, 2)])
def test_debounce_defeated_by_alternation_trips_within_the_share_bound(
    bench: Callable[..., Bench], bad: int, good: int
) -> None:
    """3.70 V / 3.60 V against a 3.65 V fault level, bad cycles / good cycles: trips."""
    b = active_bench(bench)
    onset = b.now
    period = (bad + good) * CYCLE
    limit = share_bound_ms(VOLTAGE_DEBOUNCE, bad, good) + period + CYCLE
    while b.hw.relay_drive:
        for k in range(bad + good):
            b.set_cell(0, 3700 if k < bad else 3600)
            b.step()
        assert b.now - onset <= limit, "relay still closed after the documented bound"
    assert b.node.faults & protect.CELL_OVER_VOLTAGE
    assert b.node.state == TRIPPED


def test_debounce_defeated_by_an_unreadable_cell_alternating_trips_as_if_steady(
    bench: Callable[..., Bench],
) -> None:
    """3.80 V / unreadable every other cycle: the unreadable sample is never good."""
    b = active_bench(bench)
    onset = b.now
    while b.hw.relay_drive:
        b.set_cell(0, 3800 if (b.now - onset) % 100 == 0 else NOT_AVAILABLE)
        b.step()
        assert b.now - onset <= VOLTAGE_DEBOUNCE + 2 * CYCLE
    assert b.node.faults & protect.CELL_OVER_VOLTAGE


def test_debounce_defeated_by_an_unreadable_thermistor_trips_as_if_steady(
    bench: Callable[..., Bench],
) -> None:
    """70 degC / unreadable while discharging 50 A: DischargeOverTemp within its debounce."""
    b = active_bench(bench)
    b.hw.current_ma = -50_000
    onset = b.now
    while not b.node.faults & protect.DISCHARGE_OVER_TEMP:
        b.hw.temp_dc[2] = 700 if (b.now - onset) % 100 == 0 else NOT_AVAILABLE
        b.step()
        assert b.now - onset <= TEMPERATURE_DEBOUNCE + 2 * CYCLE
    assert not b.hw.relay_drive


def test_debounce_an_intermittent_thermistor_is_a_sensor_fault(
    bench: Callable[..., Bench],
) -> None:
    """A thermistor readable only every other cycle is a sensor fault, not a healthy one."""
    b = active_bench(bench)
    onset = b.now
    while b.hw.relay_drive:
        b.hw.temp_dc[0] = NOT_AVAILABLE if (b.now - onset) % 100 == 0 else 250
        b.step()
        assert b.now - onset <= share_bound_ms(500, 1, 1) + 2 * CYCLE
    assert b.node.faults & protect.SENSOR_FAULT


def test_debounce_keeps_its_hysteresis_near_the_threshold(bench: Callable[..., Bench]) -> None:
    """A clean value just inside the limit never trips; one hovering across it switches once."""
    b = active_bench(bench)
    for k in range(400):
        b.set_cell(0, 3640 + (k % 3) * 4)  # 3640..3648 mV, below 3650
        b.step()
    assert b.node.faults == 0 and b.hw.relay_drive
    switches = b.hw.relay_switches
    for k in range(400):
        b.set_cell(0, 3645 if k % 2 else 3655)
        b.step()
    assert b.node.faults & protect.CELL_OVER_VOLTAGE
    assert b.hw.relay_switches == switches + 1  # opened once, no chatter


# -- Also: the open-wire hook of the cell-monitor interface ----------------------------------


def test_open_wire_reported_by_the_cell_monitor_is_a_sensor_fault(
    bench: Callable[..., Bench],
) -> None:
    """A cell on an open sense wire reads a plausible lie: the node does not trust it."""
    b = active_bench(bench)
    b.hw.open_wire = 1 << 4  # cell 5
    b.run(600)
    assert b.node.faults & protect.SENSOR_FAULT
    assert not b.hw.relay_drive


# -- Finding 2: tick wrap ------------------------------------------------------------------

WRAPS = 3.2  # run this many tick periods (2**30 ms each) past the fault
COARSE_MS = 10 * 60 * 1000  # one node cycle every 10 minutes while the days go by


def tick_step(b: Bench, advance_ms: int) -> None:
    """One node cycle at the bench's time on the wrapping tick counter, then advance."""
    b._gateway_duties()
    b.node.step(b.now & ticks.MASK)
    while b.bus.take(b._frame):
        pass
    b.now += advance_ms


def tick_run(b: Bench, ms: int, advance_ms: int = CYCLE) -> None:
    end = b.now + ms
    while b.now < end:
        tick_step(b, advance_ms)


def test_tick_wrap_a_hung_monitor_stays_a_sensor_fault_and_never_recloses(
    bench: Callable[..., Bench], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cell monitor hung for weeks: stale for good, no reset or auto-reclose closes."""
    with ticks.micropython_ticks(monkeypatch):
        b = bench(request="Close", settings={"auto_reclose_ms": 10_000})
        b.now = (ticks.PERIOD - 60_000) // 1000 * 1000  # the counter wraps a minute after start
        tick_run(b, 3000)
        assert b.node.state == ACTIVE
        b.hw.fresh = False
        tick_run(b, 2000)
        assert b.node.faults & protect.SENSOR_FAULT and not b.hw.relay_drive
        end = b.now + int(WRAPS * ticks.PERIOD)
        while b.now < end:
            b.reset ^= 1  # the gateway keeps trying to reset
            tick_step(b, COARSE_MS)
            assert b.node.faults & protect.SENSOR_FAULT, f"cleared after {b.now} ms"
            assert not b.hw.relay_drive
        b.reset = 0
        for _ in range(20):  # cycles on time again, resets and auto-reclose keep trying
            b.reset ^= 1
            tick_run(b, 1000)
            assert b.node.faults & protect.SENSOR_FAULT and not b.hw.relay_drive


def test_tick_wrap_comm_loss_stays_while_the_gateway_is_silent(
    bench: Callable[..., Bench], monkeypatch: pytest.MonkeyPatch
) -> None:
    """CommLoss (and the forgotten relay request) last as long as the silence, past wraps."""
    with ticks.micropython_ticks(monkeypatch):
        b = bench(request="Close")
        b.now = (ticks.PERIOD - 60_000) // 1000 * 1000  # gateway duties run on whole seconds
        tick_run(b, 3000)
        assert b.node.state == ACTIVE
        b.heartbeat = False
        b.request = None
        tick_run(b, 6000)
        assert b.node.warnings & protect.COMM_LOSS
        end = b.now + int(WRAPS * ticks.PERIOD)
        while b.now < end:
            tick_step(b, COARSE_MS)
            assert b.node.warnings & protect.COMM_LOSS, f"CommLoss gone after {b.now} ms"


def test_tick_wrap_a_gateway_never_heard_stays_comm_loss(
    bench: Callable[..., Bench], monkeypatch: pytest.MonkeyPatch
) -> None:
    with ticks.micropython_ticks(monkeypatch):
        b = bench(heartbeat=False)
        b.now = (ticks.PERIOD - 60_000) // 1000 * 1000  # gateway duties run on whole seconds
        tick_run(b, 6000)
        assert b.node.warnings & protect.COMM_LOSS
        end = b.now + int(WRAPS * ticks.PERIOD)
        while b.now < end:
            tick_step(b, COARSE_MS)
            assert b.node.warnings & protect.COMM_LOSS, f"CommLoss gone after {b.now} ms"


# -- Finding 3: unbounded auto-reclose ---------------------------------------------------------


def test_unbounded_auto_reclose_is_limited_per_hour_then_latched(
    bench: Callable[..., Bench],
) -> None:
    """120 A against a 100 A limit for 10 minutes: at most auto_reclose_per_hour (3)
    recloses, then latched until a reset, whatever the hour does."""
    b = active_bench(bench, settings={"auto_reclose_ms": 5000})
    switches = b.hw.relay_switches
    closes = 0
    closed = b.hw.relay_drive
    for _ in range(10 * 60 * 1000 // CYCLE):
        b.hw.current_ma = 120_000 if b.hw.relay_closed else 0  # the load, through the relay
        b.step()
        if b.hw.relay_drive and not closed:
            closes += 1
        closed = b.hw.relay_drive
    assert closes == 3
    assert b.hw.relay_switches - switches == 1 + 2 * 3
    assert b.node.state == TRIPPED and b.node.trip_cleared  # clear, latched
    b.hw.current_ma = 0
    b.run(61 * 60 * 1000)  # past the hour of the recloses: still latched, no auto-reclose
    assert b.node.state == TRIPPED and not b.hw.relay_drive
    b.reset = 1  # a user reset clears the latch
    b.run(1000)
    assert b.node.state == ACTIVE and b.hw.relay_drive


def test_unbounded_auto_reclose_delay_below_five_seconds_is_a_config_error(
    bench: Callable[..., Bench],
) -> None:
    b = bench(settings={"auto_reclose_ms": 1000})
    assert b.node.config_error is not None
    assert "auto_reclose_ms" in b.node.config_error


# -- Finding 7: an internal error switches every bleed output off ----------------------------


def test_internal_error_switches_the_balancer_outputs_off(bench: Callable[..., Bench]) -> None:
    """A monitor raising something other than OSError every cycle: relay open, bleed off."""
    b = bench(request="Close", balance_cells=0b10010, balance_floor_v=3.2)
    b.set_cells(3400)
    b.settle()
    b.run(1000)
    assert b.hw.balance_mask == 0b10010 and b.hw.relay_drive

    def broken(now_ms: int) -> bool:
        raise ValueError("driver bug")

    b.hw.sample = broken  # type: ignore[method-assign]
    b.step()
    assert not b.hw.relay_drive
    assert b.hw.balance_mask == 0
    b.hw.balance_words[0] = 0b10010  # the monitor chip switched them on again by itself
    b.run(500)
    assert b.hw.balance_mask == 0, "an error cycle must switch every output off again"
    assert b.node.faults & protect.INTERNAL


# -- Finding 9: no valid node id means listen-only, never another node's identifiers ---------


def test_unreadable_config_file_listens_only_with_the_relay_open(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unreadable /bms.json: ConfigError, relay open, nothing sent (node 0 is a real node)."""
    (tmp_path / "bms.json").write_text("{broken")
    for path in (tmp_path / "missing.json", tmp_path / "bms.json"):
        hw = SimHardware()
        bus = LoopbackBus(tx_capacity=64)
        node = Node(load_config_file(str(path)), hw, bus)
        frame = Frame()
        sent = 0
        for t in range(0, 5000, CYCLE):
            node.step(t)
            while bus.take(frame):
                sent += 1
        assert node.config_error is not None
        assert not hw.relay_drive
        assert sent == 0, "transmitted on another node's identifiers"
        assert "no valid node id" in capsys.readouterr().out


def test_config_error_with_a_valid_node_id_still_reports(bench: Callable[..., Bench]) -> None:
    """A broken configuration that names its node id reports ConfigError under that id."""
    b = bench(settings={"node_id": 4, "cells": 80})
    b.run(2000)
    assert b.node.config_error is not None
    assert b.decoded("NodeState")


# -- Finding 10: a late cycle opens the relay; the documented bounds are the code's ----------


def test_late_cycle_beyond_the_deadline_opens_the_relay(bench: Callable[..., Bench]) -> None:
    """A cycle more than cycle_deadline_ms (500 ms) after the last one: Internal fault."""
    b = active_bench(bench)
    b.now += 400  # 450 ms between cycles: late (Internal warning), within the deadline
    b.step()
    assert b.node.warnings & protect.INTERNAL and b.hw.relay_drive
    b.now += 500  # 550 ms between cycles
    b.step()
    assert not b.hw.relay_drive
    assert b.node.faults & protect.INTERNAL
    assert b.node.state == TRIPPED
    b.run(200)
    assert b.node.trip_cleared  # on time again: a reset may close
    b.reset = 1
    b.run(400)
    assert b.node.state == ACTIVE


def test_late_cycle_hung_monitor_bound_is_stale_time_plus_sensor_debounce_plus_a_cycle(
    bench: Callable[..., Bench],
) -> None:
    """docs/safety.md: a hung cell monitor opens the relay within 1000 + 500 + 50 ms."""
    b = active_bench(bench)
    last_fresh = b.now - CYCLE  # the last cycle that had a fresh conversion
    b.hw.fresh = False
    opened = b.run_until(lambda: not b.hw.relay_drive, 3000)
    assert opened - last_fresh <= 1000 + 500 + CYCLE
    assert b.node.faults & protect.SENSOR_FAULT


# -- Finding 11: no protection hangs on one current sensor alone -----------------------------


def charge_unseen(b: Bench, reading_ma: int, mv_per_minute: int, limit_ms: int) -> int:
    """Charge the pack (cells rising) while the current sensor reads reading_ma; returns the
    ms until the relay opened."""
    onset = b.now
    start = b.hw.cell_mv[0]
    while b.hw.relay_drive:
        rise = (b.now - onset) * mv_per_minute // 60_000
        b.set_cells(start + rise)
        b.hw.current_ma = reading_ma
        b.step()
        assert b.now - onset <= limit_ms, "charging on an implausible current reading"
    return b.now - onset


def test_current_sensor_stuck_at_zero_while_charging_cold_opens_the_relay(
    bench: Callable[..., Bench],
) -> None:
    """-10 degC, charging at a current the sensor reads as 0: the voltage trend says charging."""
    b = bench(request="Close")
    for i in range(b.temps):
        b.hw.temp_dc[i] = -100
    b.run_until(lambda: b.node.state == ACTIVE, 5000)
    b.step()
    charge_unseen(b, 0, 30, 60_000 + TEMPERATURE_DEBOUNCE + 2 * CYCLE)
    assert b.node.faults & protect.CHARGE_UNDER_TEMP
    assert b.node.current_check.direction_doubtful


def test_current_sensor_of_the_wrong_polarity_while_charging_hot_opens_the_relay(
    bench: Callable[..., Bench],
) -> None:
    """50 degC (charge limit 45, discharge limit 55), charging 50 A read as -50 A."""
    b = bench(request="Close")
    b.hw.temp_dc[1] = 500
    b.run_until(lambda: b.node.state == ACTIVE, 5000)
    b.step()
    charge_unseen(b, -50_000, 30, 60_000 + TEMPERATURE_DEBOUNCE + 2 * CYCLE)
    assert b.node.faults & protect.CHARGE_OVER_TEMP


def test_current_sensor_offset_at_rest_is_a_sensor_fault(bench: Callable[..., Bench]) -> None:
    """Relay open, the sensor reads 8 A: it cannot be right; the relay never closes on it."""
    b = bench()
    b.hw.current_ma = 8_000  # beyond current_rest_limit_a (5 A)
    b.settle()
    b.request = "Close"
    b.run(3000)
    assert b.node.faults & protect.SENSOR_FAULT
    assert b.hw.relay_switches == 0
    b.hw.current_ma = 100  # within the rest limit: the fault clears
    b.run(3000)
    assert not b.node.faults & protect.SENSOR_FAULT


def test_current_sensor_a_pack_relaxing_after_discharge_does_not_trip(
    bench: Callable[..., Bench],
) -> None:
    """At 25 degC a rising pack with no current trips nothing and keeps balancing allowed."""
    b = active_bench(bench)
    charge_unseen_ms = 3 * 60_000
    start = b.hw.cell_mv[0]
    for k in range(charge_unseen_ms // CYCLE):
        b.set_cells(start + k * CYCLE * 30 // 60_000)
        b.step()
    assert b.hw.relay_drive and b.node.state == ACTIVE
    assert b.node.faults == 0


# -- Finding 12: small things that allocate or mislead after long uptimes ---------------------


def test_small_counters_wrap_before_they_become_long_ints(bench: Callable[..., Bench]) -> None:
    """cycles and tx_frames stay below 2**30 (MicroPython's small ints) for ever."""
    b = bench()
    b.step()
    b.node.cycles = (1 << 30) - 1
    b.node.port.tx_frames = (1 << 30) - 1
    b.run(200)
    assert 0 < b.node.cycles < 10
    assert 0 < b.node.port.tx_frames < 100


def test_small_runner_awaits_micropythons_sleep_ms_directly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No wrapper coroutine per cycle: with asyncio.sleep_ms present the runner uses it."""
    import asyncio  # noqa: PLC0415
    import importlib  # noqa: PLC0415

    from bms import runner  # noqa: PLC0415

    def sleep_ms(ms: int) -> Any:
        return asyncio.sleep(ms / 1000)

    monkeypatch.setattr(asyncio, "sleep_ms", sleep_ms, raising=False)
    try:
        importlib.reload(runner)
        assert runner.run.__defaults__ is not None
        assert runner.run.__defaults__[-1] is sleep_ms
    finally:
        monkeypatch.undo()
        importlib.reload(runner)


# -- Also: a deep-discharge or over-charge trip survives a reboot ------------------------------


def test_a_deep_discharge_trip_survives_a_reboot_until_a_reset(
    bench: Callable[..., Bench], tmp_path: Path
) -> None:
    store = FileTripStore(str(tmp_path / "bms_trip"))
    b = active_bench(bench, settings={"auto_reclose_ms": 5000})
    b.node = Node(b.config, b.hw, b.bus, trip_store=store)  # a board with its flash store
    b.run_until(lambda: b.node.state == ACTIVE, 5000)
    b.set_cell(3, 2400)  # below the 2.5 V fault level
    b.run(1000)
    assert b.node.state == TRIPPED
    b.run(1000)
    assert store.writes == 1, "written once, not every cycle"
    b.set_cell(3, 3000)  # the cell recovers (a charger behind the relay would lift it)
    b.node = Node(b.config, b.hw, b.bus, trip_store=FileTripStore(store.path))  # reboot
    b.run(30_000)  # auto-reclose is on, the gateway asks to close
    assert b.node.state == TRIPPED and not b.hw.relay_drive
    assert b.node.trip_cleared
    b.reset = 1
    b.run(1000)
    assert b.node.state == ACTIVE
    assert FileTripStore(store.path).load() == 0


def test_a_trip_store_that_cannot_be_read_counts_as_tripped(tmp_path: Path) -> None:
    (tmp_path / "bms_trip").write_text("garbage")
    assert FileTripStore(str(tmp_path / "bms_trip")).load() == PERSISTENT_KINDS
    assert PERSISTENT_KINDS == (
        protect.CELL_OVER_VOLTAGE
        | protect.CELL_UNDER_VOLTAGE
        | protect.PACK_OVER_VOLTAGE
        | protect.PACK_UNDER_VOLTAGE
    )


def test_a_trip_store_whose_flash_fails_to_read_counts_as_tripped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review finding: a read error other than "no such file" (EIO) is unknown, so unsafe."""
    import builtins  # noqa: PLC0415
    import errno  # noqa: PLC0415

    path = str(tmp_path / "bms_trip")
    store = FileTripStore(path)
    store.save(protect.CELL_UNDER_VOLTAGE)
    real_open = builtins.open

    def failing(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == path:
            raise OSError(errno.EIO, "flash read error")
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", failing)
    assert store.load() == PERSISTENT_KINDS
    monkeypatch.setattr(builtins, "open", real_open)
    (tmp_path / "bms_trip").unlink()
    assert store.load() == 0  # no file: never tripped


def test_temperature_sensors_that_disagree_are_a_sensor_fault(bench: Callable[..., Bench]) -> None:
    """One sensor reads 12 degC, the others 40 degC: a spread of 28 > 25 degC."""
    b = active_bench(bench)
    for i in range(b.temps):
        b.hw.temp_dc[i] = 400
    b.hw.temp_dc[2] = 120
    opened = b.run_until(lambda: not b.hw.relay_drive, 2000)
    assert b.node.faults & protect.SENSOR_FAULT
    assert opened > 0


# -- Finding 8: start-up: safe outputs, then the watchdog, then everything else ---------------


class StartBoard:
    """A board module for bms.main.start(): records the order of what start() does."""

    def __init__(self, can_failures: int = 0, hardware_fails: bool = False) -> None:
        self.events: list[str] = []
        self.hw = SimHardware()
        self.hw.set_balance([0xFFFF, 0, 0, 0])  # left on by the monitor across a reset
        self.hw.relay_drive = True
        self.bus = LoopbackBus(tx_capacity=256)
        self.can_failures = can_failures
        self.hardware_fails = hardware_fails

    def safe_outputs(self) -> None:
        self.events.append("safe")
        self.hw.set_relay(False, 0)
        self.hw.set_balance([0, 0, 0, 0])

    def hardware(self, config: Any) -> SimHardware:
        self.events.append("hardware")
        if self.hardware_fails:
            raise RuntimeError("cell monitor does not answer")
        return self.hw

    def can_backend(self, config: Any) -> LoopbackBus:
        self.events.append("can")
        if self.can_failures:
            self.can_failures -= 1
            raise OSError(19)
        return self.bus


class StartWatchdog:
    def __init__(self, board: StartBoard, timeout: int) -> None:
        board.events.append(f"watchdog {timeout}")
        self.feeds = 0

    def feed(self) -> None:
        self.feeds += 1


def start_board(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, board: StartBoard
) -> tuple[Any, Path]:
    from bms import main as board_main  # noqa: PLC0415

    module = types.ModuleType("start_board")
    for name in ("safe_outputs", "hardware", "can_backend"):
        setattr(module, name, getattr(board, name))
    monkeypatch.setitem(sys.modules, "start_board", module)
    monkeypatch.setattr(board_main, "WDT", lambda timeout: StartWatchdog(board, timeout))
    monkeypatch.setattr(board_main, "TRIP_PATH", str(tmp_path / "bms_trip"))
    path = tmp_path / "bms.json"
    path.write_text(json.dumps({"node_id": 2, "cycle_ms": 10}))
    return board_main, path


def test_start_up_makes_outputs_safe_then_starts_the_watchdog_then_the_rest(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    board = StartBoard()
    board_main, path = start_board(monkeypatch, tmp_path, board)
    board_main.start(str(path), "start_board", cycles=2)
    assert board.events[:4] == ["safe", "watchdog 5000", "hardware", "can"]


def test_start_up_failure_leaves_outputs_safe_under_the_watchdog(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """board.hardware() raising: outputs off, the watchdog running (it will reset the board)."""
    board = StartBoard(hardware_fails=True)
    board_main, path = start_board(monkeypatch, tmp_path, board)
    with pytest.raises(RuntimeError):
        board_main.start(str(path), "start_board", cycles=2)
    assert board.events[:3] == ["safe", "watchdog 5000", "hardware"]
    assert not board.hw.relay_drive and board.hw.balance_mask == 0


def test_start_up_retries_a_failed_can_controller_with_back_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CAN controller that fails to start twice is retried, then used: the node talks."""
    board = StartBoard(can_failures=2)
    board_main, path = start_board(monkeypatch, tmp_path, board)
    clock = [0]

    def ticks() -> int:
        clock[0] += 10
        return clock[0]

    async def sleep_ms(ms: int) -> None:
        return None

    monkeypatch.setattr(board_main, "ticks_ms", ticks)
    node = board_main.start(str(path), "start_board", cycles=100, clock=ticks, sleep_ms=sleep_ms)
    assert board.events.count("can") == 3
    frame = Frame()
    sent = 0
    while board.bus.take(frame):
        sent += 1
    assert sent > 0, "the node never talked on the controller once it started"
    assert node.port.backend.start_failures == 2
    assert "CAN controller failed" in capsys.readouterr().out


# -- Finding 5: MCP2515 receive overflow (and finding 8/12's MCP2515 items) -------------------


def gateway_burst(db: Any, chip: FakeMcp2515, node_id: int, k: int) -> None:
    """The gateway's burst to a 64-cell node: heartbeat, relay, two balance groups."""
    frames = [
        ("GatewayHeartbeat", 0x120, {"GatewayState": "Running"}),
        (
            "RelayCommand",
            0x110 | node_id,
            {"Request": "Close", "ResetFault": 0, "Freshness": k + 1, "Mac": 0},
        ),
        (
            "BalanceCommand",
            0x160 | node_id,
            {"CellGroup": 0, "BleedCells01To16": 0, "BleedCells17To32": 0x0001},
        ),
        (
            "BalanceCommand",
            0x160 | node_id,
            {"CellGroup": 1, "BleedCells33To48": 0x0001, "BleedCells49To64": 0x8000},
        ),
    ]
    counters: dict[int, int] = {}
    for name, frame_id, signals in frames:
        msg = db.get_message_by_name(name)
        values = {"Crc": 0, "Counter": 0, **signals}
        if name == "BalanceCommand":
            values["BleedFloorVoltage"] = 3.2
        buf = bytearray(msg.encode(values, strict=False))
        counter = (2 * k + counters.get(frame_id, 0)) & 15 if name == "BalanceCommand" else k & 15
        counters[frame_id] = counters.get(frame_id, 0) + 1
        e2e.seal(frame_id, buf, counter)
        assert chip.deliver(frame_id, bytes(buf)), f"{name} lost in the chip"


def test_mcp2515_receive_overflow_a_gateway_burst_loses_no_command_with_the_int_pin(
    moat_db: Any,
) -> None:
    """64 cells, a burst every second for 60 s: both balance groups are applied every time."""
    chip = FakeMcp2515()
    pin = FakeIntPin(chip)
    bus = Mcp2515Bus(chip.spi, chip.cs, int_pin=pin)
    hw = SimHardware(cells=64, temps=4, cell_mv=3400)
    node = Node(load_config({"node_id": 3, "cells": 64}), hw, bus)
    t = 0
    seconds = 0
    high_group_on = 0
    for k in range(60 * 20):
        if k % 20 == 0:
            gateway_burst(moat_db, chip, 3, seconds)
            seconds += 1
        node.step(t)
        t += 50
        if k % 20 == 19 and hw.balance_mask >> 32:
            high_group_on += 1
    assert pin.interrupts >= 4 * 60
    assert node.rejected_commands == 0
    assert high_group_on >= 57, "cells 33..64 never balanced"
    assert hw.balance_mask == (1 << 16) | (1 << 32) | (1 << 63)
    assert bus.rx_overruns == 0


def test_mcp2515_receive_overflow_is_counted_when_the_queue_is_full() -> None:
    chip = FakeMcp2515()
    pin = FakeIntPin(chip)
    bus = Mcp2515Bus(chip.spi, chip.cs, int_pin=pin, rx_queue=4)
    for i in range(6):
        chip.deliver(0x200 + i, bytes(8))
    assert bus.rx_overruns == 2
    frame = Frame()
    got = []
    while bus.recv(frame):
        got.append(frame.id)
    assert got == [0x200, 0x201, 0x202, 0x203]


def test_mcp2515_an_interrupt_during_a_transfer_waits_for_its_end() -> None:
    """The soft IRQ may run between any two bytecodes: it must not split an SPI sequence."""
    chip = FakeMcp2515()
    pin = FakeIntPin(chip)
    bus = Mcp2515Bus(chip.spi, chip.cs, int_pin=pin)
    real_write = chip.spi.write

    def write_then_receive(buf: bytes | bytearray) -> None:
        real_write(buf)
        if buf[0] == 0x40:  # LOAD TX BUFFER: a frame arrives meanwhile
            chip.deliver(0x120, bytes(8))

    chip.spi.write = write_then_receive  # type: ignore[method-assign]
    assert bus.send(0x103, bytes(8), 0)
    assert chip.errors == []
    frame = Frame()
    assert bus.recv(frame) and frame.id == 0x120


def test_mcp2515_waits_for_the_oscillator_after_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    from bms.can import mcp2515  # noqa: PLC0415

    chip = FakeMcp2515()
    events: list[str] = []
    monkeypatch.setattr(mcp2515, "sleep_ms", lambda ms: events.append(f"sleep {ms}"))
    real_end = chip.end

    def end() -> None:
        if chip._tx:
            events.append(f"spi 0x{chip._tx[0]:02X}")
        real_end()

    chip.end = end  # type: ignore[method-assign]
    Mcp2515Bus(chip.spi, chip.cs)
    assert events[:2] == ["spi 0xC0", "sleep 5"]


def test_small_mcp2515_frames_leave_in_the_order_they_were_sent() -> None:
    chip = FakeMcp2515()
    bus = Mcp2515Bus(chip.spi, chip.cs)
    chip.hold_tx = True
    for can_id in (0x101, 0x102, 0x103):
        assert bus.send(can_id, bytes(8), 0)
    chip.release_tx()
    assert [s.can_id for s in chip.sent] == [0x101, 0x102, 0x103]


def test_small_mcp2515_error_counters_are_read_with_the_state() -> None:
    chip = FakeMcp2515()
    bus = Mcp2515Bus(chip.spi, chip.cs)
    chip.regs[0x1C] = 130
    chip.regs[0x1D] = 7
    bus.state()
    assert (bus.tec, bus.rec) == (130, 7)
    node = Node(load_config({}), SimHardware(), bus)
    node.step(0)
    assert (node.port.tec, node.port.rec) == (130, 7)


# -- Finding 6: pyb.CAN: both FIFOs, a full mailbox without an exception ----------------------


def test_pyb_can_a_gateway_burst_is_spread_over_both_fifos() -> None:
    """Heartbeat, relay and two balance groups: none overwritten in a 3-deep FIFO."""
    hw = FakePybCan()
    bus = PybCanBus(hw)
    bus.set_filters([(0x113, 0x7FF, 0), (0x120, 0x7FF, 0), (0x163, 0x7FF, 0)])
    for can_id, first in ((0x120, 1), (0x113, 2), (0x163, 3), (0x163, 4)):
        hw.deliver(can_id, bytes([first]))
    frame = Frame()
    got = []
    while bus.recv(frame):
        got.append((frame.id, frame.data[0]))
    assert sorted(got) == [(0x113, 2), (0x120, 1), (0x163, 3), (0x163, 4)]


def test_pyb_can_full_mailboxes_are_reported_without_an_exception() -> None:
    """The gateway off the bus: mailboxes stay busy; no OSError is raised (it allocates)."""
    hw = FakePybCan()
    bus = PybCanBus(hw)
    node = Node(load_config({}), SimHardware(), bus)
    for t in range(0, 5000, CYCLE):
        node.step(t)
    assert len(hw.mailboxes) == 3
    assert hw.raised == 0
    assert node.port.tx_dropped > 0
    hw.tec = 128
    node.step(5000)
    assert node.port.tec == 128


# -- Finding 4: commands that make the battery less safe are authenticated --------------------

KEY = bytes(range(32))
KEY_HEX = KEY.hex()


def keyed_bench(bench: Callable[..., Bench], **kwargs: Any) -> Bench:
    b = bench(settings={"command_key": KEY_HEX, **kwargs.pop("settings", {})}, **kwargs)
    b.gateway.key = KEY
    return b


def test_forgeable_close_is_rejected_with_a_command_key(bench: Callable[..., Bench]) -> None:
    """The gateway says Open; a forger on the bus says Close with a valid CRC and counter and
    newer freshness, but cannot make the Mac: the relay never closes."""
    b = keyed_bench(bench, request="Open")
    b.settle()
    forger = GatewayPeerOnTheBus(b)
    for _ in range(200):
        forger.close()
        b.step()
        assert not b.hw.relay_drive
    assert b.node.commands.mac_failures > 0
    assert b.node.rejected_commands > 0
    b.request = "Close"  # the genuine gateway closes it
    b.run(600)
    assert b.hw.relay_drive


def test_forgeable_replay_of_recorded_frames_cannot_reset_a_trip(
    bench: Callable[..., Bench],
) -> None:
    """16 frames of a genuine reset recorded, replayed after a later trip: all rejected."""
    b = keyed_bench(bench, request="Close")
    b.settle()
    b.set_cell(0, 3700)
    b.run(500)
    b.set_cell(0, 3300)
    b.run(4000)
    recorded = []
    b.reset = 1  # the genuine reset, recorded by the attacker
    for _ in range(16):
        b.step()
        frame_id, buf = b.gateway.sealed("RelayCommand", {"Request": "Close", "ResetFault": 1})
        recorded.append((frame_id, buf))
    b.reset = 0
    assert b.node.state == ACTIVE
    b.set_cell(0, 3700)  # a new trip
    b.run(500)
    b.set_cell(0, 3300)
    b.run(4000)
    assert b.node.state == TRIPPED and b.node.trip_cleared
    b.request = None  # only the attacker talks to the relay now
    for frame_id, buf in recorded:
        b.bus.inject(frame_id, buf)
        b.step()
    b.run(1000)
    assert b.node.state == TRIPPED and not b.hw.relay_drive


def test_forgeable_genuine_keyed_commands_still_close_and_reset(
    bench: Callable[..., Bench],
) -> None:
    b = keyed_bench(bench, request="Close")
    b.settle()
    b.step()
    assert b.hw.relay_drive
    b.set_cell(0, 3700)
    b.run(500)
    b.set_cell(0, 3300)
    b.run(4000)
    b.reset = 1
    b.run(600)
    assert b.node.state == ACTIVE and b.hw.relay_drive
    assert b.node.commands.mac_failures == 0


def test_forgeable_without_a_key_the_node_says_so_at_start(
    bench: Callable[..., Bench], capsys: pytest.CaptureFixture[str]
) -> None:
    bench()
    assert "not authenticated" in capsys.readouterr().out
    assert load_config({"command_key": "abc"}).error is not None


def test_forgeable_unauthenticated_frames_cannot_walk_the_freshness_to_a_recorded_reset(
    bench: Callable[..., Bench],
) -> None:
    """Review finding: Open frames need no Mac; they must not move the newest Freshness, or a
    forger walks it round to just before a recorded Close+Reset and replays that."""
    b = keyed_bench(bench, request="Close")
    b.settle()
    b.step()
    rec_id, rec = b.gateway.sealed("RelayCommand", {"Request": "Close", "ResetFault": 1})
    recorded_freshness = rec[2] | rec[3] << 8 | rec[4] << 16
    b.run(2000)
    b.request = "Open"
    b.set_cell(0, 3700)
    b.run(500)
    b.set_cell(0, 3300)
    b.run(4000)
    b.request = None  # only the forger talks to the relay now
    assert b.node.state == TRIPPED and b.node.trip_cleared
    commands = b.node.commands
    relay = b.gateway.db.get_message_by_name("RelayCommand")
    newest = commands._freshness
    target = (recorded_freshness - 20) & 0xFFFFFF
    fresh = newest
    for _ in range(40):  # Open frames, each up to 2**23 ahead, round to the target
        fresh = (fresh + min((target - fresh) & 0xFFFFFF, 0x7FFFFF)) & 0xFFFFFF
        values = {"Crc": 0, "Counter": 0, "Request": "Open", "ResetFault": 0}
        buf = bytearray(relay.encode({**values, "Freshness": fresh, "Mac": 0}, strict=True))
        e2e.seal(rec_id, buf, (commands._relay_alive.last + 1) & 0xF)
        b.bus.inject(rec_id, buf)
        b.step()
    assert commands._freshness == newest  # only verified frames move it
    while (commands._relay_alive.last + 1) & 0xF != rec[1] & 0xF:
        values = {"Crc": 0, "Counter": 0, "Request": "Open", "ResetFault": 0}
        buf = bytearray(relay.encode({**values, "Freshness": fresh, "Mac": 0}, strict=True))
        e2e.seal(rec_id, buf, (commands._relay_alive.last + 1) & 0xF)
        b.bus.inject(rec_id, buf)
        b.step()
    b.bus.inject(rec_id, rec)
    b.step()
    b.run(200)
    assert b.node.state == TRIPPED and not b.hw.relay_drive


def test_forgeable_a_gateway_whose_clock_went_back_still_opens_the_relay(
    bench: Callable[..., Bench],
) -> None:
    """Review finding: an Open makes nothing less safe; it is never refused for an old
    Freshness (a gateway restarted with its clock behind, or after a forged newer frame)."""
    b = keyed_bench(bench, request="Close")
    b.settle()
    b.step()
    assert b.hw.relay_drive
    b.gateway.freshness -= 36000  # an hour back, in 100 ms steps
    b.request = "Open"
    b.run(1000)
    assert not b.hw.relay_drive


def test_forgeable_a_wrong_mac_locks_out_less_safe_commands_for_a_while(
    bench: Callable[..., Bench],
) -> None:
    """Guessing the 24-bit Mac costs a lockout per try (MAC_LOCKOUT_MS): even the genuine
    Close is refused right after a wrong Mac, and accepted once the lockout is over."""
    from bms.commands import MAC_LOCKOUT_MS  # noqa: PLC0415

    b = keyed_bench(bench, request="Open")
    b.settle()
    forger = GatewayPeerOnTheBus(b)
    forger.close()
    b.step()
    assert b.node.commands.mac_failures == 1
    b.request = "Close"
    b.run(MAC_LOCKOUT_MS // 2)
    assert not b.hw.relay_drive  # locked out
    b.run(MAC_LOCKOUT_MS)
    assert b.hw.relay_drive


class GatewayPeerOnTheBus:
    """A forger: knows the DBC, the CRC and the counters (it listens), not the key."""

    def __init__(self, b: Bench) -> None:
        self.b = b

    def close(self) -> None:
        b = self.b
        peer = b.gateway
        frame_id, buf = peer.sealed(
            "RelayCommand", {"Request": "Close", "ResetFault": 0, "Mac": 0x123456}
        )
        b.bus.inject(frame_id, buf)
