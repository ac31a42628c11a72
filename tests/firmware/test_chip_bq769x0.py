"""BQ76920/30/40 driver (bms.hw.bq769x0) against a register-level fake (gateway.sim.chips).

Shared with the MicroPython suite (tests/mpy/chips.py): plain asserts, no pytest.
"""

from bms.hw import NOT_AVAILABLE
from bms.hw.board import BoardHardware
from bms.hw.bq769x0 import Bq769x0
from bms.hw.ntc import NtcCurve
from gateway.sim.chips.bq769x0 import FakeBq769x0
from gateway.sim.chips.i2c import FakeI2C
from gateway.sim.chips.ntc import divider_q
from tests.firmware.allocation import assert_no_allocation, raises

CELLS = [3300 + 11 * i for i in range(15)]


def near(got: list[int], want: list[int], tolerance: int) -> bool:
    """Same length, each within tolerance (MicroPython's zip has no strict=)."""
    if len(got) != len(want):
        return False
    return all(abs(got[i] - want[i]) <= tolerance for i in range(len(got)))


def bench(cells: int = 15, temps: int = 3, **kwargs):
    bus = FakeI2C()
    chip = FakeBq769x0()
    bus.attach(chip)
    chip.set_cells(CELLS[:cells], kwargs.get("channels"))
    volts = [divider_q(t, 3435, 10000, 10000, 3300) / 1000 for t in (20.0, 35.0, 50.0)]
    chip.set_ts_volts(volts[:temps])
    chip.set_current(-8_000, 1000)
    curve = NtcCurve(beta=3435, r25_ohm=10000, series_ohm=10000) if temps else None
    bq = Bq769x0(bus, cells=cells, temps=temps, curve=curve, sense_uohm=1000, **kwargs)
    return bus, chip, bq, [0] * cells, [0] * temps


def test_crc_matches_the_datasheets_scheme() -> None:
    # a write to SYS_CTRL2 (0x05) of 0x40 at address 0x08: CRC over 0x10 0x05 0x40 = 0x24;
    # reading it back: CRC over 0x11 0x40 = 0x85 (TI E2E thread 752518, per SLUSBK2)
    _, chip, bq, *_ = bench()
    bq.write_reg(0x05, 0x40)
    assert chip.crc_rejected == 0 and chip.regs[0x05] == 0x40
    assert bq._out[1] == 0x24
    buf = bytearray(2)
    chip.read_mem(0x05, buf)
    assert list(buf) == [0x40, 0x85]


def test_gain_and_offset_come_from_the_chip() -> None:
    _, chip, bq, cells, temps = bench()
    assert bq.gain_uv == chip.gain_uv == 377 and bq.offset_mv == chip.offset_mv == -5
    assert chip.regs[0x0B] == 0x19 and chip.regs[0x04] & 0x18 == 0x18  # CC_CFG, ADC_EN
    chip.convert()
    assert bq.read(cells, temps)
    assert near(cells, CELLS, 1)  # one 377 uV step
    assert abs(bq.read_bus_mv() - sum(CELLS)) <= 8
    assert abs(bq.read_current_ma() + 8_000) <= 9  # 8.44 uV / 1 mOhm steps
    assert near(temps, [200, 350, 500], 2)
    assert not bq.read(cells, temps)  # CC_READY was cleared: no fresh conversion yet


def test_five_cells_on_a_bq76920_with_a_shorted_input() -> None:
    channels = [1, 2, 3, 5]  # 4 cells: VC4 shorted to VC3 as the datasheet wires it
    _, chip, bq, cells, temps = bench(cells=4, temps=1, channels=channels)
    chip.convert()
    assert bq.read(cells, temps)
    assert near(cells, CELLS[:4], 1)
    bq.set_balance([0b1000, 0, 0, 0])  # cell 4 -> input 5
    assert chip.balance_mask == 0b10000


def test_adjacent_cells_are_never_bled_together() -> None:
    _, chip, bq, *_ = bench()
    bq.set_balance([0b0111_1111_1111_1111, 0, 0, 0])  # every cell asked
    assert chip.adjacent_bleeds == 0
    assert chip.balance_mask == 0b101_0101_0101_0101
    assert bq.balance_limited == 7
    bq.set_balance([0b0000_0000_0011_0000, 0, 0, 0])  # cells 5 and 6: across two groups
    assert chip.balance_mask == 0b1_0000


def test_crc_error_and_nack_are_not_available_and_counted() -> None:
    bus, chip, bq, cells, temps = bench()
    chip.convert()
    assert bq.read(cells, temps)
    chip.convert()
    chip.bad_crc = 100
    assert not bq.read(cells, temps)
    assert bq.crc_errors >= 1
    assert cells == [NOT_AVAILABLE] * 15 and temps == [NOT_AVAILABLE] * 3
    assert bq.read_bus_mv() == NOT_AVAILABLE and bq.read_current_ma() == NOT_AVAILABLE
    chip.bad_crc = 0
    bus.nack = True
    assert not bq.read(cells, temps)
    assert bq.errors >= 1 and not bq.ready
    bus.nack = False
    chip.convert()
    assert bq.read(cells, temps)
    assert bq.ready


def test_stuck_conversions_and_device_xready() -> None:
    _, chip, bq, cells, temps = bench(stale_reads=3)
    chip.stuck = True
    for _ in range(3):
        chip.convert()
        assert not bq.read(cells, temps)
    assert bq.stale == 1
    chip.stuck = False
    chip.xready()
    chip.convert()
    assert not bq.read(cells, temps)  # an internal fault: not trusted
    assert bq.xready == 1 and not chip.regs[0] & 0x20
    chip.convert()
    assert bq.read(cells, temps)


def test_fets_are_the_relay_and_the_chip_can_trip_them() -> None:
    bus, chip, bq, *_ = bench()
    hw = BoardHardware(bq, relay_pin=bq.fets, feedback_pin=bq.fets, shunt=bq)
    assert not chip.fets_on
    hw.set_relay(True, 0)
    assert chip.fets_on and chip.regs[0x05] & 0x40  # CC_EN kept
    chip.convert()
    assert hw.sample(0) and hw.relay_closed
    assert abs(hw.pack_mv - sum(CELLS)) <= 8
    chip.trip()
    hw.sample(50)
    assert not hw.relay_closed
    hw.set_relay(False, 100)
    assert not chip.fets_on
    bus.nack = True
    hw.sample(150)
    assert hw.relay_closed  # unknown: the opposite of the drive


def test_bad_parameters_are_refused() -> None:
    bus = FakeI2C()
    assert "cells" in raises(ValueError, Bq769x0, bus, 16)
    assert "NtcCurve" in raises(ValueError, Bq769x0, bus, 15, 2)
    assert "channels" in raises(ValueError, Bq769x0, bus, 3, 0, 0x08, [1, 1, 2])


def test_reading_allocates_nothing() -> None:
    _, chip, bq, cells, temps = bench()

    def reading():
        chip.convert()
        bq.read(cells, temps)
        bq.read_current_ma()

    assert_no_allocation("bq769x0_read", reading)
    assert abs(cells[0] - CELLS[0]) <= 1
