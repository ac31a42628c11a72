"""`moat-bms sim` with commercial packs: a simulated Pylontech battery (its own BMS on a pack
of the physics, V1.2 frames on a bus of its own) beside a firmware node, as one battery."""

from __future__ import annotations

import pytest

from gateway.cli import main
from gateway.contracts.decision import Alarm
from gateway.contracts.snapshot import NodeState
from gateway.record.events import EventKind
from gateway.sim.packs import SIM_PACKS
from gateway.sim.power import Constant
from gateway.sim.serial_packs import SimSerialBms
from gateway.sim.system import SimSetup, SimSystem
from gateway.sources.packs.settings import CAN_SOURCES, SERIAL_SOURCES

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


@pytest.mark.parametrize("source", ["jbd", "jk", "jk-modbus", "daly"])
def test_moat_bms_sim_runs_a_configuration_with_a_serial_bms(tmp_path, capsys, source) -> None:
    path = tmp_path / "moat.yaml"
    path.write_text(CONFIG % f"{source}, port: /dev/ttyUSB0")
    argv = ["sim", "--config", str(path), "--duration", "60", "--speed", "max", *QUIET]
    assert main(argv) == 0, capsys.readouterr().err


SERIAL = {
    1: {"source": "jbd", "port": "/dev/ttyUSB0"},
    2: {"source": "jk", "port": "/dev/ttyUSB1"},
    3: {"source": "jk-modbus", "port": "/dev/ttyUSB2"},
    4: {"source": "daly", "port": "/dev/ttyUSB3"},
}


def serial_setup() -> SimSetup:
    return SimSetup(
        strings=[[0], [1], [2], [3], [4]],
        pv=Constant(1500.0),
        gateway={"battery": {"packs": SERIAL}},
    )


def test_a_node_and_the_four_serial_bmses_read_through_their_codecs_charge_as_one() -> None:
    with SimSystem(serial_setup(), bus="memory") as sim:
        sim.run(120)
        core = sim.core
        assert core is not None
        snap = core.snapshot
        assert snap.strings_online == 5, [s.reason for s in snap.strings]
        for pack_id, pack in sim.packs.items():
            node = snap.nodes[pack_id]
            assert node.present and node.state == NodeState.ACTIVE, (pack.name, node)
            # The gateway's reading is the physics' pack, through the protocol's bytes.
            assert node.voltage == pytest.approx(sim.battery.packs[pack_id].voltage, abs=0.1)
            assert isinstance(pack, SimSerialBms) and pack.requests > 0
            assert sim.battery.string_currents[pack_id] > 0  # it takes its share of the PV
        assert core.decision.limits.ccl > 0


def test_a_serial_bms_that_cuts_off_is_reported_and_never_switched_on_while_it_stands() -> None:
    with SimSystem(serial_setup(), bus="memory") as sim:
        sim.run(60)
        core = sim.core
        assert core is not None
        before = core.decision.limits.ccl
        jbd = sim.packs[1]
        assert isinstance(jbd, SimSerialBms)
        jbd.extra_alarms = 1 << 11  # front-end IC error: its BMS holds both MOSFETs off
        cut_at = sim.t
        sim.run(60)
        snap = core.snapshot
        assert snap.nodes[1].state == NodeState.TRIPPED
        assert not snap.strings[1].online and not jbd.relay_closed
        assert not sim.battery.string_currents[1]
        assert core.decision.limits.ccl == pytest.approx(before * 4 / 5, rel=0.05)
        tripped = [e for e in core.events.since(0) if e.kind == EventKind.NODE_TRIPPED]
        assert [e.node for e in tripped] == [1] and "SensorFault" in tripped[0].message
        assert not [c for c in jbd.commands if c[0] >= cut_at and (c[1] or c[2])]
        jbd.extra_alarms = 0  # the fault goes: the pack carries current again
        sim.run(60)
        assert core.snapshot.nodes[1].state == NodeState.ACTIVE
        assert core.snapshot.strings[1].online and jbd.relay_closed


def test_a_silent_serial_bms_is_missing_and_its_string_stops() -> None:
    with SimSystem(serial_setup(), bus="memory") as sim:
        sim.run(60)
        core = sim.core
        assert core is not None
        jk = sim.packs[2]
        assert isinstance(jk, SimSerialBms)
        jk.silent = True
        sim.run(30)
        snap = core.snapshot
        assert snap.strings[2].reason == "node 2 missing"
        assert Alarm.NODE_MISSING in core.decision.alarms


def test_the_simulator_has_every_source_the_config_accepts() -> None:
    assert set(SIM_PACKS) == {*SERIAL_SOURCES, *CAN_SOURCES}
