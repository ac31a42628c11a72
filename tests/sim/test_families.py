"""The added inverter families run through a whole scenario: the gateway speaks the profile,
the simulated inverter reads the frames as that family does (gateway/sim/inverter.py)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.record.events import EventKind
from gateway.sim.inverter import SimInverter, SimInverterSettings
from gateway.sim.power import Constant
from gateway.sim.scenarios import SCENARIOS, Record
from gateway.sim.system import SimSystem, deep_merge

# cell-overvoltage stops charging while discharging stays allowed: the direction-stop path
# every family must carry without an alarm. About 2 s each.
SCENARIO = "cell-overvoltage"
FAMILIES = ["sol-ark", "luxpower", "growatt-lv", "sofar"]
FRAME_SETS = {
    "sol-ark": {0x351, 0x355, 0x356, 0x359, 0x35C, 0x35E, 0x379},
    "luxpower": {0x351, 0x355, 0x356, 0x359, 0x35C, 0x35E, 0x379},
    "growatt-lv": {0x311, 0x312, 0x313, 0x314, 0x319, 0x320, 0x321},
    "sofar": {0x351, 0x355, 0x356, 0x359, 0x35C, 0x35E},
    "pylontech-hv": set(range(0x4210, 0x42A0, 0x10)) | {0x7310, 0x7320, 0x7330, 0x7340},
}
EIGHT_BYTES = {"sol-ark", "growatt-lv", "pylontech-hv"}
INVERTER_IDS = {0x305, 0x301, 0x300, 0x4200}  # what the simulated inverters send


@pytest.mark.parametrize("profile", FAMILIES)
def test_the_scenario_holds_with_the_profile(profile: str) -> None:
    scenario = SCENARIOS[SCENARIO]
    # On the in-memory bus, as the SMA runs below: the same run as on python-can's virtual
    # bus (tests/sim/test_membus.py) for two thirds of the CPU.
    sim, record = scenario.build(0, gateway={"inverter": {"profile": profile}}, bus="memory")
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


@pytest.mark.parametrize("profile", [*FAMILIES, "pylontech-hv"])
def test_moat_bms_sim_selects_the_profile(profile: str, tmp_path: Path) -> None:
    """`moat-bms sim --profile NAME`: the inverter bus carries that family's frame set."""
    log = tmp_path / "x.log"
    argv = ["sim", "--scenario", SCENARIO, "--duration", "5", "--speed", "max", "--no-web"]
    argv += ["--no-view", "--profile", profile, "--log", str(log), "--state-dir", str(tmp_path)]
    assert main(argv) == 0
    sent = [line.split()[2] for line in log.read_text().splitlines() if " inverter " in line]
    frames = [(int(f.split("#")[0], 16), f.split("#")[1]) for f in sent]
    assert FRAME_SETS[profile] <= {i for i, _ in frames}
    # Battery frames only: 8 bytes each where the family reads nothing shorter.
    if profile in EIGHT_BYTES:
        assert {len(data) // 2 for i, data in frames if i not in INVERTER_IDS} == {8}


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


# --- Pylontech HV: a series string of nodes, polled by the inverter ----------------------


def hv_string_run(seconds: float | None = None) -> tuple[Any, Any, Any]:
    """cell-overvoltage on three 16-cell LFP nodes in series (48s, about 160 V) with the
    pylontech-hv profile: the simulated inverter polls with 0x4200 and reads only the
    29-bit answers. The drifting cell is in node 0, mid-string."""
    scenario = SCENARIOS[SCENARIO]
    setup = scenario.setup()
    setup.strings = [[0, 1, 2]]
    setup.cells_per_node = 16
    setup.pv = Constant(6000.0)  # the scenario's 2 kW for one node, for three in series
    deep_merge(setup.gateway, {"inverter": {"profile": "pylontech-hv"}})
    sim = SimSystem(setup, 0, bus="memory")
    record = Record()
    sim.observers.append(record.observe)
    seen = record.values.setdefault("hv", [])

    def watch(s: SimSystem) -> None:
        hv, limits = s.inverter.hv, s.inverter.limits
        if hv is not None and limits is not None:
            seen.append((s.t, limits.charge_voltage_limit, hv.blocks, hv.forbidden))

    sim.observers.append(watch)
    scenario.prepare(sim, record)
    sim.run(scenario.duration if seconds is None else seconds)
    return scenario, sim, record


def test_pylontech_hv_series_string_scenario() -> None:
    scenario, sim, record = hv_string_run()
    try:
        assert scenario.check(sim, record) == []  # the stop reaches the HV inverter in time
        inverter = sim.inverter
        assert inverter.settings.family == "pylontech-hv" and inverter.hv is not None
        assert inverter.garbage == 0 and inverter.unknown == 0
        assert inverter.measurements is not None
        assert 140.0 < inverter.measurements.voltage < 180.0  # 48 LFP cells, 0.1 V units
        assert inverter.limits is not None and inverter.limits.charge_voltage_limit > 150.0
        # The node tripped: the string is open; charging is forbidden by the 0x4280 mark.
        assert inverter.hv.forbidden[0]
        # 0x7320 told it the build: 48 cells, 3 modules of 16.
        cells, modules, per_module = struct.unpack_from("<HBB", inverter.hv.equipment[0x7320])
        assert (cells, modules, per_module) == (48, 3, 16)
        assert sim.core is not None and sim.core.keepalive.status(sim.t) == "ok"
        # What the inverter read, every step: never CVL 0; until the node trips, the charge
        # stop is the forbidden mark, never a protection bit (issue 15 item 1).
        seen = record.values["hv"]
        assert seen and min(cvl for _, cvl, _, _ in seen) > 150.0
        before_trip = [x for x in seen if x[0] < record.values["relay_open_at"] - 1.0]
        assert any(forbidden[0] for _, _, _, forbidden in before_trip)
        assert all(blocks == (False, False) for _, _, blocks, _ in before_trip)
    finally:
        sim.close()


def test_pylontech_hv_answers_only_what_is_asked() -> None:
    """A silent HV inverter gets nothing but the stops: the battery answers polls."""
    scenario = SCENARIOS[SCENARIO]
    setup = scenario.setup()
    setup.strings = [[0, 1, 2]]
    deep_merge(setup.gateway, {"inverter": {"profile": "pylontech-hv"}})
    sim = SimSystem(setup, 0, bus="memory")
    try:
        sim.inverter.silent = True
        sim.run(20.0)
        assert sim.inverter.frames == {}
        sim.inverter.silent = False
        sim.run(25.0)
        assert sim.inverter.frames.get(0x4220, 0) >= 4
    finally:
        sim.close()


# --- SMA Sunny Island: fault on any alarm, F952 after 60 s without 0x355 ----------------

SMA = "sma-sunny-island"


def test_sma_direction_stops_never_trip_the_sunny_island() -> None:
    """cold-charge (charging stopped, discharging allowed) and cell-overvoltage (charging
    stopped, then the node trips) with a simulated Sunny Island that faults on any 0x35A
    alarm: a direction stop goes out as a warning (issue 15 item 1), so it does not fault;
    the node's trip, which opens the only string, is a battery fault and does.

    Found here, not fixed: in the cold, the strategy's start-up hold keeps discharging
    stopped for the first ~44 s too, and with both directions stopped the low-temperature
    ALARM goes out as an alarm, so a Sunny Island faults until discharging starts (then
    restarts by itself). docs/inverters.md, "Not verified / known gaps"."""
    for name in ("cold-charge", SCENARIO):
        scenario = SCENARIOS[name]
        sim, record = scenario.build(0, gateway={"inverter": {"profile": SMA}}, bus="memory")
        faulted: list[float] = []

        def watch(s: SimSystem, faulted: list[float] = faulted) -> None:
            if s.inverter.fault:
                faulted.append(s.t)

        sim.observers.append(watch)
        try:
            sim.run(scenario.duration)
            assert scenario.check(sim, record) == [], name
        finally:
            sim.close()
        if name == "cold-charge":
            assert faulted and max(faulted) < 60.0  # the start-up hold only (see above)
        else:
            assert faulted and faulted[0] >= record.values["relay_open_at"] - 1.0


def test_sma_a_real_alarm_trips_it_until_the_battery_clears_it() -> None:
    """A node gone silent is a battery fault (alarm pairs, both directions stopped): the
    simulated Sunny Island goes to fault and stops; when the node is back and the alarm
    cleared it starts again by itself (Autostart)."""
    setup = SCENARIOS[SCENARIO].setup()  # its system, without its cell drift
    deep_merge(setup.gateway, {"inverter": {"profile": SMA}})
    sim = SimSystem(setup, 0, bus="memory")
    try:
        sim.run(30.0)
        assert sim.inverter.fault is None
        for node in sim.nodes.values():
            node.link.cut = True
        sim.run(60.0)
        assert sim.inverter.fault is not None and "alarm" in sim.inverter.fault
        assert sim.inverter.current_a == pytest.approx(0.0, abs=0.5)
        for node in sim.nodes.values():
            node.link.cut = False
        sim.run(180.0)
        assert sim.inverter.fault is None
    finally:
        sim.close()


def test_sma_f952_after_60_s_without_0x355_is_latched_until_restart() -> None:
    setup = SCENARIOS["gateway-restart"].setup()
    deep_merge(setup.gateway, {"inverter": {"profile": SMA}})
    sim = SimSystem(setup, 0, bus="memory")
    try:
        sim.at(100.0, lambda s: s.kill_gateway())
        sim.at(175.0, lambda s: s.restart_gateway())  # 75 s without 0x355
        sim.run(200.0)
        assert sim.inverter.fault == "F952 ExtBMSTimeout"
        assert sim.inverter.current_a == pytest.approx(0.0, abs=0.5)
        sim.inverter.restart()
        sim.run(230.0)
        assert sim.inverter.fault is None
    finally:
        sim.close()


def test_sma_gateway_restart_scenario_stays_within_60_s() -> None:
    """The gateway-restart scenario with the sma profile: the restart is back on the bus
    well within SMA's 60 s, so the Sunny Island never reaches F952."""
    scenario = SCENARIOS["gateway-restart"]
    sim, record = scenario.build(0, gateway={"inverter": {"profile": SMA}}, bus="memory")
    try:
        sim.run(scenario.duration)
        assert scenario.check(sim, record) == []
        assert sim.inverter.sunny_island is not None
        assert sim.inverter.sunny_island.faults == 0
    finally:
        sim.close()
