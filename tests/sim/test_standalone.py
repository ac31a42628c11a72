"""The standalone simulated parts (`moat-bms node`, `moat-bms inverter`) with the gateway
core on one python-can virtual bus, driven by simulated time; the commands themselves on
the virtual bus; the three processes on vcan0 where it exists."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import can
import pytest

from gateway.codec.pylontech_lv import FRAME_IDS as PYLON_IDS
from gateway.codec.pylontech_lv import decode_battery_limits
from gateway.codec.simulation import decode_sim_battery_current
from gateway.config.root import validate
from gateway.core import GatewayCore
from gateway.runtime.canport import frame_of
from gateway.sim.power import Constant
from gateway.sim.standalone import CURRENT_ID, StandaloneInverter, StandaloneNode

STEP_S = 0.1
LIMITS_ID = PYLON_IDS["BatteryLimits"]


def test_node_inverter_and_gateway_on_one_bus_charge_the_battery() -> None:
    channel = f"standalone-{os.getpid()}"
    buses = [can.Bus(interface="virtual", channel=channel) for _ in range(4)]
    node_bus, listener, inverter_bus, gateway_bus = buses
    try:
        node = StandaloneNode(node_bus, listener, node_id=0, cells=16, soc=0.4)
        inverter = StandaloneInverter(inverter_bus, pv=Constant(3000.0), load=Constant(500.0))
        settings = validate(
            {
                "battery": {"chemistry": "lfp", "topology": {"strings": [[0]]}},
                "web": {"enabled": False},
            }
        )
        core = GatewayCore(settings, 0.0, None)
        t = 0.0
        for _ in range(int(120 / STEP_S)):
            t = round(t + STEP_S, 6)
            inverter.step(t)
            node.step(t)
            while (msg := gateway_bus.recv(0)) is not None:
                core.on_battery_frame(frame_of(msg), t)
            out = core.tick(t)
            for frame in out.battery + out.inverter:
                gateway_bus.send(
                    can.Message(arbitration_id=frame.id, data=frame.data, is_extended_id=False)
                )
        assert node.hw.relay_closed, "the gateway closed the node's relay"
        limits = inverter.inverter.limits
        assert limits is not None and limits.charge_voltage_limit > 0
        # PV above the load: the inverter charges, and the node's pack carries the current.
        assert inverter.inverter.current_a > 5.0
        assert node.current_a == pytest.approx(inverter.inverter.current_a, abs=1.0)
        assert node.pack.measured_current_a > 5.0
        # The gateway sees it in the node's frames.
        assert core.model.snapshot(t).current == pytest.approx(
            node.pack.measured_current_a, abs=1.0
        )
    finally:
        for bus in buses:
            bus.shutdown()


def test_without_the_inverter_the_pack_carries_no_current() -> None:
    channel = f"standalone-quiet-{os.getpid()}"
    bus, listener, sender = (can.Bus(interface="virtual", channel=channel) for _ in range(3))
    try:
        node = StandaloneNode(bus, listener)
        sender.send(
            can.Message(arbitration_id=CURRENT_ID, data=b"\x10\x27\x00\x00", is_extended_id=False)
        )
        node.step(0.1)
        assert node.current_a == pytest.approx(10.0)
        node.step(0.5)
        node.step(1.2)  # more than a second without a current frame: the inverter is gone
        assert node.current_a == 0.0
    finally:
        for b in (bus, listener, sender):
            b.shutdown()


@pytest.mark.parametrize("command", [["node", "--node-id", "3"], ["inverter"]])
def test_the_commands_run_and_stop(command: list[str]) -> None:
    argv = [sys.executable, "-m", "gateway", *command, "--interface", "virtual", "--channel", "x"]
    result = subprocess.run(
        [*argv, "--duration", "1"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


def test_a_bad_node_id_is_refused() -> None:
    argv = [sys.executable, "-m", "gateway", "node", "--node-id", "16", "--interface", "virtual"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "--node-id must be 0..15" in result.stdout


HAS_VCAN = Path("/sys/class/net/vcan0").exists()


@pytest.mark.vcan
@pytest.mark.skipif(
    not HAS_VCAN,
    reason="needs SocketCAN vcan0 (modprobe vcan; ip link add dev vcan0 type vcan; "
    "ip link set up vcan0) -- the virtual-bus tests above cover the same path",
)
def test_three_processes_on_vcan0(tmp_path: Path) -> None:
    config = tmp_path / "moat-bms.yaml"
    config.write_text(
        "battery:\n  chemistry: lfp\n  topology:\n    strings: [[0]]\n"
        f"persistence:\n  state_file: {tmp_path / 'state.json'}\nweb:\n  enabled: false\n"
    )
    bus_args = ["--interface", "socketcan", "--channel", "vcan0"]
    me = [sys.executable, "-m", "gateway"]
    procs = [
        subprocess.Popen([*me, "node", *bus_args, "--duration", "60"]),
        subprocess.Popen([*me, "inverter", *bus_args, "--duration", "60"]),
        subprocess.Popen([*me, "run", "--config", str(config), *bus_args]),
    ]
    seen_cvl = seen_current = 0.0
    try:
        with can.Bus(interface="socketcan", channel="vcan0") as bus:
            deadline = time.monotonic() + 45
            while time.monotonic() < deadline and not (seen_cvl > 0 and seen_current > 1):
                msg = bus.recv(0.5)
                if msg is None:
                    continue
                if msg.arbitration_id == LIMITS_ID:
                    seen_cvl = decode_battery_limits(bytes(msg.data)).charge_voltage_limit
                elif msg.arbitration_id == CURRENT_ID:
                    seen_current = decode_sim_battery_current(bytes(msg.data)).current
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
    assert seen_cvl > 0, "the gateway never sent its limits on vcan0"
    assert seen_current > 1, "the inverter never charged"
