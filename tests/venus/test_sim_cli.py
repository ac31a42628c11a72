"""`moat-bms sim --venus ADDRESS`: the simulated battery on a D-Bus that dbus-send reads, as
docs/venus.md shows it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.venus.daemon import DBUS_SEND, DBusDaemon, needs_dbus

pytestmark = needs_dbus

WAIT_S = 20.0
NAME = "com.victronenergy.battery.moat_bms"
DOUBLE = re.compile(r"variant\s+double\s+([0-9.]+)")


def dbus_send(
    address: str, path: str, member: str = "GetValue"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(DBUS_SEND),
            f"--bus={address}",
            "--print-reply",
            f"--dest={NAME}",
            path,
            f"com.victronenergy.BusItem.{member}",
        ],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


def test_sim_serves_the_battery_that_dbus_send_reads(tmp_path: Path) -> None:
    daemon = DBusDaemon(tmp_path)
    daemon.start()
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "sim",
            "--venus",
            daemon.address,
            "--speed",
            "20",
            "--duration",
            "3600",
            "--no-web",
            "--no-view",
            "--state-dir",
            str(tmp_path / "state"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + WAIT_S
        volts = None
        while volts is None:  # the nodes' first frames take a few simulated seconds
            assert sim.poll() is None, f"the simulator ended: {sim.communicate()[1]}"
            assert time.monotonic() < deadline, "the battery did not appear on the D-Bus"
            volts = DOUBLE.search(dbus_send(daemon.address, "/Dc/0/Voltage").stdout)
            if volts is None:
                time.sleep(0.2)
        assert 40 < float(volts.group(1)) < 60  # the demo's 16s LFP battery
        text = dbus_send(daemon.address, "/Dc/0/Voltage", "GetText").stdout
        assert re.search(r'string "\d+\.\d\dV"', text), text
        soc = DOUBLE.search(dbus_send(daemon.address, "/Soc").stdout)
        assert soc is not None and 0 <= float(soc.group(1)) <= 100
        cvl = DOUBLE.search(dbus_send(daemon.address, "/Info/MaxChargeVoltage").stdout)
        assert cvl is not None and float(cvl.group(1)) > 0
    finally:
        sim.terminate()
        sim.wait(10)
        daemon.stop()


def test_run_serves_a_stop_while_no_node_reports(tmp_path: Path) -> None:
    """`moat-bms run` with outputs.venus: registered at once; no node data is invalid values
    and a stop, not a crash and not a guess."""
    daemon = DBusDaemon(tmp_path)
    daemon.start()
    config = tmp_path / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "buses": {"battery": {"interface": "virtual", "channel": "venus-run-test"}},
                "web": {"enabled": False},
                "persistence": {"state_file": str(tmp_path / "state.json")},
                "inverter": {"enabled": False},
                "outputs": {"venus": {"bus": daemon.address, "custom_name": "Cellar"}},
            }
        )
    )
    gateway = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + WAIT_S
        while "Cellar" not in (name := dbus_send(daemon.address, "/CustomName").stdout):
            assert gateway.poll() is None, f"the gateway ended: {gateway.communicate()[1]}"
            assert time.monotonic() < deadline, f"the service did not appear: {name}"
            time.sleep(0.2)
        voltage = dbus_send(daemon.address, "/Dc/0/Voltage")
        assert re.search(r"variant\s+array \[\s*\]", voltage.stdout), voltage.stdout  # invalid
        ccl = DOUBLE.search(dbus_send(daemon.address, "/Info/MaxChargeCurrent").stdout)
        assert ccl is not None and float(ccl.group(1)) == 0.0
        cable = dbus_send(daemon.address, "/Alarms/BmsCable").stdout
        assert re.search(r"variant\s+int32 2", cable), cable
    finally:
        gateway.terminate()
        gateway.wait(10)
        daemon.stop()
    assert (tmp_path / "state.venus.json").exists()  # saved on the way out
