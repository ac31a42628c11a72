"""NTC thermistors on an ADC: bms.hw.ntc against a divider model (gateway.sim.chips.ntc).

Shared with the MicroPython suite (tests/mpy/chips.py): plain asserts, no pytest.
"""

import math

from bms.hw import NOT_AVAILABLE
from bms.hw.ntc import Ntc, NtcCurve
from gateway.sim.chips.ntc import FakeThermistorAdc
from tests.firmware.allocation import allocated, assert_no_allocation, raises


def test_beta_curve_reads_within_a_tenth_of_a_degree() -> None:
    curve = NtcCurve(beta=3950, r25_ohm=10000, series_ohm=10000)
    adc = FakeThermistorAdc(beta=3950, r25_ohm=10000, series_ohm=10000)
    ntc = Ntc(adc, curve)
    for temp_c in (-40, -20.5, -5, 0, 12.3, 25, 37.5, 45, 60, 85, 100, 125):
        adc.set_temp(temp_c)
        got = ntc.read()
        # 5-degree table and 14-bit ratio: within 0.3 degC of the Beta model at the extremes
        assert abs(got - temp_c * 10) <= 3, (temp_c, got)
    adc.set_temp(25)
    assert ntc.read() == 250


def test_table_from_a_datasheet_and_ntc_on_the_high_side() -> None:
    # R/T points as an NTC datasheet lists them (here those of a 10k B3435 part).
    table = [
        (t * 10, 10000 * math.exp(3435 * (1 / (t + 273.15) - 1 / 298.15)))
        for t in range(-40, 126, 5)
    ]
    low = NtcCurve(table=table, series_ohm=4700)
    high = NtcCurve(table=table, series_ohm=4700, ntc_low=False)
    for temp_c in (-30, 0, 25, 70, 110):
        ohm = 10000 * math.exp(3435 * (1 / (temp_c + 273.15) - 1 / 298.15))
        ratio = round(16384 * ohm / (ohm + 4700))
        assert abs(low.temp_dc(ratio) - temp_c * 10) <= 2
        assert abs(high.temp_dc(16384 - ratio) - temp_c * 10) <= 2


def test_open_and_short_are_not_available_and_counted() -> None:
    curve = NtcCurve()
    adc = FakeThermistorAdc()
    ntc = Ntc(adc, curve, samples=2)
    adc.open()
    assert ntc.read() == NOT_AVAILABLE
    assert curve.opens == 1 and curve.shorts == 0
    adc.short()
    assert ntc.read() == NOT_AVAILABLE
    assert curve.shorts == 1
    adc.set_temp(-60)  # colder than any battery may be: not trusted either
    assert ntc.read() == NOT_AVAILABLE
    adc.set_temp(20)
    assert ntc.read() == 200


def test_bad_curves_are_refused() -> None:
    assert "beta" in raises(ValueError, NtcCurve, 100)
    assert "two points" in raises(ValueError, NtcCurve, 3950, 10000, 10000, True, [(0, 1)])
    assert "cold to hot" in raises(
        ValueError, NtcCurve, 3950, 10000, 10000, True, [(100, 5000), (0, 30000)]
    )


def test_reading_allocates_nothing() -> None:
    adc = FakeThermistorAdc(temp_c=31.4)
    ntc = Ntc(adc, NtcCurve())
    assert_no_allocation("ntc_read", ntc.read)


def test_the_allocation_probe_sees_an_allocation() -> None:
    n = allocated(lambda: [0, 1, 2])
    assert n is None or n > 0
