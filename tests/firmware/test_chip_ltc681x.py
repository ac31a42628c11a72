"""LTC6811 / LTC6813 daisy-chain driver (bms.hw.ltc681x) against a fake chain
(gateway.sim.chips.ltc681x).

Shared with the MicroPython suite (tests/mpy/chips.py): plain asserts, no pytest.
"""

from bms.hw import NOT_AVAILABLE
from bms.hw.ltc681x import Ltc681x, pec15
from bms.hw.ntc import NtcCurve
from gateway.sim.chips.crc import pec15 as pec15_bitwise
from gateway.sim.chips.ltc681x import FakeLtc681xChain
from gateway.sim.chips.ntc import divider_q
from tests.firmware.allocation import assert_no_allocation, raises


def stack(n: int) -> list[int]:
    return [3200 + (37 * i) % 300 for i in range(n)]


def bench(chips: int = 2, kind: int = 6813, per_chip: int = 18, temps: int = 2, **kwargs):
    chain = FakeLtc681xChain(chips, kind)
    chain.set_cells(stack(chips * per_chip), per_chip)
    curve = NtcCurve(beta=3435, r25_ohm=10000, series_ohm=10000) if temps else None
    afe = Ltc681x(
        chain,
        chain.cs,
        chips=chips,
        kind=kind,
        cells_per_chip=per_chip,
        temps_per_chip=temps,
        curve=curve,
        **kwargs,
    )
    return chain, afe, [0] * afe.cells, [0] * afe.temps


def cycle(afe, cells, temps, steps: int) -> int:
    """Run read() steps; how many returned fresh cell voltages."""
    fresh = 0
    for _ in range(steps):
        if afe.read(cells, temps):
            fresh += 1
    return fresh


def test_pec15_matches_the_datasheet_example() -> None:
    # LTC6811/LTC6804 datasheet, "Packet Error Code": the PEC of 0x0001 is 0x3D6E
    assert pec15(bytes([0x00, 0x01]), 0, 2) == 0x3D6E
    assert pec15_bitwise(bytes([0x00, 0x01])) == 0x3D6E
    data = bytes((i * 73 + 11) & 0xFF for i in range(64))
    for n in (1, 2, 6, 17, 64):
        assert pec15(data, 0, n) == pec15_bitwise(data, 0, n)


def test_a_chain_of_two_ltc6813_reads_36_cells_and_thermistors() -> None:
    chain, afe, cells, temps = bench()
    for chip in chain.chips:
        chip.gpio_mv[0] = 1500  # 10k NTC at 25 degC below 10k to VREF2 = 3.0 V
        chip.gpio_mv[1] = divider_q(60.0, 3435, 10000, 10000, 3000)
    assert not afe.read(cells, temps)  # starts the first conversion
    assert afe.read(cells, temps)  # cells read, GPIO conversion started
    assert cells == stack(36)
    assert not afe.read(cells, temps)  # GPIOs read
    assert temps == [250, 600, 250, 600]
    assert afe.pec_errors == 0 and chain.pec_rejected == 0
    assert chain.chips[0].cfga[0] == 0xFC  # REFON, GPIO pull-downs off


def test_twelve_cells_on_one_ltc6811_without_thermistors() -> None:
    chain, afe, cells, temps = bench(chips=1, kind=6811, per_chip=12, temps=0)
    assert cycle(afe, cells, temps, 3) == 2  # every step reads cells when there are no GPIOs
    assert cells == stack(12)
    assert 0x024 not in chain.commands  # no configuration B on an LTC6811


def test_balancing_bits_reach_the_right_chip() -> None:
    chain, afe, cells, temps = bench(per_chip=16)
    # cells 1, 3, 16 (chip 1) and 17 (chip 2, its cell 1), 32 (chip 2, its cell 16)
    afe.set_balance([0b1000_0000_0000_0101, 0b1000_0000_0000_0001, 0, 0])
    afe.read(cells, temps)
    assert chain.chips[0].dcc() == 0b1000_0000_0000_0101
    assert chain.chips[1].dcc() == 0b1000_0000_0000_0001
    assert chain.balance_mask(16) == 0b1000_0000_0000_0001_1000_0000_0000_0101
    afe.set_balance([0, 0, 0, 0])
    afe.read(cells, temps)
    assert chain.balance_mask(16) == 0


def test_a_wrong_pec_is_not_available_and_counted() -> None:
    chain, afe, cells, temps = bench()
    afe.read(cells, temps)
    chain.bad_pec = 1  # the first group read back: chip 1's cells 1..3
    assert not afe.read(cells, temps)
    assert afe.pec_errors == 1
    assert cells[:3] == [NOT_AVAILABLE] * 3
    assert cells[3:] == stack(36)[3:]
    cycle(afe, cells, temps, 2)
    assert cells == stack(36)


def test_a_stuck_conversion_reads_cleared_registers() -> None:
    chain, afe, cells, temps = bench()
    cycle(afe, cells, temps, 2)
    chain.stuck = True
    assert cycle(afe, cells, temps, 4) == 0
    assert cells == [NOT_AVAILABLE] * 36
    assert afe.stale >= 1


def test_open_wire_detection_by_the_datasheet_rule() -> None:
    chain, afe, cells, temps = bench(temps=0, open_wire_every=2)
    cycle(afe, cells, temps, 12)
    assert afe.open_wire() == 0
    chain.chips[0].open_wires.append(5)  # C5 of the bottom chip: cells 5 and 6
    cycle(afe, cells, temps, 12)
    assert afe.open_wire() == 0b11 << 4
    chain.chips[1].open_wires.append(18)  # the top wire of the second chip: cell 36
    chain.chips[0].open_wires.remove(5)
    chain.chips[0].open_wires.append(0)  # C0 of the bottom chip: cell 1
    cycle(afe, cells, temps, 12)
    assert afe.open_wire() == 1 << 35 | 1


def test_spi_errors_never_escape() -> None:
    chain, afe, cells, temps = bench()

    class BrokenSpi:
        def write(self, buf):
            raise OSError(5)

        def readinto(self, buf, write=0):
            raise OSError(5)

    afe.spi = BrokenSpi()
    assert not afe.read(cells, temps)
    assert afe.errors == 1
    afe.spi = chain
    assert cycle(afe, cells, temps, 3) >= 1


def test_bad_parameters_are_refused() -> None:
    chain = FakeLtc681xChain(1, 6811)
    assert "kind" in raises(ValueError, Ltc681x, chain, chain.cs, 1, 6812)
    assert "cells_per_chip" in raises(ValueError, Ltc681x, chain, chain.cs, 1, 6811, 13)
    assert "NtcCurve" in raises(ValueError, Ltc681x, chain, chain.cs, 1, 6811, 12, 2)


def test_reading_allocates_nothing() -> None:
    chain, afe, cells, temps = bench(chips=2, kind=6811, per_chip=12, temps=2, open_wire_every=5)
    chain.record = False
    cycle(afe, cells, temps, 3)
    assert_no_allocation("ltc6811x2_read", lambda: afe.read(cells, temps))
    assert cells == stack(24)
