"""`moat-bms sim` with commercial packs: a simulated Pylontech battery (its own BMS on a pack
of the physics, V1.2 frames on a bus of its own) beside a firmware node, as one battery."""

from __future__ import annotations

import pytest

from gateway.cli import main
from gateway.contracts.decision import Alarm
from gateway.contracts.snapshot import NodeState
from gateway.sim.power import Constant
from gateway.sim.system import SimSetup, SimSystem

PYLON = {"source": "pylontech-can", "bus": {"interface": "virtual", "channel": "rack"}}


def setup(**extra: object) -> SimSetup:
    return SimSetup(
        strings=[[0], [1]],
        pv=Constant(1500.0),
        gateway={"battery": {"packs": {1: PYLON}}},
        **extra,  # type: ignore[arg-type]
    )


def test_a_node_and_a_pylontech_battery_in_parallel_charge_as_one_then_one_goes_silent() -> None:
    with SimSystem(setup(), bus="memory") as sim:
        sim.run(120)
        core = sim.core
        assert core is not None
        snap = core.snapshot
        assert snap.strings_online == 2, [s.reason for s in snap.strings]
        assert snap.nodes[1].state == NodeState.ACTIVE and snap.nodes[1].present
        assert snap.max_cell_at is not None  # the node's cells and the battery's 0x373
        assert sim.packs[1].keepalives >= 100  # the gateway answers it every poll
        both = core.decision.limits.ccl
        assert both > 50
        assert sim.battery.string_currents[1] > 0  # the battery takes its share of the PV
        sim.packs[1].silent = True  # its CAN cable is cut
        sim.run(30)
        snap = core.snapshot
        assert snap.strings[1].reason == "node 1 missing"
        assert core.decision.limits.ccl == pytest.approx(both / 2, rel=0.05)
        assert Alarm.NODE_MISSING in core.decision.alarms


def test_a_pylontech_battery_that_stops_charging_stops_the_gateway_charging() -> None:
    with SimSystem(setup(), bus="memory") as sim:
        sim.run(60)
        core = sim.core
        assert core is not None
        assert core.decision.limits.ccl > 0
        battery = sim.packs[1]
        battery.charge_stop_v = 3.0  # its BMS thinks it is full: charge off, discharge on
        sim.run(10)
        assert not battery.charge_on and battery.discharge_on
        snap = core.snapshot
        assert snap.strings[1].online  # it still carries current (discharge)
        assert core.decision.limits.ccl == pytest.approx(0.0)
        assert core.decision.limits.dcl > 0


QUIET = ("--no-web", "--no-view")
CONFIG = """\
battery:
  topology:
    strings: [[0], [1]]
    cells_per_node: 16
  packs:
    1: {source: %s}
"""


def test_moat_bms_sim_runs_a_configuration_with_a_pylontech_battery(tmp_path, capsys) -> None:
    path = tmp_path / "moat.yaml"
    path.write_text(CONFIG % "pylontech-can, bus: {interface: socketcan, channel: can1}")
    argv = ["sim", "--config", str(path), "--duration", "60", "--speed", "max", *QUIET]
    assert main(argv) == 0, capsys.readouterr().err


def test_moat_bms_sim_says_which_packs_it_cannot_simulate(tmp_path, capsys) -> None:
    path = tmp_path / "moat.yaml"
    path.write_text(CONFIG % "daly, port: /dev/ttyUSB0")
    argv = ["sim", "--config", str(path), "--duration", "60", "--speed", "max", *QUIET]
    assert main(argv) == 2
    assert "battery.packs.1: the simulator has no daly pack" in capsys.readouterr().err
