"""A simulated node board with a real cell-monitor driver over a fake chip.

    board = ChipBoard("bq76952", cells=16, temps=3)
    node = Node(config, board.hw, can_backend)   # board.hw: bms.hw.board.BoardHardware
    board.feed(pack)                             # each step: physics -> chip registers
    pack.balance_mask = board.balance_mask()     # the chip's bleed outputs -> physics
    battery.set_relay(node_id, board.relay_closed())

The simulated pack's cells, temperatures and current go into the registers of a fake chip
(gateway.sim.chips), the firmware's driver reads them over the fake bus and the node runs on
BoardHardware as on a real board: simulated cells -> registers -> driver -> node -> CAN.
Boards:
- "bq76952": a BQ76952 (up to 16 cells, TS1..TS3) measures cells, temperatures, the pack
  current (CC2) and voltage (stack); its CHG/DSG FETs are the node's relay and their status
  its feedback; the balancer temperature is the chip's die temperature.
- "ltc6813": LTC6813 chips on one daisy chain (18 cells each at most, cells spread evenly,
  thermistors on GPIO1..), an INA228 for the current, the pack voltage on an ADC divider,
  a relay on a pin and an NTC on the board's ADC for the balancer temperature.
"""

from __future__ import annotations

from typing import Any

from bms.hw.board import BoardHardware
from bms.hw.bq76952 import Bq76952
from bms.hw.ina22x import Ina228
from bms.hw.ltc681x import Ltc681x
from bms.hw.ntc import Ntc, NtcCurve
from gateway.sim.chips.bq76952 import FakeBq76952
from gateway.sim.chips.i2c import FakeI2C
from gateway.sim.chips.ina22x import FakeIna228
from gateway.sim.chips.ltc681x import FakeLtc681xChain
from gateway.sim.chips.ntc import FakeThermistorAdc, divider_q
from gateway.sim.physics import Pack

CHIPS = ("bq76952", "ltc6813")
NTC_BETA = 3435
PACK_UV_PER_COUNT = 2000  # 131 V full scale


class FakePin:
    """machine.Pin: the relay coil output."""

    def __init__(self) -> None:
        self.level = 0

    def value(self, v: int | None = None) -> int:
        if v is not None:
            self.level = v
        return self.level


class FakeAdc:
    """machine.ADC behind the pack voltage divider."""

    def __init__(self) -> None:
        self.counts = 0

    def read_u16(self) -> int:
        return self.counts


class ChipBoard:
    """One node's board: fake chips, the firmware's drivers, BoardHardware."""

    def __init__(self, chip: str, cells: int, temps: int) -> None:
        if chip not in CHIPS:
            raise ValueError(f"chip {chip!r} is not one of {', '.join(CHIPS)}")
        self.chip = chip
        self.cells = cells
        self.temps = temps
        self.hw: Any
        if chip == "bq76952":
            self._build_bq76952(cells, temps)
        else:
            self._build_ltc6813(cells, temps)

    def _build_bq76952(self, cells: int, temps: int) -> None:
        if not 3 <= cells <= 16 or temps > 3:
            raise ValueError("chip bq76952: cells_per_node must be 3..16, temp_sensors 0..3")
        self.i2c = FakeI2C()
        self.bq = FakeBq76952()
        self.i2c.attach(self.bq)
        self.channels = [*range(1, cells), 16]
        self.driver = Bq76952(self.i2c, cells=cells, temps=temps)
        self.hw = BoardHardware(
            self.driver,
            relay_pin=self.driver.fets,
            feedback_pin=self.driver.fets,
            shunt=self.driver,
        )

    def _build_ltc6813(self, cells: int, temps: int) -> None:
        chips = -(-cells // 18)
        if cells % chips or temps % chips or temps // chips > 5:
            raise ValueError(
                "chip ltc6813: cells_per_node and temp_sensors must split evenly over "
                f"{chips} chip(s), at most 5 thermistors each"
            )
        self.per_chip = cells // chips
        self.temps_per_chip = temps // chips
        self.chain = FakeLtc681xChain(chips, 6813)
        self.chain.record = False
        curve = NtcCurve(beta=NTC_BETA, r25_ohm=10000, series_ohm=10000)
        self.balancer_adc = FakeThermistorAdc(beta=NTC_BETA)
        self.driver = Ltc681x(
            self.chain,
            self.chain.cs,
            chips=chips,
            kind=6813,
            cells_per_chip=self.per_chip,
            temps_per_chip=self.temps_per_chip,
            curve=curve,
            balancer=Ntc(self.balancer_adc, NtcCurve(beta=NTC_BETA)),
        )
        self.i2c = FakeI2C()
        self.ina = FakeIna228(address=0x40, shunt_uohm=100)
        self.i2c.attach(self.ina)
        self.relay = FakePin()
        self.pack_adc = FakeAdc()
        self.hw = BoardHardware(
            self.driver,
            relay_pin=self.relay,
            pack_adc=self.pack_adc,
            pack_uv_per_count=PACK_UV_PER_COUNT,
            shunt=Ina228(self.i2c, shunt_uohm=100),
        )

    def feed(self, pack: Pack) -> None:
        """The pack's true state into the chips' analog inputs; one conversion."""
        mv = [round(v * 1000) for v in pack.measured_cell_voltages()]
        temps = pack.temperatures()
        current_ma = round(pack.measured_current_a * 1000)
        if self.chip == "bq76952":
            self.bq.set_cells(mv, self.channels)
            self.bq.set_temps(temps[: self.temps], die_c=pack.balancer_temp_c)
            self.bq.set_current(current_ma)
            self.bq.scan()
            return
        self.chain.set_cells(mv, self.per_chip)
        for k, chip in enumerate(self.chain.chips):
            for t in range(self.temps_per_chip):
                temp = temps[k * self.temps_per_chip + t]
                chip.gpio_mv[t] = (
                    chip.ref_mv
                    if temp is None
                    else divider_q(temp, NTC_BETA, 10000, 10000, chip.ref_mv)
                )
        self.ina.set(current_ma, sum(mv))
        self.ina.convert()
        self.pack_adc.counts = min(65535, sum(mv) * 1000 // PACK_UV_PER_COUNT)
        self.balancer_adc.set_temp(pack.balancer_temp_c)

    def balance_mask(self) -> int:
        """The chips' bleed outputs as the physics wants them: bit k bleeds cell k + 1."""
        if self.chip == "bq76952":
            inputs = self.bq.balance_mask
            return sum(1 << i for i, ch in enumerate(self.channels) if inputs >> (ch - 1) & 1)
        return self.chain.balance_mask(self.per_chip)

    def relay_closed(self) -> bool:
        """The power path as it physically is (FETs on, relay coil driven)."""
        if self.chip == "bq76952":
            return self.bq.regs[0x7F] & 0x05 == 0x05
        return bool(self.relay.level)
