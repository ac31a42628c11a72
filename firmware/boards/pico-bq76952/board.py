"""Example board: Raspberry Pi Pico (RP2040) + MCP2515 + TI BQ76952 + TI INA228.

Up to 16 cells. The BQ76952 measures the cells and TS1..TS3 and switches the CHG/DSG FETs,
which are the node's relay (their status is its feedback); the INA228 measures the pack
current on a 100 uOhm shunt and the pack voltage on VBUS (up to 85 V). Wiring and the
matching bms.json: docs/firmware-boards.md. Copy to the board as /board.py.
"""

from machine import I2C, SPI, Pin

from bms.can.mcp2515 import Mcp2515Bus
from bms.hw.board import BoardHardware
from bms.hw.bq76952 import Bq76952
from bms.hw.ina22x import Ina228


def hardware(config):
    i2c = I2C(0, sda=Pin(4), scl=Pin(5), freq=400_000)
    bq = Bq76952(i2c, cells=config.cells, temps=config.temp_sensors)
    return BoardHardware(
        bq,
        relay_pin=bq.fets,
        feedback_pin=bq.fets,
        shunt=Ina228(i2c, address=0x40, shunt_uohm=100),
    )


def can_backend(config):
    spi = SPI(0, baudrate=8_000_000, sck=Pin(2), mosi=Pin(3), miso=Pin(0))
    return Mcp2515Bus(spi, Pin(1, Pin.OUT, value=1), crystal_hz=16_000_000, bitrate=500_000)
