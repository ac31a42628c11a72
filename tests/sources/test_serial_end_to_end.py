"""`moat-bms run` (Gateway.run) with commercial serial BMSes on real pseudo-terminals: two JBD
packs in parallel strings and a JK pack (RS485 0x4E57) in a third, each answered by its
register-level emulator (gateway/sim/bms/) on one side of an os.openpty pair, the gateway's
serial links opening the other through pyserial by its /dev/pts path, as a USB adapter. The
inverter bus is a python-can virtual bus, read with the Sol-Ark document's own decoder
(tests/inverter/family_decoders.py). Waits poll for a condition with a deadline; nothing
asserts on timing."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import anyio
import can
import pytest

from gateway.config.root import validate
from gateway.contracts.decision import Alarm
from gateway.contracts.frame import Frame
from gateway.contracts.snapshot import NodeState
from gateway.record.events import EventKind
from gateway.runtime.service import Gateway
from gateway.sim.bms import JbdEmulator, JkEmulator, PackState
from gateway.sim.bms.pack import Emulator
from gateway.sim.bms.pty import Fault, PtyServer
from gateway.sources.packs import jbd
from tests.inverter.family_decoders import sol_ark

DEADLINE_S = 20.0
CELLS = 16
CELL_MV = 3300
FRONT_END_ERROR = 1 << 11  # JBD protection bit 11: its BMS holds both MOSFETs off


class RecordingJbd(JbdEmulator):
    """A JBD emulator that keeps the MOS control writes it was sent."""

    def __init__(self, pack: PackState) -> None:
        super().__init__(pack)
        self.switched_on = 0  # 0xE1 writes asking for a MOSFET on while an alarm stands

    def respond(self, request: bytes) -> bytes:
        if request[1:3] == bytes((jbd.WRITE, jbd.MOS)) and self.pack.alarms:
            self.switched_on += request[5] & 3 != 3  # a bit clear: that MOSFET on
        return super().respond(request)


def pack_state() -> PackState:
    return PackState(cells_mv=[CELL_MV] * CELLS, temps_c=[24, 25], capacity_mah=100_000)


def config(tmp_path: Path, tag: str, ports: dict[int, str]) -> dict[str, object]:
    def pack(source: str, port: str) -> dict[str, object]:
        return {"source": source, "port": port, "poll_s": 0.5, "timeout_s": 3.0}

    return {
        "battery": {
            "topology": {"strings": [[0], [1], [2]], "cells_per_node": CELLS, "capacity_ah": 100},
            "packs": {0: pack("jbd", ports[0]), 1: pack("jbd", ports[1]), 2: pack("jk", ports[2])},
        },
        "buses": {
            "battery": {"interface": "virtual", "channel": f"{tag}-nodes"},
            "inverter": {"interface": "virtual", "channel": f"{tag}-inverter"},
        },
        "inverter": {"profile": "sol-ark", "period": 0.2},
        "strategy": {
            "limits": {"hold_s": 0.0, "ramp_a_per_s": 1000.0},
            "phases": {"resume_after_s": 1.0},
        },
        "persistence": {"state_file": str(tmp_path / "state.json")},
        "web": {"enabled": False},
    }


class InverterView:
    """The inverter's reading of the bus, by the Sol-Ark document's decoder."""

    def __init__(self, bus: can.BusABC) -> None:
        self.bus = bus
        self.seen: dict[int, dict[str, float]] = {}

    def drain(self) -> None:
        while (msg := self.bus.recv(0)) is not None:
            if msg.arbitration_id in (0x351, 0x355, 0x356):
                frame = Frame(msg.arbitration_id, bytes(msg.data))
                self.seen.update(sol_ark([frame]))

    @property
    def ccl(self) -> float:
        return self.seen.get(0x351, {}).get("ccl", float("nan"))


async def until(view: InverterView, condition: Callable[[], bool]) -> None:
    with anyio.fail_after(DEADLINE_S):
        while True:
            view.drain()
            if condition():
                return
            await anyio.sleep(0.05)


@pytest.mark.anyio
async def test_run_makes_one_battery_of_two_jbd_packs_and_a_jk_pack_on_serial_lines(
    tmp_path: Path,
) -> None:
    tag = f"serial-{os.getpid()}"
    first = RecordingJbd(pack_state())
    emulators: dict[int, Emulator] = {0: JbdEmulator(pack_state()), 1: first}
    emulators[2] = JkEmulator(PackState(cells_mv=[CELL_MV] * CELLS, temps_c=[30, 25, 26]))
    servers = {pack: PtyServer(emulator).start() for pack, emulator in emulators.items()}
    inverter = can.Bus(interface="virtual", channel=f"{tag}-inverter")
    view = InverterView(inverter)
    settings = validate(config(tmp_path, tag, {p: s.port for p, s in servers.items()}))
    gateway = Gateway(settings)
    core = gateway.core
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(gateway.run)

            # One battery of three strings: the inverter sees the packs' voltage and the
            # three strings' limits.
            await until(view, lambda: core.snapshot.strings_online == 3 and view.ccl > 0)
            three = core.decision.limits.ccl
            await until(view, lambda: view.ccl == pytest.approx(three, abs=0.1))
            assert view.seen[0x356]["voltage"] == pytest.approx(CELLS * CELL_MV / 1000, abs=0.1)
            assert 0 < view.seen[0x355]["soc"] <= 100
            for pack in emulators:
                assert core.snapshot.nodes[pack].state == NodeState.ACTIVE
                assert servers[pack].answered > 0

            # The JK pack goes silent: its string stops, the limits are two strings'.
            servers[2].inject(Fault.SILENCE, times=1_000_000)
            await until(
                view,
                lambda: (
                    core.snapshot.strings[2].blocked
                    and view.ccl == pytest.approx(three * 2 / 3, rel=0.02)
                ),
            )
            assert core.snapshot.strings[2].reason == "node 2 missing"
            assert Alarm.NODE_MISSING in core.decision.alarms

            # The first JBD's BMS cuts off (both MOSFETs off on its own alarm): seen, reported,
            # and never switched on while the alarm stands.
            first.pack.alarms = FRONT_END_ERROR
            await until(
                view,
                lambda: (
                    core.snapshot.nodes[1].state == NodeState.TRIPPED
                    and view.ccl == pytest.approx(three / 3, rel=0.02)
                ),
            )
            tripped = [e for e in core.events.since(0) if e.kind == EventKind.NODE_TRIPPED]
            assert [e.node for e in tripped] == [1]
            assert "SensorFault" in tripped[0].message  # JBD's front-end IC error
            assert Alarm.NODE_TRIPPED in core.decision.alarms
            polls = servers[1].requests
            await until(view, lambda: servers[1].requests >= polls + 10)  # five more polls
            assert core.snapshot.nodes[1].state == NodeState.TRIPPED
            assert first.switched_on == 0
            tg.cancel_scope.cancel()
    finally:
        inverter.shutdown()
        for server in servers.values():
            server.stop()
    assert gateway.packs is not None and gateway.packs.errors > 0  # the JK's silence was seen
