"""Board entry point: read /bms.json, build the hardware and the CAN bus, run the node.

The board's own /main.py is two lines:

    import bms.main
    bms.main.start()

start() imports a board description module, by default /board.py on the flash, which must
provide two functions (docs/firmware.md has complete examples):

    hardware(config) -> a hardware backend (bms.hw.board.BoardHardware, ...)
    can_backend(config) -> a CAN backend (bms.can.mcp2515.Mcp2515Bus, ...)

A configuration that is missing or invalid puts the node into ConfigError: the relay stays
open and NodeState reports it, with the reason printed on the console. A CAN controller
that fails to start does not stop protection: the node runs on a bus with no other end
(and so reports CommLoss). If the loop ever stops (Ctrl-C on the REPL, an exception), the
relay is opened before start() returns: no protection, no closed relay.
"""

import asyncio

from bms.can.loopback import LoopbackBus
from bms.compat import ticks_ms
from bms.config import load_config_file
from bms.hw import BALANCE_WORDS
from bms.node import Node
from bms.runner import run
from bms.tripstore import FileTripStore

try:
    from machine import WDT
except ImportError:  # not on a board: no watchdog
    WDT = None

CONFIG_PATH = "/bms.json"
TRIP_PATH = "/bms_trip"  # a deep-discharge or over-charge trip, kept across reboots
OFF = [0] * BALANCE_WORDS


def start(config_path=CONFIG_PATH, board_module="board", cycles=None):
    """Run the node until the loop stops (cycles=None: forever); never leaves the relay closed."""
    config = load_config_file(config_path)
    board = __import__(board_module)
    hw = board.hardware(config)
    try:
        can_backend = board.can_backend(config)
    except Exception as exc:  # protection must run even without a working CAN controller
        print("bms: CAN controller failed, running without a bus:", repr(exc))
        can_backend = LoopbackBus()
    node = Node(config, hw, can_backend, trip_store=FileTripStore(TRIP_PATH))
    watchdog = WDT(timeout=config.watchdog_ms) if WDT and config.watchdog_ms else None
    try:
        asyncio.run(run(node, watchdog, cycles))
    finally:
        hw.set_relay(False, ticks_ms())
        hw.set_balance(OFF)
        print("bms: node stopped, relay opened, balancer off")
    return node
