"""Commercial packs and moat-bms nodes as one battery: the core with battery.packs, fed pack
readings (and node frames) on simulated time."""

from __future__ import annotations

import math

import pytest

from gateway.config.root import validate
from gateway.contracts.decision import Alarm, RelayAction
from gateway.contracts.frame import Frame
from gateway.contracts.snapshot import NodeState, ProtectionKind
from gateway.core import GatewayCore
from gateway.record.events import EventKind
from gateway.sim import nodeframes as nf
from gateway.soc import SocSource
from gateway.sources.packs.reading import PackError, PackLimits, PackReading
from gateway.sources.packs.source import PackSwitch
from gateway.web import views

CELLS = 16


def jbd(pack: int) -> dict[str, object]:
    return {"source": "jbd", "port": f"/dev/ttyUSB{pack}", "timeout_s": 5.0}


def core_of(strings: list[list[int]], packs: dict[int, dict[str, object]]) -> GatewayCore:
    settings = validate(
        {
            "battery": {
                "topology": {"strings": strings, "cells_per_node": CELLS, "capacity_ah": 100},
                "packs": packs,
            },
            "inverter": {"profile": "pylontech"},
        }
    )
    return GatewayCore(settings, 1000.0)


def reading(
    volts: float = 3.30,
    *,
    charge: bool | None = True,
    discharge: bool | None = True,
    alarms: frozenset[str] = frozenset(),
    cells: int = CELLS,
    amps: float = 0.0,
) -> PackReading:
    return PackReading(
        cells=(volts,) * (cells - 1) + (volts + 0.01,),
        temperatures=(21.0, 23.0),
        voltage=volts * cells,
        current=amps,
        charge_on=charge,
        discharge_on=discharge,
        alarms=alarms,
    )


class Run:
    """A core ticked every 0.5 s, each pack read every 1 s with what `readings` says."""

    def __init__(self, core: GatewayCore) -> None:
        self.core = core
        self.t = 1000.0
        self.switches: list[PackSwitch] = []

    def run(self, seconds: float, readings: dict[int, PackReading | PackError | None]) -> None:
        end = self.t + seconds
        while self.t < end:
            self.t += 0.5
            if round(self.t * 2) % 2 == 0:
                for pack, result in readings.items():
                    if result is not None:  # None: silent
                        self.core.on_pack_reading(pack, result, self.t)
            self.switches += self.core.tick(self.t).packs


def test_two_packs_in_parallel_one_goes_silent_its_string_stops_and_limits_halve() -> None:
    run = Run(core_of([[0], [1]], {0: jbd(0), 1: jbd(1)}))
    run.run(120, {0: reading(), 1: reading()})
    snap, limits = run.core.snapshot, run.core.decision.limits
    assert snap.strings_online == 2 and snap.valid
    both_ccl, both_dcl = limits.ccl, limits.dcl
    assert both_ccl > 0 and both_dcl > 0
    run.run(120, {0: reading(), 1: None})  # pack 1's BMS stops answering
    snap, limits = run.core.snapshot, run.core.decision.limits
    assert not snap.nodes[1].present
    assert snap.strings[1].blocked and snap.strings[1].reason == "node 1 missing"
    assert snap.strings_online == 1
    assert limits.ccl == pytest.approx(both_ccl / 2, rel=0.05)
    assert limits.dcl == pytest.approx(both_dcl / 2, rel=0.05)
    assert Alarm.NODE_MISSING in run.core.decision.alarms
    missing = [e for e in run.core.events.since(0) if e.kind == EventKind.NODE_MISSING]
    assert [e.node for e in missing] == [1]
    assert "no good reading from its BMS" in missing[0].message


def test_garbled_readings_are_never_used_and_the_pack_goes_missing_after_its_timeout() -> None:
    run = Run(core_of([[0], [1]], {0: jbd(0), 1: jbd(1)}))
    run.run(30, {0: reading(), 1: reading(3.31)})
    bad = PackError("jbd /dev/ttyUSB1: checksum 0x1234, expected 0x4321")
    run.run(4, {0: reading(), 1: bad})
    assert run.core.snapshot.nodes[1].present  # within its timeout: the last good reading
    run.run(2, {0: reading(), 1: bad})
    assert not run.core.snapshot.nodes[1].present
    assert run.core.snapshot.strings[1].blocked
    assert run.core.packs is not None
    assert run.core.packs.packs.errors(run.t) == [f"pack 1: {bad}"]
    # The page and the API show each pack, with why its readings fail.
    shown = views.status(run.core, run.t)["packs"]
    assert [(p["pack"], p["source"], p["present"]) for p in shown] == [
        (0, "jbd", True),
        (1, "jbd", False),
    ]
    assert shown[1]["errors"] == 6 and shown[1]["last_error"] == str(bad)
    assert shown[0]["cells"][-1] == pytest.approx(3.31)


def node_round(node: nf.NodeFrames) -> tuple[Frame, ...]:
    """One of every periodic frame a node sends, in its order."""
    return (
        node.node_state(),
        node.pack_status(),
        node.cell_extremes(),
        node.temperature_extremes(),
        node.cell_voltages(),
        node.cell_temperatures(),
    )


def test_a_string_mixes_a_node_and_a_pack() -> None:
    core = core_of([[0, 1]], {1: jbd(1)})
    node = nf.NodeFrames(0, CELLS)
    t = 1000.0
    for _ in range(40):
        t += 0.5
        for frame in node_round(node):
            core.on_battery_frame(frame, t)
        core.on_pack_reading(1, reading(3.40), t)
        core.tick(t)
    snap = core.snapshot
    string = snap.strings[0]
    assert string.nodes == (0, 1) and string.online, string.reason
    assert snap.cells_in_series == 2 * CELLS
    assert string.voltage == pytest.approx(snap.nodes[0].voltage + 3.40 * CELLS)
    assert snap.max_cell == pytest.approx(3.41) and snap.max_cell_at.node == 1
    assert snap.max_cell_at.cell == CELLS
    assert len(snap.cell_voltages[1]) == CELLS
    assert snap.min_cell_at.node == 0  # the node's cells are lower
    assert not snap.cells_unreported


def test_a_bms_that_cut_off_is_tripped_reported_and_never_switched_on() -> None:
    run = Run(core_of([[0], [1]], {0: jbd(0), 1: jbd(1)}))
    run.run(30, {0: reading(), 1: reading()})
    cut = reading(2.50, charge=False, discharge=False, alarms=frozenset({"Cell Undervoltage"}))
    run.run(10, {0: reading(), 1: cut})
    snap = run.core.snapshot
    pack = snap.nodes[1]
    assert pack.state == NodeState.TRIPPED and not pack.relay_closed
    assert pack.faults == {ProtectionKind.CELL_UNDER_VOLTAGE}
    assert snap.strings[1].reason == "node 1 tripped"
    assert Alarm.NODE_TRIPPED in run.core.decision.alarms
    tripped = [e for e in run.core.events.since(0) if e.kind == EventKind.NODE_TRIPPED]
    assert [(e.node, e.message) for e in tripped] == [
        (1, "the BMS cut off (both switches off): CellUnderVoltage")
    ]
    # The user asks for it to be closed: while the BMS reports its fault, never.
    run.core.request_relay(1, RelayAction.CLOSE, run.t)
    run.core.request_reset(1, run.t)
    run.switches.clear()
    run.run(10, {0: reading(), 1: cut})
    assert [s for s in run.switches if s.charge or s.discharge] == []


def test_the_gateway_switches_a_pack_off_and_on_again_only_without_a_fault() -> None:
    run = Run(core_of([[0], [1]], {0: jbd(0), 1: jbd(1)}))
    run.run(30, {0: reading(), 1: reading()})
    assert run.switches == []  # both packs on, as the policy wants: nothing to send
    run.core.request_relay(1, RelayAction.OPEN, run.t)
    run.run(2, {0: reading(), 1: reading()})
    assert [(s.pack, s.charge, s.discharge) for s in run.switches] == [(1, False, False)]
    run.switches.clear()
    off = reading(charge=False, discharge=False)
    run.run(5, {0: reading(), 1: off})
    assert run.core.snapshot.nodes[1].state == NodeState.STANDBY  # off as asked: no trip
    assert run.switches == []  # confirmed: not repeated
    run.core.request_relay(1, RelayAction.NONE, run.t)  # back to automatic: close it
    run.run(2, {0: reading(), 1: off})
    assert [(s.pack, s.charge, s.discharge) for s in run.switches] == [(1, True, True)]


def test_a_pack_with_its_charge_switch_off_blocks_charging_only() -> None:
    run = Run(core_of([[0]], {0: jbd(0)}))
    run.run(60, {0: reading()})
    assert run.core.decision.limits.ccl > 0
    run.run(60, {0: reading(3.45, charge=False)})  # full: the BMS stopped charging
    snap, limits = run.core.snapshot, run.core.decision.limits
    assert snap.strings[0].online and snap.nodes[0].relay_closed
    assert ProtectionKind.PACK_OVER_VOLTAGE in snap.nodes[0].warnings
    assert limits.ccl == 0 and not limits.charge_enable
    assert limits.dcl > 0 and limits.discharge_enable


def test_a_pack_with_other_cells_than_configured_stops_charging() -> None:
    run = Run(core_of([[0]], {0: jbd(0)}))
    run.run(30, {0: reading(cells=15)})
    assert run.core.decision.limits.ccl == 0
    assert "charging stopped: pack 0 reports 15 cells, configured 16" in run.core.decision.notes


def pylon(
    volts: float = 52.0, *, ccl: float = 40.0, dcl: float = 80.0, soc: float = 60.0
) -> PackReading:
    return PackReading(
        cells=(),
        temperatures=(22.0,),
        voltage=volts,
        current=0.0,
        charge_on=True,
        discharge_on=True,
        limits=PackLimits(53.2, ccl, dcl),
        soc=soc,
    )


def pylon_cfg(channel: str) -> dict[str, object]:
    return {"source": "pylontech-can", "bus": {"interface": "virtual", "channel": channel}}


def test_batteries_without_cells_charge_within_their_own_limits() -> None:
    run = Run(core_of([[0], [1]], {0: pylon_cfg("a"), 1: pylon_cfg("b")}))
    run.run(300, {0: pylon(ccl=40.0), 1: pylon(ccl=10.0)})
    snap, limits = run.core.snapshot, run.core.decision.limits
    assert snap.cells_unreported and math.isnan(snap.max_cell)
    assert snap.strings_online == 2
    # Each string at most its battery's CCL (the strategy's share is more than either).
    assert limits.ccl == pytest.approx(40.0 + 10.0)
    assert limits.charge_enable
    assert limits.cvl == pytest.approx(53.2)  # the batteries' own charge voltage
    assert limits.dcl == pytest.approx(100.0)  # the strategy's 100 A: below 2 x 80 A
    # No cell voltage to calibrate on: the batteries' own SoC (each string its lowest).
    run.run(10, {0: pylon(soc=70.0), 1: pylon(soc=40.0)})
    assert run.core.soc_state.source == SocSource.PACKS
    assert run.core.soc_state.soc == pytest.approx(55.0)


def test_beside_nodes_a_battery_bounds_the_charge_voltage_but_does_not_set_it() -> None:
    core = core_of([[0], [1]], {1: pylon_cfg("c")})
    node = nf.NodeFrames(0, CELLS)
    low = PackReading(
        cells=(),
        temperatures=(22.0,),
        voltage=52.8,
        current=0.0,
        charge_on=True,
        discharge_on=True,
        limits=PackLimits(50.0, 40.0, 80.0),
    )
    t = 1000.0
    for _ in range(120):
        t += 0.5
        for frame in node_round(node):
            core.on_battery_frame(frame, t)
        core.on_pack_reading(1, low, t)
        core.tick(t)
    assert core.decision is not None
    assert not core.snapshot.cells_unreported  # the node's cells rule the strategy
    assert core.snapshot.max_cell_at is not None and core.snapshot.max_cell_at.node == 0
    assert core.decision.limits.cvl == pytest.approx(50.0)  # never above the battery's own
    assert any(n.startswith("within the packs' own limits: 50.0 V") for n in core.decision.notes)
