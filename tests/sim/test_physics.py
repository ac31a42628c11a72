"""Battery physics: charge counting, voltages, relaxation, heat, balancing, strings, faults."""

from __future__ import annotations

import math
import random
from itertools import pairwise

import pytest

from gateway.contracts.chemistry import LFP, LFP_OCV_POINTS
from gateway.sim.physics import (
    CHARGE_MAX,
    CHARGE_MIN,
    OCV_CURVES,
    Battery,
    Cell,
    CellParams,
    Pack,
    ocv_curve,
)

# No self-discharge: charge counting becomes exact.
EXACT = CellParams(self_discharge_pct_month=0.0)


def uniform_pack(n: int = 4, soc: float = 0.5, params: CellParams = EXACT) -> Pack:
    """A pack of identical cells (no spread)."""
    return Pack([Cell(params, soc) for _ in range(n)], sensors=2)


def run(cell: Cell, seconds: float, current_a: float, dt: float = 1.0, ambient: float = 25.0):
    for _ in range(round(seconds / dt)):
        cell.step(dt, current_a, ambient)


# -- charge counting --


def test_charge_raises_soc_by_current_times_time_with_efficiency() -> None:
    cell = Cell(EXACT, soc=0.3)
    run(cell, 3600, 20.0)
    assert cell.soc == pytest.approx(0.3 + 20.0 * 1.0 * 0.995 / 100.0, abs=1e-9)


def test_discharge_lowers_soc_by_current_times_time() -> None:
    cell = Cell(EXACT, soc=0.7)
    run(cell, 1800, -40.0)
    assert cell.soc == pytest.approx(0.7 - 40.0 * 0.5 / 100.0, abs=1e-9)
    assert cell.remaining_ah == pytest.approx(cell.soc * 100.0)


def test_self_discharge_loses_its_monthly_rate() -> None:
    cell = Cell(CellParams(self_discharge_pct_month=3.0), soc=0.8)
    for _ in range(30):
        cell.step(86400.0, 0.0, 25.0)
    assert cell.soc == pytest.approx(0.77, abs=1e-9)


# -- voltages --


def test_terminal_voltage_above_ocv_on_charge_below_on_discharge() -> None:
    charging = Cell(EXACT, soc=0.5)
    discharging = Cell(EXACT, soc=0.5)
    run(charging, 10, 50.0)
    run(discharging, 10, -50.0)
    assert charging.voltage > charging.ocv
    assert discharging.voltage < discharging.ocv
    # IR drop plus polarisation: at least R0 * I.
    assert charging.voltage - charging.ocv >= 50.0 * EXACT.r0_ohm
    assert charging.voltage > discharging.voltage


def test_voltage_relaxes_to_ocv_with_the_rc_time_constant() -> None:
    cell = Cell(EXACT, soc=0.5)
    run(cell, 600, 50.0)  # ten time constants: polarisation settled at I * R1
    assert cell.polarisation_v == pytest.approx(50.0 * EXACT.r1_ohm, rel=1e-3)
    start = cell.polarisation_v
    run(cell, EXACT.tau_s, 0.0)
    assert cell.polarisation_v == pytest.approx(start / math.e, rel=1e-6)
    assert cell.voltage > cell.ocv  # not rested yet
    run(cell, 10 * EXACT.tau_s, 0.0)
    assert cell.voltage - cell.ocv < 1e-6


def test_lfp_cell_rests_on_the_gateways_cited_ocv_table() -> None:
    """Between empty and full the simulated cell's OCV is the table the SoC estimator reads
    (so a rested cell's voltage gives back its true SoC), at the points and between them."""
    lfp = ocv_curve("LFP")
    for pct in [p / 10 for p in range(1001)] + [soc for soc, _ in LFP_OCV_POINTS]:
        assert lfp.voltage(pct / 100) == pytest.approx(LFP.ocv.at(pct), abs=1e-9)
        assert LFP.soc_from_ocv(lfp.voltage(pct / 100)) == pytest.approx(pct, abs=1e-6)


def test_lfp_curve_flat_plateau_and_steep_ends() -> None:
    lfp = ocv_curve("LFP")
    plateau = [lfp.voltage(s / 100) for s in range(20, 91)]
    assert all(3.24 <= v <= 3.35 for v in plateau)
    assert lfp.voltage(0.0) == pytest.approx(2.01)
    assert lfp.voltage(1.0) == pytest.approx(3.598)
    plateau_slope = (lfp.voltage(0.9) - lfp.voltage(0.2)) / 0.7
    top_slope = (lfp.voltage(1.0) - lfp.voltage(0.99)) / 0.01
    bottom_slope = (lfp.voltage(0.02) - lfp.voltage(0.0)) / 0.02
    assert top_slope > 50 * plateau_slope
    assert bottom_slope > 50 * plateau_slope
    # Beyond 0..1 the excursions stay as steep and join the table without a step.
    over_slope = (lfp.voltage(1.01) - lfp.voltage(1.0)) / 0.01
    under_slope = (lfp.voltage(0.0) - lfp.voltage(-0.01)) / 0.01
    assert over_slope > 100 * plateau_slope and under_slope > 100 * plateau_slope
    for end in (0.0, 1.0):
        assert abs(lfp.voltage(end + 1e-9) - lfp.voltage(end - 1e-9)) < 1e-6
    assert lfp.voltage(CHARGE_MIN) == pytest.approx(0.5)
    assert lfp.voltage(CHARGE_MAX) == pytest.approx(4.6)


@pytest.mark.parametrize("name", sorted(OCV_CURVES))
def test_every_curve_rises_monotonically(name: str) -> None:
    curve = OCV_CURVES[name]
    volts = [curve.voltage(-0.05 + k * 0.001) for k in range(1101)]
    assert all(b > a for a, b in pairwise(volts))


def test_scaled_cell_keeps_its_technology() -> None:
    big = CellParams().scaled(280.0)
    assert big.capacity_ah == 280.0
    assert big.r0_ohm == pytest.approx(0.0005 * 100 / 280)
    assert big.r1_ohm == pytest.approx(0.0004 * 100 / 280)
    assert big.thermal_mass_j_k == pytest.approx(2000.0 * 2.8)
    assert big.heat_transfer_w_k == pytest.approx(0.5 * 2.8 ** (2 / 3))
    assert big.tau_s == CellParams().tau_s


def test_unknown_chemistry_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown chemistry"):
        CellParams(chemistry="lead")


def test_overcharge_shows_as_voltage_while_soc_clamps() -> None:
    cell = Cell(EXACT, soc=0.99)
    run(cell, 3600, 10.0)  # 10 Ah into a cell that had 1 Ah of room
    assert cell.soc == 1.0
    assert cell.charge == CHARGE_MAX
    assert cell.ocv > 4.0
    assert math.isfinite(cell.voltage)
    # Discharging an empty cell drives the voltage far below the hard limit.
    empty = Cell(EXACT, soc=0.01)
    run(empty, 3600, -5.0)
    assert empty.soc == 0.0
    assert empty.voltage < 2.0


def test_nan_inputs_are_refused() -> None:
    cell = Cell(EXACT)
    with pytest.raises(ValueError):
        cell.step(1.0, math.nan, 25.0)
    with pytest.raises(ValueError):
        cell.step(math.inf, 1.0, 25.0)
    battery = Battery({0: uniform_pack()}, [[0]])
    with pytest.raises(ValueError):
        battery.step(-1.0, 0.0)


# -- heat --


def test_current_heats_the_cell_towards_i2r_over_g() -> None:
    cell = Cell(EXACT, soc=0.2, temperature_c=25.0)
    run(cell, 20 * 3600, 3.0, dt=10.0)  # small current: SoC stays on the plateau
    heat = 3.0**2 * cell.r0_ohm + cell.polarisation_v**2 / EXACT.r1_ohm
    assert cell.temperature_c == pytest.approx(25.0 + heat / EXACT.heat_transfer_w_k, abs=1e-3)
    hot = Cell(EXACT, soc=0.5)
    run(hot, 600, 150.0)
    assert hot.temperature_c > 25.5


def test_cell_follows_ambient_with_its_thermal_time_constant() -> None:
    cell = Cell(EXACT, soc=0.5, temperature_c=25.0)
    tau = EXACT.thermal_mass_j_k / EXACT.heat_transfer_w_k
    run(cell, tau, 0.0, dt=10.0, ambient=35.0)
    assert cell.temperature_c == pytest.approx(35.0 - 10.0 / math.e, abs=1e-6)


def test_cold_cell_has_higher_resistance() -> None:
    cold = Cell(EXACT, temperature_c=0.0)
    warm = Cell(EXACT, temperature_c=25.0)
    assert cold.r0_ohm > 2 * warm.r0_ohm


# -- balancing --


def test_balancing_bleeds_only_the_chosen_cell_and_heats_the_balancer() -> None:
    pack = uniform_pack(4, soc=0.6)
    pack.balance_mask = 0b0100  # cell 3
    before = [c.soc for c in pack.cells]
    v = pack.cells[2].voltage
    for _ in range(3600):
        pack.step(1.0, 0.0)
    after = [c.soc for c in pack.cells]
    assert after[0] == before[0] and after[1] == before[1] and after[3] == before[3]
    bled_ah = (before[2] - after[2]) * 100.0
    assert bled_ah == pytest.approx(v / pack.bleed_ohm, rel=0.01)  # ~0.1 A for an hour
    assert pack.cells[2].current_a < 0
    assert pack.cells[2].voltage < pack.cells[1].voltage
    assert pack.balancer_temp_c > pack.ambient_c + 1.0
    pack.balance_mask = 0
    for _ in range(3600):
        pack.step(1.0, 0.0)
    assert pack.balancer_temp_c == pytest.approx(pack.ambient_c, abs=0.01)


# -- pack readings and faults --


def test_pack_voltage_is_the_sum_of_its_cells() -> None:
    pack = Pack.build(random.Random(3), n_cells=16)
    pack.step(1.0, 30.0)
    assert pack.voltage == pytest.approx(sum(pack.cell_voltages()))
    assert len(pack.cell_voltages()) == 16


def test_sensor_reads_the_mean_of_the_cells_it_sees() -> None:
    pack = uniform_pack(4)
    assert pack.sensors == ((0, 1), (2, 3))
    pack.cells[0].temperature_c = 35.0
    assert pack.temperatures() == [30.0, 25.0]


def test_open_thermistor_reads_none_until_closed() -> None:
    pack = uniform_pack(4)
    pack.open_thermistor(1)
    assert pack.temperatures() == [25.0, None]
    pack.open_thermistor(1, is_open=False)
    assert pack.temperatures() == [25.0, 25.0]
    with pytest.raises(IndexError):
        pack.open_thermistor(2)


def test_current_offset_changes_the_reading_not_the_truth() -> None:
    battery = Battery({0: uniform_pack()}, [[0]])
    pack = battery.packs[0]
    pack.inject_current_offset(1.5)
    battery.step(1.0, -20.0)
    assert pack.current_a == -20.0
    assert pack.measured_current_a == pytest.approx(-18.5)
    assert pack.cells[0].current_a == -20.0


def test_drifting_cell_runs_away_above_the_others() -> None:
    pack = uniform_pack(4, soc=0.9)
    pack.inject_cell_drift(1, 2.0)
    for _ in range(6 * 360):
        pack.step(10.0, 0.0)
    volts = pack.cell_voltages()
    others = volts[:1] + volts[2:]
    assert volts[1] > max(others) + 0.2  # pushed up the steep end
    assert max(others) - min(others) < 1e-9
    pack.inject_cell_drift(1, 0.0)
    assert pack.cells[1].drift_a == 0.0


def test_faded_cell_swings_faster() -> None:
    pack = uniform_pack(2, soc=0.5)
    pack.fade_cell(0, 0.2)
    assert pack.cells[0].capacity_ah == pytest.approx(80.0)
    assert pack.cells[0].soc == 0.5  # fade keeps the SoC
    assert pack.capacity_ah == pytest.approx(80.0)
    for _ in range(3600):
        pack.step(1.0, -20.0)
    assert pack.cells[0].soc == pytest.approx(0.5 - 20.0 / 80.0, abs=1e-9)
    assert pack.cells[1].soc == pytest.approx(0.5 - 20.0 / 100.0, abs=1e-9)
    assert pack.remaining_ah == pytest.approx(0.25 * 80.0, abs=1e-6)


# -- battery: strings and relays --


def two_strings(soc_a: float = 0.5, soc_b: float = 0.5) -> Battery:
    return Battery({0: uniform_pack(4, soc_a), 1: uniform_pack(4, soc_b)}, [[0], [1]])


def test_identical_parallel_strings_share_the_current_equally() -> None:
    battery = two_strings()
    assert battery.step(1.0, 40.0) == 40.0
    assert battery.string_currents == pytest.approx([20.0, 20.0])
    assert battery.packs[0].current_a == pytest.approx(20.0)
    assert battery.bus_voltage == pytest.approx(battery.packs[0].voltage + 20.0 * 0.002)


def test_higher_resistance_string_carries_less() -> None:
    worn = CellParams(self_discharge_pct_month=0.0, r0_ohm=0.002)
    stiff = Pack([Cell(EXACT, 0.5) for _ in range(4)])
    soft = Pack([Cell(worn, 0.5)] + [Cell(EXACT, 0.5) for _ in range(3)])
    battery = Battery({0: stiff, 1: soft}, [[0], [1]])
    battery.step(0.1, 50.0)
    a, b = battery.string_currents
    assert a + b == pytest.approx(50.0)
    r_a = 4 * EXACT.r0_ohm + 0.002
    r_b = 0.002 + 3 * EXACT.r0_ohm + 0.002
    assert a / b == pytest.approx(r_b / r_a, rel=1e-6)


def test_open_relay_string_carries_nothing() -> None:
    battery = Battery({0: uniform_pack(), 1: uniform_pack(), 2: uniform_pack()}, [[0, 1], [2]])
    battery.set_relay(1, closed=False)  # breaks string 0
    assert battery.step(1.0, 30.0) == 30.0
    assert battery.string_currents == [0.0, 30.0]
    assert battery.packs[0].current_a == 0.0
    assert battery.packs[1].current_a == 0.0
    assert battery.packs[2].current_a == 30.0


def test_nothing_flows_when_every_relay_is_open() -> None:
    battery = two_strings()
    battery.set_relay(0, closed=False)
    battery.set_relay(1, closed=False)
    before = battery.true_soc()
    assert battery.step(10.0, 100.0) == 0.0
    assert battery.current_a == 0.0
    assert battery.bus_voltage is None
    assert battery.true_soc() == before


def test_strings_at_different_voltages_equalise_without_inverter_current() -> None:
    battery = two_strings(soc_a=0.95, soc_b=0.15)
    battery.step(0.1, 0.0)
    a, b = battery.string_currents
    assert a < -1.0  # the fuller string discharges into the emptier one
    assert a + b == pytest.approx(0.0, abs=1e-9)


def test_true_soc_and_remaining_ah_follow_the_weakest_pack_of_each_string() -> None:
    battery = Battery(
        {0: uniform_pack(4, 0.8), 1: uniform_pack(4, 0.6), 2: uniform_pack(4, 0.4)},
        [[0, 1], [2]],
    )
    assert battery.remaining_ah() == pytest.approx(60.0 + 40.0)
    assert battery.capacity_ah == pytest.approx(200.0)
    assert battery.true_soc() == pytest.approx(0.5)


def test_long_steps_are_subdivided() -> None:
    coarse = two_strings(0.9, 0.3)
    fine = two_strings(0.9, 0.3)
    coarse.step(10.0, 25.0)
    for _ in range(10):
        fine.step(1.0, 25.0)
    assert coarse.packs[0].cell_voltages() == pytest.approx(fine.packs[0].cell_voltages())
    assert coarse.string_currents == pytest.approx(fine.string_currents)


def test_topology_errors_are_refused() -> None:
    with pytest.raises(ValueError):
        Battery({0: uniform_pack()}, [[0], [1]])
    with pytest.raises(ValueError):
        Battery({0: uniform_pack(), 1: uniform_pack()}, [[0, 1], [1]])
    with pytest.raises(KeyError):
        two_strings().set_relay(7, closed=True)


# -- determinism --


def snapshot(battery: Battery) -> list[float]:
    return [v for p in battery.packs.values() for v in (*p.cell_voltages(), p.capacity_ah)]


def test_same_seed_gives_identical_batteries_and_runs() -> None:
    runs = []
    for _ in range(2):
        battery = Battery.build(random.Random(42), [[0, 1], [2, 3]])
        for k in range(200):
            battery.step(0.5, 30.0 if k < 100 else -60.0)
        runs.append(snapshot(battery))
    assert runs[0] == runs[1]


def test_different_seeds_give_different_spreads() -> None:
    a = Battery.build(random.Random(1), [[0]])
    b = Battery.build(random.Random(2), [[0]])
    assert snapshot(a) != snapshot(b)
    caps = [c.capacity_ah for c in a.packs[0].cells]
    socs = [c.soc for c in a.packs[0].cells]
    assert all(98.0 <= c <= 102.0 for c in caps)
    assert all(0.47 <= s <= 0.53 for s in socs)
    assert max(socs) - min(socs) > 0.01  # a spread, not one value
