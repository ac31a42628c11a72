"""Board entry point: safe outputs, the watchdog, then the hardware, the CAN bus and the node.

The board's own /main.py is two lines:

    import bms.main
    bms.main.start()

start() imports a board description module, by default /board.py on the flash, which must
provide two functions and should provide a third (docs/firmware.md has complete examples):

    safe_outputs() -> None        relay pin off, every bleed output off: called first, before
                                  anything that can fail (optional, but recommended)
    hardware(config) -> a hardware backend (bms.hw.board.BoardHardware, ...)
    can_backend(config) -> a CAN backend (bms.can.mcp2515.Mcp2515Bus, ...)

The order protects the battery while the board starts: safe outputs first, then the
configuration (read and validated, never raises), then the watchdog, then the hardware, the
CAN controller and the node. If building the hardware or the node raises, the outputs are
made safe again and the exception propagates with the watchdog running: the board resets
and tries again, never sitting at the REPL with bleed resistors on. A configuration that is
missing or invalid puts the node into ConfigError (relay open, reported, listen-only
without a valid node id). A CAN controller that fails to start is retried with back-off
(bms.can.retry) and reported; protection runs meanwhile. If the loop ever stops (Ctrl-C,
an exception), the relay is opened and the balancer switched off before start() returns.
"""

import asyncio

from bms.can.retry import RetryingBus
from bms.compat import ticks_ms
from bms.config import load_config_file
from bms.hw import BALANCE_WORDS
from bms.node import Node
from bms.runner import _sleep_ms, run
from bms.tripstore import FileTripStore

try:
    from machine import WDT
except ImportError:  # not on a board: no watchdog
    WDT = None

CONFIG_PATH = "/bms.json"
TRIP_PATH = "/bms_trip"  # a deep-discharge or over-charge trip, kept across reboots
OFF = [0] * BALANCE_WORDS


def _safe_outputs(board, hw):
    """Relay open and bleeding off, by the board's own function and by the backend."""
    safe = getattr(board, "safe_outputs", None)
    if safe is not None:
        try:
            safe()
        except Exception as exc:  # keep going: the hardware backend below may still work
            print("bms: safe_outputs failed:", repr(exc))
    if hw is not None:
        try:
            hw.set_relay(False, ticks_ms())
            hw.set_balance(OFF)
        except Exception as exc:
            print("bms: cannot switch the outputs off:", repr(exc))


def start(
    config_path=CONFIG_PATH,
    board_module="board",
    cycles=None,
    clock=ticks_ms,
    sleep_ms=_sleep_ms,
):
    """Run the node until the loop stops (cycles=None: forever); never leaves the relay closed."""
    board = __import__(board_module)
    _safe_outputs(board, None)
    config = load_config_file(config_path)
    watchdog_ms = config.watchdog_ms
    watchdog = WDT(timeout=watchdog_ms) if WDT and watchdog_ms else None
    hw = None
    try:
        hw = board.hardware(config)
        can_backend = RetryingBus(lambda: board.can_backend(config))
        node = Node(config, hw, can_backend, trip_store=FileTripStore(TRIP_PATH))
    except Exception as exc:
        print("bms: start-up failed, outputs off, the watchdog will restart:", repr(exc))
        _safe_outputs(board, hw)
        raise
    try:
        asyncio.run(run(node, watchdog, cycles, clock, sleep_ms))
    finally:
        _safe_outputs(board, hw)
        print("bms: node stopped, relay opened, balancer off")
    return node
