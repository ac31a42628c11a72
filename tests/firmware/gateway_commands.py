"""The gateway's commands to a node, built by hand for runtimes without cantools (MicroPython):
byte 0 CRC, byte 1 the alive counter in the low nibble, as in dbc/moat_bms.dbc, sealed with
bms.e2e (tests/firmware checks the same frames against the DBC with cantools).

`GatewayCommands` is the one injection loop of a node in steady state: the MicroPython
suite's allocation figures (tests/mpy/suite.py) and the CPython cycle benchmark
(benchmarks/firmware.py) both drive the node with it. Runs unchanged on MicroPython.
"""

from bms import codec, e2e

HEARTBEAT_ID = codec.GATEWAY_HEARTBEAT_ID
HEARTBEAT_MS = 500
RELAY_MS = 200
BALANCE_MS = 1000


def heartbeat_frame(counter):
    buf = bytearray(8)
    buf[1] = codec.GATEWAY_HEARTBEAT_GATEWAY_STATE_RUNNING << 4
    e2e.seal(HEARTBEAT_ID, buf, counter)
    return buf


def relay_frame(node, counter, request, reset=0):
    buf = bytearray(8)
    buf[1] = (request << 4) | (reset << 6)  # Request bits 12..13, ResetFault bit 14
    e2e.seal(codec.RELAY_COMMAND_ID | node, buf, counter)
    return buf


def balance_frame(node, counter, cells, floor_mv):
    buf = bytearray(8)  # CellGroup 0: bits 16..47 cells 1..32, 48..63 floor (mV)
    buf[2] = cells & 0xFF
    buf[3] = (cells >> 8) & 0xFF
    buf[4] = (cells >> 16) & 0xFF
    buf[5] = (cells >> 24) & 0xFF
    buf[6] = floor_mv & 0xFF
    buf[7] = floor_mv >> 8
    e2e.seal(codec.BALANCE_COMMAND_ID | node, buf, counter)
    return buf


class GatewayCommands:
    """A running gateway's commands to one node at their DBC periods. Every frame is built
    here, once (one per alive counter value), so inject() allocates nothing."""

    def __init__(self, node, request, bleed, floor_mv=3200, counters=None):
        """counters: the next alive counters (heartbeat, relay, balance) when the node has
        heard this gateway before; they go on from there."""
        self.relay_id = codec.RELAY_COMMAND_ID | node
        self.balance_id = codec.BALANCE_COMMAND_ID | node
        self.heartbeats = [heartbeat_frame(c) for c in range(16)]
        self.relays = [relay_frame(node, c, request) for c in range(16)]
        self.balances = [balance_frame(node, c, bleed, floor_mv) for c in range(16)]
        self.counters = counters if counters is not None else [0, 0, 0]

    def inject(self, bus, t):
        """Hand the bus the commands due at t (ms since the gateway started)."""
        c = self.counters
        if t % HEARTBEAT_MS == 0:
            bus.inject(HEARTBEAT_ID, self.heartbeats[c[0]])
            c[0] = (c[0] + 1) & 15
        if t % RELAY_MS == 0:
            bus.inject(self.relay_id, self.relays[c[1]])
            c[1] = (c[1] + 1) & 15
        if t % BALANCE_MS == 0:
            bus.inject(self.balance_id, self.balances[c[2]])
            c[2] = (c[2] + 1) & 15
