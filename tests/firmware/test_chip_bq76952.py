"""BQ76952 driver (bms.hw.bq76952) against a register-level fake (gateway.sim.chips).

Shared with the MicroPython suite (tests/mpy/chips.py): plain asserts, no pytest.
"""

from bms.hw import NOT_AVAILABLE
from bms.hw.board import BoardHardware
from bms.hw.bq76952 import Bq76952
from bms.hw.crc8 import crc8_of
from gateway.sim.chips.bq76952 import FakeBq76952
from gateway.sim.chips.crc import crc8
from gateway.sim.chips.i2c import FakeI2C
from tests.firmware.allocation import assert_no_allocation, raises

CELLS16 = [3300 + 7 * i for i in range(16)]


def bench(cells: int = 16, temps: int = 3, **kwargs):
    bus = FakeI2C()
    chip = FakeBq76952()
    bus.attach(chip)
    chip.set_cells(CELLS16[:cells], kwargs.get("channels"))
    chip.set_temps([21.5, 23.0, None][:temps] + [25.0] * (3 - temps))
    chip.set_current(-12_345)
    bq = Bq76952(bus, cells=cells, temps=temps, **kwargs)
    return bus, chip, bq


def lists(bq):
    return [0] * bq.cells, [0] * bq.temps


def test_crc8_matches_the_worked_examples_of_sluaa11b() -> None:
    # SLUAA11B section 4: FET_ENABLE write and a VCell 1 read with CRC
    for data, crc in (
        ([0x10, 0x3E, 0x22], 0x63),
        ([0x00], 0x00),
        ([0x10, 0x14, 0x11, 0x68], 0x33),
        ([0x0B], 0x31),
    ):
        assert crc8_of(bytes(data)) == crc  # the driver's table
        c = 0
        for b in data:
            c = crc8(c, b)
        assert c == crc  # the fake's bit-by-bit CRC


def test_a_cell_voltage_read_is_the_transaction_of_sluaa11b() -> None:
    chip = FakeBq76952(address=0x08)
    chip.set_cells([0x0B68] + [3300] * 15)  # 2920 mV on cell 1
    buf = bytearray(4)
    chip.read_mem(0x14, buf)
    assert list(buf) == [0x68, 0x33, 0x0B, 0x31]


def test_setup_takes_the_fets_under_host_control_and_opens_them() -> None:
    _, chip, bq = bench()
    assert bq.ready
    assert chip.fet_en  # FET_ENABLE sent: normal mode
    assert chip.regs[0x66] | chip.regs[0x67] << 8 == 0xF082
    assert 0x0095 in chip.subcommands and chip.regs[0x7F] == 0  # ALL_FETS_OFF


def test_setup_waits_for_a_busy_chip_and_gives_up_on_a_silent_one() -> None:
    bus = FakeI2C()
    chip = FakeBq76952()
    chip.busy = 3  # three polls see 0xFF before the data is there
    bus.attach(chip)
    assert Bq76952(bus).ready
    chip.busy = 50  # never ready within the driver's polls
    bq = Bq76952(bus)
    assert not bq.ready
    cells, temps = lists(bq)
    assert not bq.read(cells, temps) and cells == [NOT_AVAILABLE] * 16
    chip.busy = 0
    chip.scan()
    assert bq.read(cells, temps) and bq.ready


def test_reads_cells_temperatures_current_and_stack() -> None:
    _, chip, bq = bench()
    cells, temps = lists(bq)
    assert not bq.read(cells, temps)  # no scan completed yet
    chip.scan()
    assert bq.read(cells, temps)
    assert cells == CELLS16
    assert abs(temps[0] - 215) <= 1 and abs(temps[1] - 230) <= 1  # 0.1 K, 273.15 rounded
    assert temps[2] < -400  # open TS3: the node's range check makes it a sensor fault
    assert not bq.read(cells, temps)  # FULLSCAN was cleared: this is the same scan
    assert bq.read_current_ma() == -12_345
    assert bq.read_bus_mv() == sum(CELLS16) // 10 * 10
    assert bq.balancer_temp_dc() == 300  # the die


def test_fewer_cells_on_the_vcell_mode_inputs() -> None:
    channels = [1, 2, 3, 4, 5, 6, 7, 16]
    _, chip, bq = bench(cells=8, temps=1, channels=channels)
    cells, temps = lists(bq)
    chip.scan()
    assert bq.read(cells, temps)
    assert cells == CELLS16[:8]
    bq.set_balance([0b1000_0001, 0, 0, 0])  # cells 1 and 8 -> inputs 1 and 16
    assert chip.balance_mask == 0x8001
    assert "channels" in raises(ValueError, Bq76952, FakeI2C(), 4, 3, 0x08, [1, 3, 2, 16])


def test_wrong_crc_is_not_available_and_counted() -> None:
    _, chip, bq = bench()
    cells, temps = lists(bq)
    chip.scan()
    assert bq.read(cells, temps)
    chip.scan()
    before = bq.crc_errors
    chip.bad_crc = 100
    assert not bq.read(cells, temps)
    assert bq.crc_errors > before
    assert cells == [NOT_AVAILABLE] * 16 and temps == [NOT_AVAILABLE] * 3
    chip.bad_crc = 0
    chip.scan()
    bq.read(cells, temps)  # set up again after the failed Alarm Status read
    chip.scan()
    assert bq.read(cells, temps)
    assert cells == CELLS16


def test_nack_is_not_available_counted_and_recovers() -> None:
    bus, chip, bq = bench()
    cells, temps = lists(bq)
    bus.nack = True
    assert not bq.read(cells, temps)
    assert bq.errors >= 1 and not bq.ready
    assert cells == [NOT_AVAILABLE] * 16
    assert bq.read_current_ma() == NOT_AVAILABLE and bq.read_bus_mv() == NOT_AVAILABLE
    assert bq.balancer_temp_dc() == NOT_AVAILABLE
    bus.nack = False
    chip.scan()
    assert bq.read(cells, temps)  # set up again, then read
    assert bq.ready and cells == CELLS16


def test_stuck_scans_stop_the_fresh_flag() -> None:
    _, chip, bq = bench(stale_reads=3)
    cells, temps = lists(bq)
    chip.scan()
    assert bq.read(cells, temps)
    chip.stuck = True
    for _ in range(3):
        chip.scan()
        assert not bq.read(cells, temps)
    assert bq.stale == 1


def test_balancing_through_cb_active_cells_and_retried_after_a_bus_error() -> None:
    bus, chip, bq = bench()
    bq.set_balance([0b0101, 0, 0, 0])
    assert chip.balance_mask == 0b0101
    bus.nack = True
    bq.set_balance([0b1010_0000_0000_0000, 0, 0, 0])  # cells 14 and 16 (input 16)
    assert chip.balance_mask == 0b0101
    bus.nack = False
    cells, temps = lists(bq)
    chip.scan()
    bq.read(cells, temps)  # set-up again, then the pending balance mask
    assert chip.balance_mask == 0b1010_0000_0000_0000


def test_fets_are_the_relay_and_their_status_its_feedback() -> None:
    bus, chip, bq = bench()
    hw = BoardHardware(bq, relay_pin=bq.fets, feedback_pin=bq.fets, shunt=bq)
    chip.scan()
    hw.set_relay(True, 0)
    assert chip.regs[0x7F] == 0x05
    assert hw.sample(0) and hw.relay_closed
    assert hw.current_ma == -12_345 and hw.pack_mv == sum(CELLS16) // 10 * 10
    sent = len(chip.subcommands)
    hw.set_relay(True, 50)  # the node drives every cycle; the chip hears only changes
    assert len(chip.subcommands) == sent
    chip.trip()  # its own over-current protection acts first
    hw.sample(100)
    assert not hw.relay_closed  # the node sees a mismatch
    bus.nack = True
    hw.set_relay(False, 150)
    hw.sample(150)
    assert hw.relay_closed  # unknown: reported as the opposite of the drive
    bus.nack = False
    hw.set_relay(False, 200)  # sent again now that the bus answers
    assert not chip.fets_allowed


def test_reading_allocates_nothing() -> None:
    _, chip, bq = bench()
    cells, temps = lists(bq)

    def reading():
        chip.scan()
        bq.read(cells, temps)
        bq.read_current_ma()
        bq.balancer_temp_dc()

    assert_no_allocation("bq76952_read", reading)
    assert cells == CELLS16
