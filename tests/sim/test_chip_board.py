"""The simulator with real drivers: simulated cells -> a fake chip's registers -> the
firmware's driver -> the node -> CAN -> the gateway -> the inverter (gateway.sim.chipboard).
"""

from __future__ import annotations

import pytest

from bms.lifecycle import ACTIVE
from bms.protect import SENSOR_FAULT
from gateway.sim.chipboard import ChipBoard
from gateway.sim.power import Constant
from gateway.sim.scenarios import base_setup
from gateway.sim.system import SimSystem


@pytest.mark.parametrize("chip", ["bq76952", "ltc6813"])
def test_a_node_on_a_real_driver_charges_then_opens_on_a_broken_thermistor(chip: str) -> None:
    # 100 ms node cycles, as on a real board: the LTC driver reads cell voltages every other
    # cycle (GPIO conversions between them) and pauses for four during an open-wire check.
    setup = base_setup(
        step_s=0.1,
        strings=[[0]],
        temp_sensors=3,
        capacity_ah=20.0,
        soc=0.5,
        pv=Constant(1500.0),
        load=Constant(0.0),
        chip=chip,
    )
    with SimSystem(setup, seed=3) as sim:
        node = sim.nodes[0]
        assert node.board is not None and node.board.chip == chip
        sim.run(60.0)
        assert node.node.state == ACTIVE
        assert node.board.relay_closed(), "the driver never closed the power path"
        assert sim.truth.charge_ah > 0, "no charge flowed through the chip's power path"
        # what the node measured through the driver is the pack
        truth = [round(v * 1000) for v in sim.battery.packs[0].cell_voltages()]
        assert all(abs(a - b) <= 12 for a, b in zip(node.hw.cell_mv, truth, strict=True))
        snapshot = sim.core.snapshot if sim.core else None
        assert snapshot is not None
        assert abs(snapshot.max_cell * 1000 - max(truth)) <= 15
        assert node.node.faults == 0

        sim.battery.packs[0].open_thermistor(1)
        sim.run(5.0)
        assert not node.board.relay_closed(), "the node kept the power path closed"
        assert node.node.faults & SENSOR_FAULT


def test_chip_boards_refuse_what_the_chip_cannot_measure() -> None:
    with pytest.raises(ValueError, match=r"temp_sensors 0\.\.3"):
        ChipBoard("bq76952", 16, 4)
    with pytest.raises(ValueError, match="split evenly"):
        ChipBoard("ltc6813", 35, 4)
    with pytest.raises(ValueError, match="not one of"):
        ChipBoard("max17823", 16, 3)
