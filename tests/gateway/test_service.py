"""The gateway service as `moat-bms run` runs it: python-can virtual buses, the tick loop, a
real firmware node (on simulated hardware) stepping in the same event loop, and SIGTERM.
Waits poll for a condition with a deadline; nothing asserts on timing."""

from __future__ import annotations

import gc
import os
import signal
from pathlib import Path

import anyio
import can
import cantools
import pytest

from gateway.codec import moat_bms as battery_codec
from gateway.config.root import validate
from gateway.contracts.frame import Frame
from gateway.contracts.snapshot import ProtectionKind
from gateway.record.persist import StateStore
from gateway.runtime.service import Gateway
from gateway.sim import nodeframes as nf
from gateway.sim.power import Constant
from gateway.sim.standalone import StandaloneInverter, StandaloneNode
from tests.common import DBC_DIR

DEADLINE_S = 30.0
HEARTBEAT_ID = battery_codec.FRAME_IDS["GatewayHeartbeat"]
PYLON = cantools.database.load_file(str(DBC_DIR / "pylontech_lv.dbc"))


HAS_VCAN = Path("/sys/class/net/vcan0").exists()
BUSES = [
    pytest.param("virtual", id="virtual"),
    pytest.param(
        "socketcan",
        id="vcan0",
        marks=[
            pytest.mark.vcan,
            pytest.mark.skipif(
                not HAS_VCAN,
                reason="needs SocketCAN vcan0 (docs/inspection.md, 'vcan'); the virtual bus "
                "runs the same test",
            ),
        ],
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize("interface", BUSES)
async def test_run_closes_the_relay_feeds_the_inverter_and_stops_cleanly_on_sigterm(
    tmp_path: Path, interface: str
) -> None:
    channel = f"service-{os.getpid()}" if interface == "virtual" else "vcan0"
    settings = validate(
        {
            "battery": {"chemistry": "lfp", "topology": {"strings": [[0]]}},
            "buses": {"battery": {"interface": interface, "channel": channel}},
            "persistence": {"state_file": str(tmp_path / "state.json")},
            "web": {"enabled": False},
        }
    )
    gateway = Gateway(settings)
    # socketcan: each handle is its own socket and hears the others, like the virtual bus.
    buses = [can.Bus(interface=interface, channel=channel) for _ in range(4)]
    node_bus, listener, inverter_bus, watch = buses
    node = StandaloneNode(node_bus, listener, node_id=0, soc=0.5)
    inverter = StandaloneInverter(inverter_bus, pv=Constant(2000.0), load=Constant(0.0))
    heartbeats: list[int] = []
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(gateway.run)

            async def simulate() -> None:
                start = anyio.current_time()
                while True:
                    t = anyio.current_time() - start
                    node.step(t)
                    inverter.step(t)
                    while (msg := watch.recv(0)) is not None:
                        if msg.arbitration_id == HEARTBEAT_ID:
                            heartbeats.append(
                                battery_codec.decode_gateway_heartbeat(
                                    bytes(msg.data)
                                ).gateway_state
                            )
                    await anyio.sleep(0.05)

            tg.start_soon(simulate)
            with anyio.fail_after(DEADLINE_S):
                while not (node.hw.relay_closed and inverter.inverter.limits is not None):
                    await anyio.sleep(0.05)
            limits = inverter.inverter.limits
            assert limits is not None and limits.charge_voltage_limit > 0
            assert gateway.core.battery_counters.received > 0
            # What the gateway started with is out of the collector's sight while it runs.
            assert gc.get_freeze_count() > 0

            os.kill(os.getpid(), signal.SIGTERM)  # as systemd stops the service
            with anyio.fail_after(DEADLINE_S):
                while (
                    not heartbeats
                    or heartbeats[-1] != battery_codec.GatewayHeartbeatGatewayState.STOPPING
                ):
                    await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
    finally:
        for bus in buses:
            bus.shutdown()
    # The node heard "stopping" before the bus closed; the state is on disk.
    assert heartbeats[-1] == battery_codec.GatewayHeartbeatGatewayState.STOPPING
    state = StateStore(tmp_path / "state.json").load()
    assert state is not None and "soc" in state
    assert gc.get_freeze_count() == 0  # given back when it stopped


class BatchRig:
    """The service's Gateway, not running: batches handed to it as the battery port's
    reader thread hands them over, ticks with simulated time, its inverter frames on a
    python-can virtual bus."""

    def __init__(self, tmp_path: Path) -> None:
        tag = f"batch-{os.getpid()}-{id(self)}"
        settings = validate(
            {
                "battery": {"topology": {"strings": [[0]], "cells_per_node": 16}},
                "buses": {
                    "battery": {"interface": "virtual", "channel": f"{tag}-bat"},
                    "inverter": {"interface": "virtual", "channel": f"{tag}-inv"},
                },
                "inverter": {"profile": "pylontech"},
                "persistence": {"state_file": str(tmp_path / "state.json")},
                "web": {"enabled": False},
            }
        )
        self.t = 1000.0
        self.gateway = Gateway(settings, clock=lambda: self.t)
        self.gateway.inverter.bus = can.Bus(interface="virtual", channel=f"{tag}-inv")
        self.watch = can.Bus(interface="virtual", channel=f"{tag}-inv")
        self.alive = 0

    def node(self) -> list[Frame]:
        self.alive = (self.alive + 1) & 0x0F
        return [
            nf.node_state(0, self.alive, relay=1),
            nf.pack_status(0, 16 * 3.33, 2.0),
            nf.cell_extremes(0, 3.30, 3.35),
            nf.temperature_extremes(0, 20.0, 22.0),
        ]

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds / 0.1)):
            self.t += 0.1
            self.gateway.on_battery_batch(self.node())
            self.gateway.tick()

    def inverter_frames(self) -> list[can.Message]:
        frames = []
        while (msg := self.watch.recv(0)) is not None:
            frames.append(msg)
        return frames

    def close(self) -> None:
        assert self.gateway.inverter.bus is not None
        self.gateway.inverter.bus.shutdown()
        self.watch.shutdown()


def test_a_stop_goes_out_before_the_frames_behind_it_in_the_batch(tmp_path: Path) -> None:
    rig = BatchRig(tmp_path)
    try:
        rig.run(120.0)
        rig.inverter_frames()
        assert rig.gateway.core.decision.limits.charge_enable
        before = rig.gateway.urgent_ticks
        # The over-voltage frame, then the node's next PackStatus and temperatures: a batch
        # the reader thread collected while it was held up, the current changed in it.
        rig.gateway.on_battery_batch(
            [
                nf.cell_extremes(0, 3.30, 3.70),
                nf.pack_status(0, 16 * 3.33, 40.0),
                nf.temperature_extremes(0, 20.0, 22.0),
            ]
        )
        sent = rig.inverter_frames()
        limits = PYLON.decode_message(
            0x351, next(bytes(m.data) for m in sent if m.arbitration_id == 0x351)
        )
        measured = PYLON.decode_message(
            0x356, next(bytes(m.data) for m in sent if m.arbitration_id == 0x356)
        )
        assert limits["ChargeCurrentLimit"] == 0
        # The stop's frame set was made from the frames up to the over-voltage one (2 A),
        # not after the rest of the batch (40 A).
        assert measured["Current"] == pytest.approx(2.0)
        assert rig.gateway.urgent_ticks == before + 1
        rig.t += 0.1
        rig.gateway.tick()
        assert rig.gateway.core.snapshot.current == pytest.approx(40.0)
    finally:
        rig.close()


def test_a_second_urgent_frame_in_the_batch_ticks_again_at_its_end(tmp_path: Path) -> None:
    rig = BatchRig(tmp_path)
    try:
        rig.run(120.0)
        before = rig.gateway.urgent_ticks
        kind = ProtectionKind.DISCHARGE_OVER_TEMP
        fault = nf.node_state(0, (rig.alive + 1) & 0x0F, relay=1, faults=frozenset({kind}))
        rig.gateway.on_battery_batch([nf.cell_extremes(0, 3.30, 3.70), fault])
        assert rig.gateway.urgent_ticks == before + 2
        # The last tick saw the whole batch: the fault stops discharging as well.
        assert not rig.gateway.core.decision.limits.discharge_enable
    finally:
        rig.close()
