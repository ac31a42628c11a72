"""A simulation's candump log as the inspection guide (docs/inspection.md) uses it: every
line parses with python-can's reader, and replaying the battery bus into a fresh gateway
rebuilds the battery the simulator had."""

from __future__ import annotations

from pathlib import Path

import can
import pytest

from gateway.codec.moat_bms import NODE_ADDRESSED, SENDERS
from gateway.config.root import validate
from gateway.core import GatewayCore
from gateway.runtime.canport import frame_of
from gateway.sim.scenarios import SCENARIOS
from tests.common import ROOT

DURATION_S = 60.0


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float, float]:
    path = tmp_path_factory.mktemp("inspect") / "x.log"
    with path.open("w") as log:
        sim, _ = SCENARIOS["demo"].build(3, log=log)
        with sim:
            sim.run(DURATION_S)
            voltage = sim.battery.bus_voltage
            assert voltage is not None
            soc = 100 * sim.battery.true_soc()
    return path, voltage, soc


def test_python_can_reads_every_frame_with_its_bus(recorded: tuple[Path, float, float]) -> None:
    path, _, _ = recorded
    lines = path.read_text().splitlines()
    frames = list(can.LogReader(path))
    assert len(frames) == len(lines) > 0
    assert {f.channel for f in frames} == {"battery", "inverter"}
    assert all(not f.is_extended_id for f in frames)


def test_replaying_the_battery_bus_rebuilds_the_battery(
    recorded: tuple[Path, float, float],
) -> None:
    path, voltage, _ = recorded
    settings = validate(
        {
            "battery": {
                "chemistry": "lfp",
                "topology": {"strings": [[0, 1], [2, 3]], "cells_per_node": 8},
            },
            "web": {"enabled": False},
        }
    )
    frames = [f for f in can.LogReader(path) if f.channel == "battery"]
    core = GatewayCore(settings, frames[0].timestamp, None)
    for f in frames:
        core.on_battery_frame(frame_of(f), f.timestamp)
    counters = core.battery_counters
    assert counters.malformed == 0
    # The log holds the gateway's own commands too; a gateway ignores those (counted).
    gateway_sent = {i for i, sender in SENDERS.items() if sender == "Gateway"}
    assert {i & ~0xF if i & ~0xF in NODE_ADDRESSED else i for i in counters.unknown_ids} <= (
        gateway_sent
    )
    snapshot = core.model.snapshot(frames[-1].timestamp)
    assert sorted(snapshot.nodes) == [0, 1, 2, 3]
    assert snapshot.voltage == pytest.approx(voltage, abs=0.1)


def test_the_guide_names_the_mask_and_the_tools() -> None:
    text = (ROOT / "docs" / "inspection.md").read_text()
    for needle in (
        "cantools decode -m 0x7F0 dbc/moat_bms.dbc",
        "cantools monitor",
        "can.player",
        "ip link add dev vcan0 type vcan",
    ):
        assert needle in text, needle
