"""INA226 / INA228 drivers (bms.hw.ina22x) against register-level fakes (gateway.sim.chips).

Shared with the MicroPython suite (tests/mpy/chips.py): plain asserts, no pytest.
"""

from bms.hw import NOT_AVAILABLE
from bms.hw.ina22x import Ina226, Ina228
from gateway.sim.chips.i2c import FakeI2C
from gateway.sim.chips.ina22x import FakeIna226, FakeIna228
from tests.firmware.allocation import assert_no_allocation, raises


def bench(kind: str, **kwargs):
    bus = FakeI2C()
    if kind == "226":
        chip = FakeIna226(address=0x41, shunt_uohm=500)
        bus.attach(chip)
        return bus, chip, Ina226(bus, address=0x41, shunt_uohm=500, **kwargs)
    chip = FakeIna228(address=0x40, shunt_uohm=100)
    bus.attach(chip)
    return bus, chip, Ina228(bus, address=0x40, shunt_uohm=100, **kwargs)


def test_ina226_configures_and_reads_current_and_voltage() -> None:
    _, chip, shunt = bench("226")
    assert shunt.ready
    assert chip.regs[0x00] == 0x4527  # averages 16, 1.1 ms conversions, continuous
    chip.set(-42_000, 26_400)  # 42 A discharge at 26.4 V
    chip.convert()
    assert shunt.read_current_ma() == -42_000
    assert shunt.read_bus_mv() == 26_400
    chip.set(1_235, 27_001)
    chip.convert()
    assert shunt.read_current_ma() == 1_235 * 500 // 2500 * 2500 // 500  # 2.5 uV steps
    assert abs(shunt.read_bus_mv() - 27_001) <= 2


def test_ina228_both_ranges_and_a_48_volt_bus() -> None:
    _, chip, shunt = bench("228")
    assert chip.regs[0x01] == 0xFB42
    chip.set(150_000, 53_600)  # 150 A charge at 53.6 V: 15 mV across 100 uOhm
    chip.convert()
    assert shunt.read_current_ma() == 150_000
    assert abs(shunt.read_bus_mv() - 53_600) <= 1
    chip.set(-3_333, 51_000)
    chip.convert()
    assert abs(shunt.read_current_ma() + 3_333) <= 4  # 312.5 nV / 100 uOhm = 3.1 mA steps
    _, chip, low = bench("228", low_range=True)
    assert chip.regs[0x00] & 0x0010
    chip.set(-3_333, 51_000)
    chip.convert()
    assert abs(low.read_current_ma() + 3_333) <= 1


def test_bus_error_is_not_available_counted_and_recovers() -> None:
    for kind in ("226", "228"):
        bus, chip, shunt = bench(kind)
        chip.set(5_000, 25_000)
        chip.convert()
        bus.nack = True
        assert shunt.read_current_ma() == NOT_AVAILABLE
        assert shunt.read_bus_mv() == NOT_AVAILABLE
        assert shunt.errors >= 2 and not shunt.ready
        bus.nack = False
        chip.reset()  # it browned out meanwhile: the driver sets it up again
        chip.convert()
        assert shunt.read_current_ma() == 5_000
        assert shunt.ready


def test_missing_chip_at_boot_and_wrong_chip() -> None:
    bus = FakeI2C()
    shunt = Ina228(bus, address=0x45)
    assert not shunt.ready and shunt.errors == 1
    assert shunt.read_current_ma() == NOT_AVAILABLE
    chip = FakeIna228(address=0x45)
    chip.regs[0x3E] = 0x1234  # another maker's part at that address
    bus.attach(chip)
    assert shunt.read_current_ma() == NOT_AVAILABLE
    assert shunt.errors == 3


def test_stuck_conversion_is_not_available_after_stale_reads() -> None:
    _, chip, shunt = bench("228", stale_reads=3)
    chip.set(10_000, 50_000)
    chip.convert()
    assert shunt.read_current_ma() == 10_000
    chip.stuck = True
    chip.convert()
    assert shunt.read_current_ma() == 10_000  # the last result, one and two cycles old
    assert shunt.read_current_ma() == 10_000
    assert shunt.read_current_ma() == NOT_AVAILABLE
    assert shunt.read_bus_mv() == NOT_AVAILABLE
    assert shunt.stale == 1
    chip.stuck = False
    chip.convert()
    assert shunt.read_current_ma() == 10_000


def test_bad_parameters_are_refused() -> None:
    bus = FakeI2C()
    assert "shunt_uohm" in raises(ValueError, Ina226, bus, 0x40, 0)
    assert "stale_reads" in raises(ValueError, Ina226, bus, 0x40, 100, 0)


def test_reading_allocates_nothing() -> None:
    for kind in ("226", "228"):
        _, chip, shunt = bench(kind)
        chip.set(-20_000, 26_000)

        def reading(chip=chip, shunt=shunt):
            chip.convert()
            shunt.read_current_ma()
            shunt.read_bus_mv()

        assert_no_allocation("ina" + kind + "_read", reading)
