"""Chemistry specifications: curves, windows, the values the field uses, OCV tables."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest

from gateway.contracts.chemistry import (
    LFP,
    SPECS,
    Chemistry,
    Curve,
    TemperatureWindow,
    spec_of,
)


def test_curve_interpolates_linearly_and_is_flat_beyond_the_ends() -> None:
    c = Curve.of((0, 0), (10, 1), (20, 3))
    assert c.at(5) == pytest.approx(0.5)
    assert c.at(15) == pytest.approx(2.0)
    assert c.at(-100) == 0.0
    assert c.at(100) == 3.0
    assert c.at(10) == 1.0
    assert math.isnan(c.at(math.nan))


@pytest.mark.parametrize(
    "points",
    [
        ((0.0, 0.0),),
        ((0.0, 0.0), (0.0, 1.0)),
        ((1.0, 0.0), (0.0, 1.0)),
        ((0.0, math.nan), (1.0, 1.0)),
        ((0.0, 0.0), (math.inf, 1.0)),
    ],
)
def test_curve_rejects_bad_points(points: tuple[tuple[float, float], ...]) -> None:
    with pytest.raises(ValueError):
        Curve(points)


def test_curve_inverse_needs_rising_values() -> None:
    rising = Curve.of((0, 1), (1, 2))
    assert rising.inverse().at(1.5) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        Curve.of((0, 1), (1, 1)).inverse()


def test_temperature_window_validation() -> None:
    with pytest.raises(ValueError):
        TemperatureWindow(0.0, 9.0, 5.0)  # no room inside once hysteresis is applied
    with pytest.raises(ValueError):
        TemperatureWindow(0.0, 50.0, -1.0)


def test_lfp_defaults_are_the_field_values() -> None:
    lfp = spec_of(Chemistry.LFP)
    assert lfp is LFP
    assert lfp.charge_target_v == 3.45
    assert lfp.full_charge_v == 3.55
    assert lfp.float_v == 3.375
    assert 2.90 <= lfp.min_cell_v <= 3.00
    assert lfp.charge_temp.low == 0.0  # no charging at or below 0 degC
    assert lfp.charge_temp.hysteresis == 5.0


def test_default_chemistry_is_lfp_and_lookup_by_name() -> None:
    assert next(iter(Chemistry)) is Chemistry.LFP
    assert spec_of("nmc").chemistry is Chemistry.NMC
    with pytest.raises(ValueError, match="known: lfp, nmc, lto"):
        spec_of("lead-acid")


@pytest.mark.parametrize("chem", list(Chemistry))
def test_every_spec_is_ordered_and_complete(chem: Chemistry) -> None:
    p = SPECS[chem]
    assert (
        p.hard_min_v
        < p.min_cell_v
        < p.empty_cell_v
        < p.float_v
        < p.charge_target_v
        < p.full_charge_v
        < p.hard_max_v
    )
    assert p.min_cell_v < p.balance_start_v <= p.charge_target_v
    ocv = p.ocv.points
    # Every 5 % at least (finer where a curve bends), from 0 to 100 %.
    assert {5.0 * i for i in range(21)} <= {x for x, _ in ocv}
    assert ocv[0][0] == 0.0 and ocv[-1][0] == 100.0
    assert all(b[1] > a[1] for a, b in itertools.pairwise(ocv))
    # The charge derating reaches 0 above the allowed maximum and is 1 well below it.
    assert p.charge_by_cell.at(0.05) == 0.0
    assert p.charge_by_cell.at(-0.1) == 1.0
    # Discharging is fully stopped at or below the hard-ish floor, full well above min.
    assert p.discharge_by_cell.at(p.min_cell_v) < 0.01
    # Temperature tables close at the window edges.
    assert p.charge_by_temp.at(p.charge_temp.low) == 0.0
    assert p.charge_by_temp.at(p.charge_temp.high) == 0.0
    assert p.discharge_by_temp.at(p.discharge_temp.high) == 0.0


def test_spec_rejects_inconsistent_values() -> None:
    with pytest.raises(ValueError, match="float_v"):
        replace(LFP, float_v=3.50)
    with pytest.raises(ValueError, match="balance_start_v"):
        replace(LFP, balance_start_v=3.50)
    with pytest.raises(ValueError, match="fractions"):
        replace(LFP, charge_by_soc=Curve.of((0, 0), (100, 1.5)))
    with pytest.raises(ValueError, match=r"0\.\.100"):
        replace(LFP, ocv=Curve.of((10, 3.0), (100, 3.4)))


def test_lfp_ocv_is_flat_in_the_middle_and_steep_at_the_ends() -> None:
    flat = LFP.ocv.at(90) - LFP.ocv.at(20)
    assert flat < 0.12
    assert LFP.ocv.at(5) - LFP.ocv.at(0) > 0.2
    assert LFP.ocv.at(100) - LFP.ocv.at(95) > 0.05


@pytest.mark.parametrize("chem", list(Chemistry))
@pytest.mark.parametrize("soc", [0.0, 12.5, 50.0, 87.5, 100.0])
def test_soc_from_ocv_inverts_the_table(chem: Chemistry, soc: float) -> None:
    p = SPECS[chem]
    assert p.soc_from_ocv(p.ocv.at(soc)) == pytest.approx(soc)


def test_soc_from_ocv_clamps_and_passes_nan() -> None:
    assert LFP.soc_from_ocv(2.0) == 0.0
    assert LFP.soc_from_ocv(4.0) == 100.0
    assert math.isnan(LFP.soc_from_ocv(math.nan))


def test_lfp_derating_tables_are_the_brief_values() -> None:
    # Charge by max cell, relative to the allowed maximum (3.45 V daily target).
    by_cell = [LFP.charge_by_cell.at(v - 3.45) for v in (3.375, 3.400, 3.425, 3.450, 3.500)]
    assert by_cell == pytest.approx([1, 0.25, 0.05, 0.005, 0])
    by_min = [LFP.discharge_by_cell.at(v) for v in (2.80, 2.90, 3.00, 3.10, 3.19)]
    assert by_min == pytest.approx([0, 0.005, 0.05, 0.25, 1])
    temps = (0, 2, 5, 10, 40, 45, 50, 55)
    assert [LFP.charge_by_temp.at(t) for t in temps] == pytest.approx(
        [0, 0.25, 0.5, 1, 1, 0.5, 0.25, 0]
    )
    assert [LFP.charge_by_soc.at(s) for s in (98, 95, 90, 85)] == pytest.approx([0.1, 0.2, 0.5, 1])
