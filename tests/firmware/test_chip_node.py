"""A node on BoardHardware with a real driver over a fake chip: readings reach the node's
summary, a broken chip is a sensor fault with the relay open, and a whole node cycle through
the driver allocates nothing (measured on MicroPython).

Shared with the MicroPython suite (tests/mpy/chips.py): plain asserts, no pytest.
"""

from bms import protect
from bms.can import Frame
from bms.can.loopback import LoopbackBus
from bms.config import load_config
from bms.hw.board import BoardHardware
from bms.hw.bq76952 import Bq76952
from bms.hw.ina22x import Ina228
from bms.hw.ltc681x import Ltc681x
from bms.hw.ntc import NtcCurve
from bms.node import Node
from gateway.sim.chips.bq76952 import FakeBq76952
from gateway.sim.chips.i2c import FakeI2C
from gateway.sim.chips.ina22x import FakeIna228
from gateway.sim.chips.ltc681x import FakeLtc681xChain
from tests.firmware.allocation import assert_no_allocation

CYCLE = 50


class Pin:
    def __init__(self) -> None:
        self.level = 0

    def value(self, v=None):
        if v is not None:
            self.level = v
        return self.level


class Adc:
    def __init__(self, counts: int) -> None:
        self.counts = counts

    def read_u16(self) -> int:
        return self.counts


class Rig:
    """A node, its board and the chips, stepped with simulated time."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.bus = LoopbackBus(tx_capacity=8)
        self.frame = Frame()
        self.now = 0
        self.i2c = FakeI2C()
        if kind == "bq76952":
            self.cells = [3300 + 3 * i for i in range(16)]
            self.bq = FakeBq76952()
            self.i2c.attach(self.bq)
            self.bq.set_cells(self.cells)
            self.bq.set_temps([25.0, 26.0, 27.0])
            self.bq.set_current(-2_000)
            driver = Bq76952(self.i2c, cells=16, temps=3)
            hw = BoardHardware(
                driver, relay_pin=driver.fets, feedback_pin=driver.fets, shunt=driver
            )
            settings = {"node_id": 1, "cells": 16, "temp_sensors": 3}
        else:
            self.cells = [3300 + 3 * i for i in range(24)]
            self.chain = FakeLtc681xChain(2, 6811)
            self.chain.record = False
            self.chain.set_cells(self.cells, 12)
            self.ina = FakeIna228()
            self.i2c.attach(self.ina)
            self.ina.set(-2_000, sum(self.cells))
            driver = Ltc681x(
                self.chain,
                self.chain.cs,
                chips=2,
                kind=6811,
                temps_per_chip=2,
                curve=NtcCurve(beta=3435),
                open_wire_every=10,
            )
            hw = BoardHardware(
                driver,
                relay_pin=Pin(),
                shunt=Ina228(self.i2c),
                pack_adc=Adc(sum(self.cells) * 1000 // 2000),
                pack_uv_per_count=2000,
            )
            settings = {"node_id": 1, "cells": 24, "temp_sensors": 4, "balancer_temp_sensor": False}
        self.driver = driver
        self.hw = hw
        self.node = Node(load_config(settings), hw, self.bus)

    def convert(self) -> None:
        if self.kind == "bq76952":
            self.bq.scan()
        else:
            self.ina.convert()

    def step(self) -> None:
        self.convert()
        self.node.step(self.now)
        while self.bus.take(self.frame):
            pass
        self.now += CYCLE

    def run(self, ms: int) -> None:
        for _ in range(ms // CYCLE):
            self.step()


def test_readings_reach_the_node_through_each_driver() -> None:
    for kind in ("bq76952", "ltc6811"):
        rig = Rig(kind)
        rig.run(3000)
        assert rig.hw.cell_mv == rig.cells, kind
        assert rig.node.faults == 0, kind + " faults " + hex(rig.node.faults)
        summary = rig.node.summary
        assert summary.cell_max_mv == max(rig.cells) and summary.cell_min_no == 1, kind
        assert rig.hw.current_ma == -2_000, kind


def test_a_silent_chip_is_a_sensor_fault() -> None:
    for kind in ("bq76952", "ltc6811"):
        rig = Rig(kind)
        rig.run(3000)
        if kind == "bq76952":
            rig.i2c.nack = True
        else:
            rig.chain.stuck = True
        rig.run(2000)
        assert rig.node.faults & protect.SENSOR_FAULT, kind + " faults " + hex(rig.node.faults)
        assert not rig.hw.relay_drive, kind


def test_a_node_cycle_through_a_driver_allocates_nothing() -> None:
    for kind in ("bq76952", "ltc6811"):
        rig = Rig(kind)
        rig.run(3000)
        assert_no_allocation("node_cycle_" + kind, rig.step, 100)
        assert rig.node.faults == 0, kind
