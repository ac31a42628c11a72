"""Example board: ESP32 + MCP2515 + two LTC6813-1 (daisy chain over an LTC6820) + INA228.

Up to 36 cells (18 per LTC6813), two NTCs per LTC6813 on GPIO1..2 against VREF2, a relay
with a feedback contact, the pack voltage on an ADC divider (36 LFP cells reach 131 V, beyond
the INA228's 85 V), the pack current from an INA228 on a 100 uOhm shunt and the balancer
temperature from an NTC on the ESP32's ADC. Wiring and the matching bms.json:
docs/firmware-boards.md. Copy to the board as /board.py.
"""

from machine import ADC, I2C, SPI, Pin

from bms.can.mcp2515 import Mcp2515Bus
from bms.hw.board import BoardHardware
from bms.hw.ina22x import Ina228
from bms.hw.ltc681x import Ltc681x
from bms.hw.ntc import Ntc, NtcCurve

CHIPS = 2


def hardware(config):
    # LTC6820 in SPI mode 3, at most 1 MHz (isoSPI)
    spi = SPI(2, baudrate=1_000_000, polarity=1, phase=1, sck=Pin(18), mosi=Pin(23), miso=Pin(19))
    thermistors = NtcCurve(beta=3435, r25_ohm=10_000, series_ohm=10_000)
    afe = Ltc681x(
        spi,
        Pin(5, Pin.OUT, value=1),
        chips=CHIPS,
        kind=6813,
        cells_per_chip=config.cells // CHIPS,
        temps_per_chip=config.temp_sensors // CHIPS,
        curve=thermistors,
        balancer=Ntc(ADC(Pin(34), atten=ADC.ATTN_11DB), NtcCurve(beta=3950)),
    )
    return BoardHardware(
        afe,
        relay_pin=Pin(26, Pin.OUT, value=0),
        feedback_pin=Pin(27, Pin.IN, Pin.PULL_UP),
        feedback_active_high=False,
        pack_adc=ADC(Pin(35), atten=ADC.ATTN_11DB),
        pack_uv_per_count=2365,  # 50:1 divider, 3.1 V full scale: 155 V
        shunt=Ina228(I2C(0, sda=Pin(21), scl=Pin(22)), address=0x40, shunt_uohm=100),
    )


def can_backend(config):
    spi = SPI(1, baudrate=8_000_000, sck=Pin(14), mosi=Pin(13), miso=Pin(12))
    return Mcp2515Bus(spi, Pin(15, Pin.OUT, value=1), crystal_hz=8_000_000, bitrate=500_000)
