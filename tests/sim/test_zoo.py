"""The inverter zoo: each named model follows the limits the way it is documented to."""

from __future__ import annotations

import pytest

from gateway.cli import main
from gateway.codec.pylontech_lv import (
    FRAME_IDS,
    BatteryLimits,
    ProtectionAlarms,
    RequestFlags,
    encode_battery_limits,
    encode_protection_alarms,
    encode_request_flags,
)
from gateway.sim.inverter import SimInverter, SimInverterSettings
from gateway.sim.scenarios import SCENARIOS
from gateway.sim.zoo import MODELS, inverter_model

LIMITS = FRAME_IDS["BatteryLimits"]
FLAGS = FRAME_IDS["RequestFlags"]
PROTECTION = FRAME_IDS["ProtectionAlarms"]
DT = 0.1


def limits(cvl: float = 56.0, ccl: float = 40.0, dcl: float = 100.0) -> bytes:
    return encode_battery_limits(BatteryLimits(cvl, ccl, dcl, 44.0))


def no_charge_flags() -> bytes:
    return encode_request_flags(RequestFlags(0, 0, 0, 1, 0))


def over_voltage() -> bytes:
    fields = {name: 0 for name in ProtectionAlarms._fields}
    fields.update(protection_cell_over_voltage=1, module_count=1, marker_p=80, marker_n=78)
    return encode_protection_alarms(ProtectionAlarms(**fields))


def settle(
    model: str,
    pv_w: float,
    load_w: float = 0.0,
    volts: float = 52.0,
    frames: tuple[tuple[int, bytes], ...] = ((LIMITS, limits()),),
    seconds: float = 30.0,
) -> SimInverter:
    """A zoo model on a stiff battery at `volts`, frames once a second, after `seconds`."""
    inv = SimInverter(inverter_model(model))
    t = 0.0
    for k in range(round(seconds / DT)):
        if k % 10 == 0:
            for frame_id, data in frames:
                inv.on_frame(frame_id, data, t)
        inv.step(t, volts, pv_w, load_w)
        t += DT
    return inv


def test_every_model_is_named_and_an_unknown_one_is_refused_with_the_known_names() -> None:
    assert set(MODELS) == {
        "ideal",
        "no-pull-down",
        "ccl-overshoot",
        "cvl-only",
        "low-voltmeter",
        "mppt-ignores-ccl",
    }
    with pytest.raises(ValueError, match="known: ideal"):
        inverter_model("sunny-boy")


def test_no_pull_down_is_the_simulators_default_inverter() -> None:
    assert inverter_model("no-pull-down") == SimInverterSettings()


def test_a_model_keeps_the_scenarios_family_and_power() -> None:
    base = SimInverterSettings(family="victron", max_charge_a=60.0)
    settings = inverter_model("cvl-only", base)
    assert settings.family == "victron" and settings.max_charge_a == 60.0
    assert not settings.follows_ccl


@pytest.mark.parametrize("model", ["ideal", "low-voltmeter", "no-pull-down"])
def test_models_that_follow_ccl_charge_the_pv_surplus_within_it(model: str) -> None:
    assert settle(model, pv_w=5000).current_a == pytest.approx(40.0, abs=0.05)


def test_ccl_overshoot_charges_ten_percent_above_ccl() -> None:
    assert settle("ccl-overshoot", pv_w=5000).current_a == pytest.approx(44.0, abs=0.05)


def test_cvl_only_ignores_ccl_the_enable_bits_and_the_alarms() -> None:
    frames = (
        (LIMITS, limits(ccl=0.0)),
        (FLAGS, no_charge_flags()),
        (PROTECTION, over_voltage()),
    )
    surplus_a = 5000 * 0.96 / 52.0
    assert settle("cvl-only", pv_w=5000, frames=frames).current_a == pytest.approx(
        surplus_a, rel=1e-3
    )
    # The others stop.
    assert settle("ideal", pv_w=5000, frames=frames).current_a == 0.0
    # CVL still holds it: at CVL it charges nothing.
    at_cvl = settle("cvl-only", pv_w=5000, volts=56.0, frames=frames)
    assert at_cvl.current_a == pytest.approx(0.0, abs=0.01)


def test_low_voltmeter_holds_the_battery_0_3_v_above_cvl() -> None:
    # At CVL + 0.2 V it still reads 0.1 V of headroom and charges...
    inv = settle("low-voltmeter", pv_w=5000, volts=56.2)
    assert inv.current_a == pytest.approx(0.1 * inv.settings.voltage_gain_a_per_v, rel=1e-3)
    # ...where the ideal one discharges to pull the battery down to CVL.
    assert settle("ideal", pv_w=5000, volts=56.2).current_a < -30.0


def test_ideal_pulls_a_battery_above_a_lowered_cvl_down_and_no_pull_down_only_stops() -> None:
    frames = ((LIMITS, limits(cvl=54.0)),)
    ideal = settle("ideal", pv_w=5000, volts=54.1, frames=frames)
    assert ideal.current_a == pytest.approx(-0.1 * ideal.settings.voltage_gain_a_per_v, rel=1e-3)
    assert ideal.status == "pulling down to CVL"
    assert settle("no-pull-down", pv_w=5000, volts=54.1, frames=frames).current_a == 0.0
    # With a load bigger than the pull, the load is what it discharges.
    loaded = settle("ideal", pv_w=0, load_w=3000, volts=54.1, frames=frames)
    assert loaded.current_a == pytest.approx(-3000 / 0.96 / 54.1, rel=1e-3)


def test_pull_down_stays_within_dcl_and_stops_when_discharge_is_not_allowed() -> None:
    frames = ((LIMITS, limits(cvl=54.0, dcl=5.0)),)
    assert settle("ideal", pv_w=5000, volts=55.0, frames=frames).current_a == pytest.approx(
        -5.0, abs=0.01
    )
    blocked = (
        (LIMITS, limits(cvl=54.0)),
        (FLAGS, encode_request_flags(RequestFlags(0, 0, 0, 0, 1))),
    )
    assert settle("ideal", pv_w=5000, volts=55.0, frames=blocked).current_a == 0.0


def test_mppt_ignores_ccl_for_the_pv_surplus_but_grid_charge_follows_it() -> None:
    frames = ((LIMITS, limits(ccl=0.0)),)
    surplus_a = 3000 * 0.96 / 52.0
    mppt = settle("mppt-ignores-ccl", pv_w=3000, frames=frames)
    assert mppt.current_a == pytest.approx(surplus_a, rel=1e-3)
    assert settle("ideal", pv_w=3000, frames=frames).current_a == 0.0
    # Force charge from the grid (no PV): CCL holds.
    force = encode_request_flags(RequestFlags(0, 1, 1, 1, 1))
    grid = settle("mppt-ignores-ccl", pv_w=0, frames=((LIMITS, limits(ccl=10.0)), (FLAGS, force)))
    assert grid.current_a == pytest.approx(10.0, abs=0.05)


def test_a_scenario_runs_with_a_zoo_model_and_the_command_line_names_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Charging a 20 Ah pack from 20 % with 4 kW of PV: the gateway allows 0.5 C, 10 A.
    sim, _ = SCENARIOS["full-charge"].build(0, inverter="ccl-overshoot", bus="memory")
    with sim:
        assert sim.inverter.settings.ccl_overshoot == 0.10
        assert sim.inverter.settings.family == "pylontech"  # the gateway's profile, as before
        sim.run(300.0)
        assert sim.inverter.limits is not None
        ccl = sim.inverter.limits.charge_current_limit
        assert ccl == pytest.approx(10.0)
        assert sim.inverter_current == pytest.approx(1.1 * ccl, rel=0.01)
    with pytest.raises(SystemExit) as exit_info:
        main(["sim", "--inverter", "sunny-boy", "--no-web", "--no-view"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert all(name in err for name in MODELS)
