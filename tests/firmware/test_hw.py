"""Hardware backends: the simulated one and the machine.ADC / machine.Pin one."""

from __future__ import annotations

import pytest

from bms.hw import NOT_AVAILABLE, CellMonitor
from bms.hw.board import BoardHardware
from bms.hw.ina22x import Ina228
from bms.hw.sim import SimHardware
from gateway.sim.chips.i2c import FakeI2C
from gateway.sim.chips.ina22x import FakeIna228


def test_sim_relay_feedback_follows_the_drive_after_its_delay() -> None:
    hw = SimHardware(relay_delay_ms=30)
    hw.set_relay(True, 1000)
    assert hw.relay_drive and not hw.relay_closed
    hw.sample(1020)
    assert not hw.relay_closed
    hw.sample(1030)
    assert hw.relay_closed
    hw.set_relay(False, 2000)
    hw.sample(2029)
    assert hw.relay_closed
    hw.sample(2030)
    assert not hw.relay_closed
    assert hw.relay_switches == 2


def test_sim_relay_faults() -> None:
    hw = SimHardware(relay_delay_ms=0)
    hw.relay_stuck = False
    hw.set_relay(True, 0)
    assert not hw.relay_closed
    hw.relay_stuck = True
    hw.set_relay(False, 10)
    assert hw.relay_closed


def test_sim_balance_mask_and_freshness() -> None:
    hw = SimHardware(cells=64)
    hw.set_balance([0x0001, 0x8000, 0, 0x8000])
    assert hw.balance_mask == 1 | 1 << 31 | 1 << 63
    assert hw.sample(0)
    hw.fresh = False
    assert not hw.sample(50)


class Adc:
    def __init__(self, counts: int) -> None:
        self.counts = counts

    def read_u16(self) -> int:
        return self.counts


class Pin:
    def __init__(self, level: int = 0) -> None:
        self.level = level

    def value(self, v: int | None = None) -> int:
        if v is not None:
            self.level = v
        return self.level


class Monitor:
    cells = 4
    temps = 2

    def __init__(self) -> None:
        self.words: list[int] = []
        self.fresh = True

    def read(self, cell_mv: list[int], temp_dc: list[int]) -> bool:
        cell_mv[:] = [3301, 3302, 3303, 3304]
        temp_dc[:] = [215, NOT_AVAILABLE]
        return self.fresh

    def balancer_temp_dc(self) -> int:
        return 412

    def set_balance(self, words: list[int]) -> None:
        self.words = list(words)


def board(**kwargs: object) -> tuple[BoardHardware, Monitor, Pin, Pin, Adc, Adc]:
    monitor, relay, feedback = Monitor(), Pin(1), Pin(1)
    pack, current = Adc(50_000), Adc(32_768)
    args: dict[str, object] = {
        "relay_pin": relay,
        "feedback_pin": feedback,
        "feedback_active_high": False,
        "pack_adc": pack,
        "pack_uv_per_count": 1007,
        "current_adc": current,
        "current_zero": 32_768,
        "current_ua_per_count": 7629,
    }
    args.update(kwargs)
    hw = BoardHardware(monitor, **args)  # type: ignore[arg-type]
    return hw, monitor, relay, feedback, pack, current


def test_board_starts_with_the_relay_open() -> None:
    _, _, relay, *_ = board()
    assert relay.level == 0


def test_board_scales_pack_voltage_and_current() -> None:
    hw, monitor, _, _, _, current = board()
    assert hw.sample(0)
    assert hw.pack_mv == 50_000 * 1007 // 1000
    assert hw.current_ma == 0
    current.counts = 32_768 + 1000
    hw.sample(50)
    assert hw.current_ma == 1000 * 7629 // 1000  # +7.6 A, charging
    current.counts = 32_768 - 13_108
    hw.sample(100)
    assert hw.current_ma == -13_108 * 7629 // 1000  # about -100 A
    assert hw.cell_mv == [3301, 3302, 3303, 3304]
    assert hw.temp_dc == [215, NOT_AVAILABLE]
    assert hw.balancer_temp_dc == 412
    monitor.fresh = False
    assert not hw.sample(150)


def test_board_saturated_readings_are_not_available() -> None:
    hw, _, _, _, pack, current = board()
    pack.counts = 65_535
    current.counts = 0
    hw.sample(0)
    assert hw.pack_mv == NOT_AVAILABLE
    assert hw.current_ma == NOT_AVAILABLE
    current.counts = 65_535
    hw.sample(50)
    assert hw.current_ma == NOT_AVAILABLE


def test_board_relay_drive_and_active_low_feedback() -> None:
    hw, _, relay, feedback, *_ = board()
    hw.set_relay(True, 0)
    assert relay.level == 1
    feedback.level = 0  # active low: closed
    hw.sample(10)
    assert hw.relay_closed
    hw.set_relay(False, 20)
    assert relay.level == 0
    feedback.level = 1
    hw.sample(30)
    assert not hw.relay_closed


def test_board_without_feedback_mirrors_the_drive_and_active_low_relay() -> None:
    hw, _, relay, *_ = board(feedback_pin=None, relay_active_high=False)
    assert relay.level == 1
    hw.set_relay(True, 0)
    assert relay.level == 0
    hw.sample(10)
    assert hw.relay_closed


def test_board_balancing_goes_to_the_monitor() -> None:
    hw, monitor, *_ = board()
    hw.set_balance([1, 2, 0, 0])
    assert monitor.words == [1, 2, 0, 0]


def test_board_rejects_scales_that_would_overflow_small_ints() -> None:
    with pytest.raises(ValueError, match="scale"):
        board(pack_uv_per_count=20_000)
    with pytest.raises(ValueError, match="adc_samples"):
        board(adc_samples=0)


def test_board_with_a_shunt_monitor_for_current_and_pack_voltage() -> None:
    bus = FakeI2C()
    chip = FakeIna228(address=0x40, shunt_uohm=100)
    bus.attach(chip)
    monitor, relay = Monitor(), Pin(0)
    hw = BoardHardware(monitor, relay_pin=relay, shunt=Ina228(bus, shunt_uohm=100))
    chip.set(-25_000, 52_800)
    chip.convert()
    assert hw.sample(0)
    assert hw.current_ma == -25_000
    assert abs(hw.pack_mv - 52_800) <= 1
    bus.nack = True
    hw.sample(50)
    assert hw.current_ma == NOT_AVAILABLE and hw.pack_mv == NOT_AVAILABLE
    # a pack ADC still measures the pack when there is one
    hw = BoardHardware(
        monitor,
        relay_pin=relay,
        pack_adc=Adc(50_000),
        pack_uv_per_count=1007,
        shunt=Ina228(bus),
    )
    hw.sample(100)
    assert hw.pack_mv == 50_000 * 1007 // 1000
    with pytest.raises(ValueError, match="without a shunt monitor"):
        BoardHardware(monitor, relay_pin=relay, pack_adc=Adc(1), pack_uv_per_count=1007)


def test_board_hardware_reads_the_monitors_open_wire_hook() -> None:
    """bms.hw.CellMonitor's open_wire defaults to 0; a driver's mask reaches hw.open_wire."""
    assert CellMonitor().open_wire() == 0
    hw, *_ = board()
    hw.sample(0)
    assert hw.open_wire == 0  # a monitor without the hook cannot tell

    class OpenWireMonitor(Monitor, CellMonitor):
        def open_wire(self) -> int:
            return 0b0100

    hw = BoardHardware(
        OpenWireMonitor(),
        relay_pin=Pin(),
        pack_adc=Adc(50_000),
        pack_uv_per_count=1007,
        current_adc=Adc(32_768),
        current_zero=32_768,
        current_ua_per_count=7629,
    )
    hw.sample(0)
    assert hw.open_wire == 0b0100
