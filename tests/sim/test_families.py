"""The added inverter families run through a whole scenario: the gateway speaks the profile,
the simulated inverter reads the frames as that family does (gateway/sim/inverter.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.record.events import EventKind
from gateway.sim.inverter import SimInverter, SimInverterSettings
from gateway.sim.scenarios import SCENARIOS

# cell-overvoltage stops charging while discharging stays allowed: the direction-stop path
# every family must carry without an alarm. About 2 s each.
SCENARIO = "cell-overvoltage"
FAMILIES = ["sol-ark", "luxpower", "growatt-lv"]
FRAME_SETS = {
    "sol-ark": {"351", "355", "356", "359", "35C", "35E", "379"},
    "luxpower": {"351", "355", "356", "359", "35C", "35E", "379"},
    "growatt-lv": {"311", "312", "313", "314", "319", "320", "321"},
}
EIGHT_BYTES = {"sol-ark", "growatt-lv"}


@pytest.mark.parametrize("profile", FAMILIES)
def test_the_scenario_holds_with_the_profile(profile: str) -> None:
    scenario = SCENARIOS[SCENARIO]
    sim, record = scenario.build(0, gateway={"inverter": {"profile": profile}})
    with sim:
        sim.run(scenario.duration)
        assert scenario.check(sim, record) == []
        inverter = sim.inverter
        assert inverter.settings.family == profile
        assert inverter.garbage == 0  # every frame read as that family reads it
        assert inverter.measurements is not None
        # A 16s pack: a factor-10 error in the voltage's unit would read 5 V or 500 V.
        assert 40.0 < inverter.measurements.voltage < 60.0


def test_sol_ark_ignores_short_frames() -> None:
    inverter = SimInverter(SimInverterSettings(family="sol-ark"))
    inverter.on_frame(0x356, bytes(6), 0.0)
    assert inverter.garbage == 1 and inverter.measurements is None
    inverter.on_frame(0x356, (533).to_bytes(2, "little") + bytes(6), 0.0)
    assert inverter.measurements is not None and inverter.measurements.voltage == 53.3


def test_a_pylontech_frame_set_fails_a_sol_ark_inverter() -> None:
    scenario = SCENARIOS[SCENARIO]
    sim, _ = scenario.build(0)
    with sim:
        sim.inverter = SimInverter(SimInverterSettings(family="sol-ark"))
        sim.run(30.0)
        assert sim.inverter.garbage > 0  # the 6- and 7-byte V1.2 frames


@pytest.mark.parametrize("profile", FAMILIES)
def test_moat_bms_sim_selects_the_profile(profile: str, tmp_path: Path) -> None:
    """`moat-bms sim --profile NAME`: the inverter bus carries that family's frame set."""
    log = tmp_path / "x.log"
    argv = ["sim", "--scenario", SCENARIO, "--duration", "5", "--speed", "max", "--no-web"]
    argv += ["--no-view", "--profile", profile, "--log", str(log), "--state-dir", str(tmp_path)]
    assert main(argv) == 0
    sent = [line.split()[2] for line in log.read_text().splitlines() if " inverter " in line]
    ids = {frame.split("#")[0] for frame in sent}
    assert FRAME_SETS[profile] <= ids
    # Battery frames only: 8 bytes each where the family reads nothing shorter.
    if profile in EIGHT_BYTES:
        lengths = {len(f.split("#")[1]) // 2 for f in sent if f.split("#")[0] not in ("305", "301")}
        assert lengths == {8}


def test_luxpower_reads_cell_mv_and_its_shutdown_request_becomes_an_alarm_event() -> None:
    scenario = SCENARIOS[SCENARIO]
    sim, _ = scenario.build(0, gateway={"inverter": {"profile": "luxpower"}})
    with sim:
        sim.run(20.0)
        assert sim.inverter.cell_mv is not None
        high, low = sim.inverter.cell_mv
        assert 2500 < low <= high < 3700  # LFP cells in mV, not a 0.01 % SoC
        assert sim.core is not None and not sim.core.inverter_shutdown_requested
        sim.inverter.shutdown_request = True
        sim.run(25.0)
        core = sim.core
        assert core.inverter_shutdown_requested
        alarms = [e for e in core.events.since(0) if e.kind == EventKind.ALARM]
        assert any("shut down" in e.message for e in alarms)
        sim.inverter.shutdown_request = False
        sim.run(30.0)
        assert not core.inverter_shutdown_requested


def test_growatt_heartbeat_keeps_the_inverter_present() -> None:
    """The simulated Growatt sends only 0x301: the gateway must take it as the keepalive."""
    scenario = SCENARIOS[SCENARIO]
    sim, _ = scenario.build(0, gateway={"inverter": {"profile": "growatt-lv"}})
    with sim:
        sim.run(60.0)
        assert sim.core is not None and sim.core.keepalive.status(sim.t) == "ok"
        assert sim.inverter.limits is not None and sim.inverter.unknown == 0
