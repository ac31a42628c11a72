# ruff: noqa: PLW0603, E402
"""Node firmware scenarios on real MicroPython (run by tests/mpy/run.mjs).

Simulated hardware and the loopback CAN backend, simulated time. Prints one PASS/FAIL line
per scenario, then "BENCH <json>" with the heap figures and "RESULT ...". The gateway's
commands are built here by hand (this runtime has no cantools): byte 0 CRC, byte 1 alive
counter in the low nibble as in dbc/moat_bms.dbc, sealed with bms.e2e. The CPython suite
(tests/firmware) checks every frame against the DBC with cantools.
"""

import gc
import json
import sys
import time

gc.collect()
_HEAP_BEFORE_IMPORT = gc.mem_alloc()

from bms import auth, codec, e2e, protect
from bms.can import Frame
from bms.can.loopback import LoopbackBus
from bms.can.mcp2515 import Mcp2515Bus
from bms.can.pyb_can import PybCanBus
from bms.config import load_config, load_config_file
from bms.hw import NOT_AVAILABLE
from bms.hw.sim import SimHardware
from bms.lifecycle import ACTIVE, CONFIG_ERROR, STANDBY, TRIPPED
from bms.node import Node
from bms.tripstore import MemoryTripStore
from tests.firmware import gateway_commands

gc.collect()
HEAP_MODULES = gc.mem_alloc() - _HEAP_BEFORE_IMPORT  # bytecode etc. of the firmware modules

CYCLE = 50
NODE = 1
RELAY_ID = codec.RELAY_COMMAND_ID | NODE
BALANCE_ID = codec.BALANCE_COMMAND_ID | NODE
HEARTBEAT_ID = codec.GATEWAY_HEARTBEAT_ID

passed = 0
failed = 0


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def heartbeat_frame(counter):
    return gateway_commands.heartbeat_frame(counter)


def relay_frame(counter, request, reset=0):
    return gateway_commands.relay_frame(NODE, counter, request, reset)


def balance_frame(counter, cells, floor_mv):
    return gateway_commands.balance_frame(NODE, counter, cells, floor_mv)


class Bench:
    """Node + SimHardware + LoopbackBus with a gateway that can be silenced."""

    def __init__(self, settings=None, cells=16, tx_capacity=64):
        s = {"node_id": NODE, "cells": cells}
        if settings:
            s.update(settings)
        self.hw = SimHardware(cells=cells, temps=4)
        self.bus = LoopbackBus(tx_capacity=tx_capacity)
        self.node = Node(load_config(s), self.hw, self.bus)
        self.cells = cells
        self.now = 0  # elapsed ms: the gateway's schedule
        self.ticks = 0  # the node's clock, advanced with MicroPython's own time.ticks_add
        self.gateway = True
        self.request = codec.RELAY_COMMAND_REQUEST_CLOSE
        self.reset = 0
        self.bleed = 0
        self.counters = [0, 0, 0]
        self.frame = Frame()
        self.sent = 0

    def duties(self):
        t = self.now
        if not self.gateway:
            return
        c = self.counters
        if t % 500 == 0:
            self.bus.inject(HEARTBEAT_ID, heartbeat_frame(c[0]))
            c[0] = (c[0] + 1) & 15
        if t % 200 == 0:
            self.bus.inject(RELAY_ID, relay_frame(c[1], self.request, self.reset))
            c[1] = (c[1] + 1) & 15
        if self.bleed and t % 1000 == 0:
            self.bus.inject(BALANCE_ID, balance_frame(c[2], self.bleed, 3200))
            c[2] = (c[2] + 1) & 15

    def run(self, ms, advance=CYCLE):
        end = self.now + ms
        while self.now < end:
            self.duties()
            self.node.step(self.ticks)
            while self.bus.take(self.frame):
                self.sent += 1
            self.now += advance
            self.ticks = time.ticks_add(self.ticks, advance)

    def set_cell(self, i, mv):
        self.hw.cell_mv[i] = mv
        total = 0
        for v in self.hw.cell_mv:
            total += v
        self.hw.pack_mv = total

    def active(self):
        self.run(2200)
        check(self.node.state == ACTIVE, "not Active after settling: " + str(self.node.state))
        return self


def scenario_trip():
    b = Bench().active()
    onset = b.now
    b.set_cell(3, 3700)
    while b.hw.relay_drive:
        b.run(CYCLE)
        check(b.now - onset <= 1000, "relay still closed")
    opened = b.now - CYCLE - onset
    check(200 <= opened <= 250, "opened after " + str(opened) + " ms")
    check(b.node.faults == protect.CELL_OVER_VOLTAGE, "faults " + hex(b.node.faults))
    check(b.node.state == TRIPPED, "not Tripped")


def scenario_latch_and_reset():
    b = Bench().active()
    b.set_cell(0, 3700)
    b.run(500)
    b.set_cell(0, 3300)
    b.run(2000)
    check(b.node.state == TRIPPED and b.node.trip_cleared, "not latched with the trip cleared")
    check(not b.hw.relay_drive, "closed without a reset")
    b.reset = 1
    b.run(400)
    check(b.node.state == ACTIVE and b.hw.relay_drive, "reset did not re-close")


def scenario_close_vetoed_while_faulted():
    b = Bench()
    b.hw.current_ma = 150000
    b.run(5000)
    check(b.node.state == TRIPPED, "over-current at boot did not trip")
    check(b.hw.relay_switches == 0, "relay moved")
    b.reset = 1
    b.run(1000)
    check(not b.hw.relay_drive, "closed while faulted")


def scenario_comm_loss_keeps_relay():
    b = Bench().active()
    b.gateway = False
    b.run(6000)
    check(b.node.warnings & protect.COMM_LOSS, "no CommLoss warning")
    check(b.node.gateway_link == codec.NODE_STATE_GATEWAY_LINK_LOST, "link not Lost")
    check(b.hw.relay_drive and b.node.state == ACTIVE, "relay not kept")
    b.set_cell(2, 2400)
    b.run(300)
    check(not b.hw.relay_drive, "protection stopped without the gateway")


def scenario_comm_loss_opens_when_configured():
    b = Bench({"comm_loss_action": "open"}).active()
    b.gateway = False
    b.run(6000)
    check(b.node.faults == protect.COMM_LOSS, "no CommLoss fault")
    check(not b.hw.relay_drive, "relay not opened")
    b.gateway = True
    b.run(1000)
    check(b.node.state == TRIPPED and b.node.trip_cleared, "fault did not clear")
    b.reset = 1  # the gateway resets once it sees TripCleared
    b.run(400)
    check(b.node.state == ACTIVE, "did not recover after the gateway returned")


def scenario_balancing_veto():
    b = Bench()
    for i in range(16):
        b.hw.cell_mv[i] = 3400
    b.hw.pack_mv = 16 * 3400
    b.bleed = 0b10011  # cells 1, 2, 5
    b.set_cell(1, 3150)  # cell 2 below the command's 3200 mV floor
    b.active()
    b.run(1000)
    check(b.hw.balance_mask == 0b10001, "mask " + hex(b.hw.balance_mask))
    b.hw.balancer_temp_dc = 750
    b.run(1100)
    check(b.hw.balance_mask == 0, "hot balancer still bleeding")
    b.hw.balancer_temp_dc = 300
    b.run(4200)  # the warning releases 4 x its debounce after the first good sample
    check(b.hw.balance_mask == 0b10001, "balancing did not resume")
    b.gateway = False
    b.run(6000)
    check(b.hw.balance_mask == 0, "bleeding without the gateway")


def scenario_crc_rejection():
    b = Bench()
    b.request = codec.RELAY_COMMAND_REQUEST_OPEN
    b.run(2200)
    check(b.node.state == STANDBY, "not Standby")
    bad = relay_frame(9, codec.RELAY_COMMAND_REQUEST_CLOSE)
    bad[0] ^= 0x5A
    b.bus.inject(RELAY_ID, bad)
    b.run(100)
    check(b.node.state == STANDBY, "closed on a corrupted frame")
    check(b.node.rejected_commands == 1, "rejected " + str(b.node.rejected_commands))
    stale = relay_frame(b.counters[1] - 1 & 15, codec.RELAY_COMMAND_REQUEST_CLOSE)
    b.bus.inject(RELAY_ID, stale)
    b.run(50)
    check(b.node.state == STANDBY, "closed on a repeated counter")
    check(b.node.rejected_commands == 2, "repeat not counted")


def scenario_sensor_fault():
    b = Bench().active()
    b.hw.temp_dc[1] = NOT_AVAILABLE
    b.run(700)
    check(b.node.faults & protect.SENSOR_FAULT, "open thermistor not a sensor fault")
    check(not b.hw.relay_drive, "relay not opened")


def scenario_alternation_trips():
    """3.70 V / 3.60 V every other cycle, then 3.80 V / unreadable: both trip (leaky debounce)."""
    for bad, good, low, bound in (
        (1, 1, 3600, 650),
        (1, 2, 3600, 1400),
        (1, 1, NOT_AVAILABLE, 300),
    ):
        b = Bench().active()
        onset = b.now
        while b.hw.relay_drive:
            for k in range(bad + good):
                b.set_cell(0, 3700 if k < bad else low)
                b.run(CYCLE)
            check(b.now - onset <= bound, "alternation did not trip: " + str((bad, good, low)))
        check(b.node.faults & protect.CELL_OVER_VOLTAGE, "not a cell over-voltage")


def scenario_auto_reclose_bounded():
    """120 A against 100 A with auto-reclose: 3 recloses, then latched until a reset."""
    b = Bench({"auto_reclose_ms": 5000}).active()
    closes = 0
    closed = b.hw.relay_drive
    for _ in range(10 * 60 * 1000 // CYCLE):
        b.hw.current_ma = 120000 if b.hw.relay_closed else 0
        b.run(CYCLE)
        if b.hw.relay_drive and not closed:
            closes += 1
        closed = b.hw.relay_drive
    check(closes == 3, "recloses: " + str(closes))
    check(b.node.state == TRIPPED, "not latched")
    check(load_config({"auto_reclose_ms": 1000}).error is not None, "1 s auto-reclose accepted")


def scenario_late_cycle_opens():
    """A cycle 550 ms after the previous one (deadline 500 ms): Internal fault, relay open."""
    b = Bench().active()
    b.ticks = time.ticks_add(b.ticks, 500)
    b.run(CYCLE)
    check(not b.hw.relay_drive and b.node.faults & protect.INTERNAL, "late cycle kept closed")
    check(b.node.state == TRIPPED, "not Tripped")


def scenario_internal_error_bleed_off():
    b = Bench()
    for i in range(16):
        b.hw.cell_mv[i] = 3400
    b.hw.pack_mv = 16 * 3400
    b.bleed = 0b1011
    b.active()
    b.run(1000)
    check(b.hw.balance_mask == 0b1011, "not balancing")

    def broken(now_ms):
        raise ValueError("driver bug")

    b.hw.sample = broken
    b.run(CYCLE)
    check(not b.hw.relay_drive and b.hw.balance_mask == 0, "bleeding after an internal error")


def scenario_listen_only_without_a_node_id():
    hw = SimHardware()
    bus = LoopbackBus(tx_capacity=64)
    node = Node(load_config_file("/no/such/bms.json"), hw, bus)
    frame = Frame()
    sent = 0
    for t in range(0, 3000, CYCLE):
        node.step(t)
        while bus.take(frame):
            sent += 1
    check(sent == 0 and not hw.relay_drive, "sent " + str(sent) + " frames without a node id")


def scenario_trip_survives_reboot():
    store = MemoryTripStore()
    b = Bench({"auto_reclose_ms": 5000})
    b.node = Node(b.node.config, b.hw, b.bus, trip_store=store)
    b.active()
    b.set_cell(3, 2400)
    b.run(2000)
    check(b.node.state == TRIPPED and store.writes == 1, "writes " + str(store.writes))
    b.set_cell(3, 3000)
    b.node = Node(b.node.config, b.hw, b.bus, trip_store=store)
    b.run(20000)
    check(b.node.state == TRIPPED and not b.hw.relay_drive, "closed after the reboot")
    b.reset = 1
    b.run(1000)
    check(b.node.state == ACTIVE and store.kinds == 0, "reset did not clear the stored trip")


def scenario_current_stuck_at_zero_cold():
    b = Bench()
    for i in range(4):
        b.hw.temp_dc[i] = -100
    b.active()
    start = b.hw.cell_mv[0]
    onset = b.now
    while b.hw.relay_drive:
        mv = start + (b.now - onset) * 30 // 60000
        for i in range(16):
            b.hw.cell_mv[i] = mv
        b.hw.pack_mv = 16 * mv
        b.hw.current_ma = 0
        b.run(CYCLE)
        check(b.now - onset <= 62000, "charging cold on a stuck current sensor")
    check(b.node.faults & protect.CHARGE_UNDER_TEMP, "not ChargeUnderTemp")


def offset_reading(k, true_ma):
    """A shunt reading 300 mA with nothing flowing, +-400 mA of deterministic noise."""
    return true_ma + 300 + ((k * 37) % 9 - 4) * 100


def scenario_offset_sensor_cold():
    """-7 degC, relay closed, nothing flowing on an offset sensor: no trip (issue 14); a
    real 2 A charge then opens the relay within 2 A s / 1.5 A + 1 s + cycles."""
    b = Bench()
    for i in range(4):
        b.hw.temp_dc[i] = -70
    k = 0
    while b.now < 120000:
        b.hw.current_ma = offset_reading(k, 0)
        k += 1
        b.run(CYCLE)
    check(b.node.state == ACTIVE and b.hw.relay_drive, "tripped on the offset at rest")
    check(
        abs(b.node.current_check.zero_ma - 300) <= 100, "zero " + str(b.node.current_check.zero_ma)
    )
    onset = b.now
    while b.hw.relay_drive:
        b.hw.current_ma = offset_reading(k, 2000)
        k += 1
        b.run(CYCLE)
        check(b.now - onset <= 1334 * 3 // 2 + 1000 + 3 * CYCLE, "charging cold went on")
    check(b.node.faults & protect.CHARGE_UNDER_TEMP, "not ChargeUnderTemp")


def rest_allocation(cycles):
    """Bytes a node allocates per cycle with its relay open, learning its current's zero."""
    b = Bench()
    b.request = codec.RELAY_COMMAND_REQUEST_OPEN
    b.run(3000)
    check(not b.hw.relay_drive, "the relay closed")
    hw = b.hw
    node = b.node
    bus = b.bus
    frame = b.frame
    t = b.ticks
    gc.collect()
    gc.disable()
    start = gc.mem_alloc()
    for k in range(cycles):
        hw.current_ma = offset_reading(k, 0)
        node.step(t)
        while bus.take(frame):
            pass
        t = time.ticks_add(t, CYCLE)
    allocated = gc.mem_alloc() - start
    gc.enable()
    check(node.current_check.zero_ma != 0, "no zero learned")
    return allocated


def scenario_temperature_spread():
    b = Bench().active()
    for i in range(4):
        b.hw.temp_dc[i] = 400
    b.hw.temp_dc[2] = 120
    b.run(1200)
    check(b.node.faults & protect.SENSOR_FAULT and not b.hw.relay_drive, "spread ignored")


def keyed_relay_frame(counter, request, freshness, key, reset=0):
    buf = relay_frame(counter, request, reset)
    buf[2] = freshness & 0xFF
    buf[3] = (freshness >> 8) & 0xFF
    buf[4] = (freshness >> 16) & 0xFF
    if key is not None:
        mac = auth.command_mac(key, RELAY_ID, buf)
        buf[5] = mac & 0xFF
        buf[6] = (mac >> 8) & 0xFF
        buf[7] = mac >> 16
    e2e.seal(RELAY_ID, buf, counter)
    return buf


def scenario_command_key():
    """With a command key a forged Close is refused, the genuine one obeyed (HMAC-SHA256 on
    MicroPython's hashlib)."""
    key = bytes(range(16))
    check(
        auth.hmac_sha256(b"Jefe", b"what do ya want for nothing?")[:4] == b"\x5b\xdc\xc1\x46",
        "HMAC-SHA256 differs from RFC 4231",
    )
    b = Bench({"command_key": "000102030405060708090a0b0c0d0e0f"})
    b.request = codec.RELAY_COMMAND_REQUEST_OPEN
    b.run(2200)
    fresh = 100
    for _ in range(40):  # a forger: right CRC and counter, newer freshness, no key
        b.bus.inject(RELAY_ID, keyed_relay_frame(b.counters[1], 2, fresh + 1000, None))
        b.counters[1] = (b.counters[1] + 1) & 15
        b.run(CYCLE)
        check(not b.hw.relay_drive, "closed on a forged frame")
    check(b.node.commands.mac_failures > 0, "no Mac failure counted")
    b.gateway = False  # the genuine gateway from here on: heartbeats by hand
    for k in range(20):
        if k % 10 == 0:
            b.bus.inject(HEARTBEAT_ID, heartbeat_frame(b.counters[0]))
            b.counters[0] = (b.counters[0] + 1) & 15
        fresh += 1
        b.bus.inject(RELAY_ID, keyed_relay_frame(b.counters[1], 2, fresh + 2000, key))
        b.counters[1] = (b.counters[1] + 1) & 15
        b.run(CYCLE)
    check(b.hw.relay_drive, "the genuine keyed Close was not obeyed")


TICKS_PERIOD = 1 << 30
COARSE = 20 * 60 * 1000  # one cycle every 20 minutes while the days go by


def scenario_tick_wrap_hung_monitor():
    """A monitor hung for 3.2 tick periods: SensorFault and CommLoss never wrap to fresh."""
    b = Bench({"auto_reclose_ms": 10000})
    b.ticks = time.ticks_add(0, -60000)  # the real counter wraps a minute after start
    b.active()
    b.hw.fresh = False
    b.run(2000)
    check(b.node.faults & protect.SENSOR_FAULT and not b.hw.relay_drive, "no sensor fault")
    for _ in range(int(3.2 * TICKS_PERIOD) // COARSE):
        b.reset ^= 1
        b.run(COARSE, COARSE)
        check(b.node.faults & protect.SENSOR_FAULT, "stale monitor turned fresh")
        check(not b.hw.relay_drive, "relay closed on frozen data")
    b.gateway = False
    b.run(6000)
    for _ in range(int(3.2 * TICKS_PERIOD) // COARSE):
        b.run(COARSE, COARSE)
        check(b.node.warnings & protect.COMM_LOSS, "CommLoss vanished")


def scenario_config_error():
    b = Bench({"cells": 80})
    b.run(5000)
    check(b.node.state == CONFIG_ERROR, "not ConfigError")
    check(not b.hw.relay_drive, "relay closed in ConfigError")
    check(b.node.faults == protect.INTERNAL, "no Internal fault")
    check("cells" in b.node.config_error, "reason lost")


def allocation(cells, cycles):
    """Heap figures of one node: start-up and bytes allocated per steady-state cycle."""
    gc.collect()
    before = gc.mem_alloc()
    # Three transmit buffers, as on bxCAN and the MCP2515: bursts go through NodeCanPort's queue.
    b = Bench(cells=cells, tx_capacity=3)
    gc.collect()
    after_startup = gc.mem_alloc()
    for i in range(cells):
        b.hw.cell_mv[i] = 3400
    b.hw.pack_mv = cells * 3400
    b.bleed = 0b1011
    b.active()
    b.run(6000)  # every stream, balancing and the gateway link are running
    check(b.hw.balance_mask == 0b1011, "not balancing")
    hw = b.hw
    node = b.node
    bus = b.bus
    frame = b.frame
    # The gateway's commands, every frame built before the measurement.
    commands = gateway_commands.GatewayCommands(
        NODE, codec.RELAY_COMMAND_REQUEST_CLOSE, 0b1011, 3200, b.counters
    )
    t = b.now
    gc.collect()
    gc.disable()
    start_us = time.ticks_us()
    start = gc.mem_alloc()
    for k in range(cycles):
        commands.inject(bus, t)
        d = k & 7
        hw.cell_mv[5] = 3400 + d  # readings move, their sum stays
        hw.cell_mv[6] = 3400 - d
        hw.current_ma = 2000 + d
        node.step(t)
        while bus.take(frame):
            pass
        t += CYCLE
    allocated = gc.mem_alloc() - start
    elapsed_us = time.ticks_diff(time.ticks_us(), start_us)
    gc.enable()
    check(node.state == ACTIVE and hw.balance_mask == 0b1011, "steady state left")
    check(node.port.tx_dropped == 0, "frames dropped")
    check(node.port.tx_deferred > 0, "the transmit queue was never used")
    return {
        "cells": cells,
        "cycles": cycles,
        "alloc_bytes_per_cycle": allocated / cycles,
        "alloc_bytes_total": allocated,
        "heap_node_bytes": after_startup - before,
        "heap_in_use_after_startup": after_startup,
        "wasm_cycle_us": elapsed_us // cycles,
    }


class Mcp2515Stub:
    """Just enough of an MCP2515 behind SPI for the driver: registers, modes, free buffers.

    Serves as both the SPI bus and the chip-select pin; counts transmission requests.
    """

    def __init__(self):
        self.regs = bytearray(128)
        self.regs[0x0E] = 0x80  # CANSTAT: configuration mode after reset
        self.transmissions = 0

    def value(self, v=None):
        return 1

    def _mode(self):
        self.regs[0x0E] = self.regs[0x0F] & 0xE0  # CANSTAT follows CANCTRL at once

    def write(self, buf):
        op = buf[0]
        if op == 0xC0:  # RESET
            self.regs[0x0F] = 0x87
            self._mode()
        elif op == 0x02:  # WRITE
            address = buf[1]
            for i in range(2, len(buf)):
                self.regs[address + i - 2] = buf[i]
            self._mode()
        elif op == 0x05:  # BIT MODIFY
            address, mask = buf[1], buf[2]
            self.regs[address] = (self.regs[address] & ~mask) | (buf[3] & mask)
            self._mode()
        elif op & 0xF8 == 0x80:  # RTS
            self.transmissions += 1

    def write_readinto(self, out, into):
        op = out[0]
        if op == 0x03:  # READ
            into[2] = self.regs[out[1]]
        elif op == 0xA0:  # READ STATUS: nothing received, every transmit buffer free
            into[1] = 0


class Mcp2515RxStub(Mcp2515Stub):
    """The stub with received frames: a ring of up to two (the chip's RXB0/RXB1) that READ
    STATUS and READ RX BUFFER serve, and an INT pin whose handler the test calls when a frame
    lands, as the chip's INT line would."""

    IRQ_FALLING = 2

    def __init__(self):
        super().__init__()
        self.rx = [bytearray(13), bytearray(13)]  # SIDH SIDL EID8 EID0 DLC D0..D7
        self.rx_count = 0
        self.lost = 0
        self.handler = None

    def irq(self, handler=None, trigger=0):
        self.handler = handler

    def deliver(self, can_id, data):
        if self.rx_count == 2:
            self.lost += 1
            return
        buf = self.rx[self.rx_count]
        buf[0] = can_id >> 3
        buf[1] = (can_id & 7) << 5
        buf[4] = 8
        for i in range(8):
            buf[5 + i] = data[i]
        self.rx_count += 1
        if self.handler is not None:
            self.handler(self)  # INT falls: the soft IRQ runs

    def write_readinto(self, out, into):
        op = out[0]
        if op == 0xA0:  # READ STATUS: RX0IF while a frame waits
            into[1] = 1 if self.rx_count else 0
        elif op == 0x90:  # READ RX BUFFER 0
            src = self.rx[0]
            for i in range(13):
                into[1 + i] = src[i]
            self.rx[0], self.rx[1] = self.rx[1], self.rx[0]
            self.rx_count -= 1
        else:
            super().write_readinto(out, into)


def mcp2515_burst_allocation(seconds):
    """64 cells on an MCP2515 with its INT pin: the gateway's burst of four every second is
    received whole (both balance groups) and the receive path allocates nothing."""
    chip = Mcp2515RxStub()
    hw = SimHardware(cells=64, temps=4, cell_mv=3400)
    node = Node(
        load_config({"node_id": NODE, "cells": 64}), hw, Mcp2515Bus(chip, chip, int_pin=chip)
    )
    bursts = []
    for k in range(16):
        low = bytearray(8)  # group 0: cell 17; group 1: cells 33 and 64
        low[4] = 1
        low[6] = 3200 & 0xFF
        low[7] = 3200 >> 8
        e2e.seal(BALANCE_ID, low, 2 * k & 15)
        high = bytearray(8)
        high[1] = 0x10  # CellGroup 1
        high[2] = 1
        high[5] = 0x80
        high[6] = 3200 & 0xFF
        high[7] = 3200 >> 8
        e2e.seal(BALANCE_ID, high, (2 * k + 1) & 15)
        bursts.append(
            (heartbeat_frame(k), relay_frame(k, codec.RELAY_COMMAND_REQUEST_CLOSE), low, high)
        )
    t = 0
    allocated = 0
    for second in range(seconds):
        if second == 4:
            gc.collect()
            gc.disable()
            start = gc.mem_alloc()
        hb, rc, low, high = bursts[second & 15]
        chip.deliver(HEARTBEAT_ID, hb)
        chip.deliver(RELAY_ID, rc)
        chip.deliver(BALANCE_ID, low)
        chip.deliver(BALANCE_ID, high)
        for _ in range(20):
            node.step(t)
            t += CYCLE
    allocated = gc.mem_alloc() - start
    gc.enable()
    check(chip.lost == 0, str(chip.lost) + " frames lost in the chip")
    check(node.rejected_commands == 0, "rejected " + str(node.rejected_commands))
    check(hw.balance_mask == (1 << 16) | (1 << 32) | (1 << 63), "mask " + hex(hw.balance_mask))
    return allocated


def mcp2515_allocation(cycles):
    """Bytes allocated per cycle by a node sending through the MCP2515 driver."""
    chip = Mcp2515Stub()
    hw = SimHardware(cells=16, temps=4)
    node = Node(load_config({"node_id": NODE}), hw, Mcp2515Bus(chip, chip))
    t = 0
    for _ in range(120):  # every stream has sent at least once
        node.step(t)
        t += CYCLE
    gc.collect()
    gc.disable()
    sent = chip.transmissions
    start = gc.mem_alloc()
    for _ in range(cycles):
        node.step(t)
        t += CYCLE
    allocated = gc.mem_alloc() - start
    gc.enable()
    check(chip.transmissions - sent > cycles, "frames not sent through the driver")
    check(node.port.tx_dropped == 0, "frames dropped")
    return allocated


class PybCanOffTheBus:
    """pyb.CAN with no other node to acknowledge: every mailbox stays busy for ever."""

    STOPPED, ERROR_ACTIVE, ERROR_WARNING, ERROR_PASSIVE, BUS_OFF = 0, 1, 2, 3, 4
    LIST16, MASK16, LIST32, MASK32 = 0, 1, 2, 3

    def __init__(self):
        self.pending = 0

    def info(self, lst):
        lst[5] = self.pending
        return lst

    def send(self, data, can_id, timeout=0, extframe=False):
        if self.pending == 3:
            raise OSError(110)  # what pyb.CAN does: the allocation the driver must avoid
        self.pending += 1

    def any(self, fifo):
        return False

    def setfilter(self, bank, mode, fifo, params, extframe=False):
        pass

    def state(self):
        return self.ERROR_PASSIVE

    def restart(self):
        pass


def pyb_full_mailbox_allocation(cycles):
    """Bytes allocated per cycle by a node whose pyb.CAN mailboxes are all busy."""
    can = PybCanOffTheBus()
    node = Node(load_config({"node_id": NODE}), SimHardware(), PybCanBus(can))
    t = 0
    for _ in range(120):
        node.step(t)
        t += CYCLE
    check(can.pending == 3, "mailboxes not full")
    gc.collect()
    gc.disable()
    start = gc.mem_alloc()
    for _ in range(cycles):
        node.step(t)
        t += CYCLE
    allocated = gc.mem_alloc() - start
    gc.enable()
    check(node.port.tx_dropped > 0, "nothing dropped")
    return allocated


SCENARIOS = (
    ("trip", scenario_trip),
    ("latch and reset", scenario_latch_and_reset),
    ("close vetoed while faulted", scenario_close_vetoed_while_faulted),
    ("comm loss keeps the relay", scenario_comm_loss_keeps_relay),
    ("comm loss opens when configured", scenario_comm_loss_opens_when_configured),
    ("balancing veto", scenario_balancing_veto),
    ("CRC and counter rejection", scenario_crc_rejection),
    ("sensor fault", scenario_sensor_fault),
    ("config error", scenario_config_error),
    ("alternation trips", scenario_alternation_trips),
    ("auto-reclose bounded", scenario_auto_reclose_bounded),
    ("late cycle opens the relay", scenario_late_cycle_opens),
    ("internal error: bleed off", scenario_internal_error_bleed_off),
    ("listen-only without a node id", scenario_listen_only_without_a_node_id),
    ("trip survives a reboot", scenario_trip_survives_reboot),
    ("current stuck at 0 while charging cold", scenario_current_stuck_at_zero_cold),
    ("temperature sensors disagree", scenario_temperature_spread),
    ("offset current sensor at -7 degC: no trip; a real charge trips", scenario_offset_sensor_cold),
    ("command key: forged Close refused", scenario_command_key),
    ("tick wrap: hung monitor and silent gateway", scenario_tick_wrap_hung_monitor),
)


def run_all():
    global passed, failed
    # The heap figures first, on a heap that holds only the firmware modules and this suite.
    bench = {
        "micropython": ".".join(str(v) for v in sys.implementation.version[:3]),
        "heap_modules_bytes": HEAP_MODULES,
    }
    for cells in (16, 64):
        name = "allocation " + str(cells) + " cells"
        try:
            figures = allocation(cells, 2000)
            check(figures["alloc_bytes_total"] == 0, str(figures["alloc_bytes_total"]) + " bytes")
        except Exception as exc:
            failed += 1
            print("FAIL " + name + ": " + repr(exc))
        else:
            passed += 1
            bench["cells" + str(cells)] = figures
            print(
                "PASS "
                + name
                + ": "
                + str(figures["alloc_bytes_per_cycle"])
                + " bytes/cycle, heap after start-up "
                + str(figures["heap_in_use_after_startup"])
                + " bytes"
            )
    # The CAN drivers' steady states: name, measurement, its count (cycles or bursts), the
    # bench key and whether the figure is per cycle (else the total).
    for name, measure, count, key, per_cycle in (
        ("allocation MCP2515 driver", mcp2515_allocation, 500, "mcp2515_alloc_bytes_per_cycle", 1),
        ("allocation at rest, learning the zero", rest_allocation, 500, "rest_alloc_bytes", 0),
        (
            "MCP2515 INT pin: a burst of four, both balance groups",
            mcp2515_burst_allocation,
            30,
            "mcp2515_burst_alloc_bytes",
            0,
        ),
        (
            "allocation pyb.CAN with full mailboxes",
            pyb_full_mailbox_allocation,
            500,
            "pyb_full_mailbox_alloc_bytes_per_cycle",
            1,
        ),
    ):
        try:
            allocated = measure(count)
            check(allocated == 0, str(allocated) + " bytes")
        except Exception as exc:
            failed += 1
            print("FAIL " + name + ": " + repr(exc))
        else:
            passed += 1
            bench[key] = allocated / count if per_cycle else allocated
            print("PASS " + name + ": 0 bytes" + ("/cycle" if per_cycle else ""))
    for name, scenario in SCENARIOS:
        try:
            scenario()
        except Exception as exc:
            failed += 1
            print("FAIL " + name + ": " + repr(exc))
        else:
            passed += 1
            print("PASS " + name)
    print("BENCH " + json.dumps(bench))
    print("RESULT " + str(passed) + " passed, " + str(failed) + " failed")


run_all()
