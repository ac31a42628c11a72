"""Simulated hardware: plain attributes that a test or the system simulator writes each tick.

    hw = SimHardware(cells=16, temps=4)
    hw.cell_mv[3] = 3700          # cell 4 at 3.700 V
    hw.temp_dc[0] = NOT_AVAILABLE # open thermistor
    hw.pack_mv = sum(hw.cell_mv); hw.current_ma = -20000
    node.step(now_ms)
    hw.relay_closed, hw.balance_mask   # what the node did

The simulator owns the physics: it must keep pack_mv consistent with the cells (the node
checks their sum against it). The relay feedback follows the drive relay_delay_ms after each
change unless relay_stuck is True (welded) or False (will not close); fresh = False
simulates a cell monitor that stopped converting. A node reboot is simulated by building a
new Node on the same SimHardware.
"""

from bms.compat import ticks_diff
from bms.hw import BALANCE_WORDS


class SimHardware:
    """Hardware backend whose readings are set from outside (see bms.hw)."""

    def __init__(self, cells=16, temps=4, cell_mv=3300, temp_dc=250, relay_delay_ms=20):
        self.cells = cells
        self.temps = temps
        self.cell_mv = [cell_mv] * cells
        self.temp_dc = [temp_dc] * temps
        self.pack_mv = cell_mv * cells
        self.current_ma = 0
        self.balancer_temp_dc = temp_dc
        self.fresh = True
        self.open_wire = 0  # cells with an open sense wire (bms.hw)
        self.relay_delay_ms = relay_delay_ms
        self.relay_stuck = None  # None: healthy; True: welded closed; False: never closes
        self.relay_drive = False
        self.relay_closed = False
        self.relay_switches = 0  # drive changes, to see chattering in tests
        self.balance_words = [0] * BALANCE_WORDS
        self._drive_changed_ms = 0

    def sample(self, now_ms):
        """Update the relay feedback; True unless fresh was cleared."""
        # The feedback update is written out here and in set_relay rather than called: the
        # simulator runs both for every node every cycle.
        if self.relay_stuck is not None:
            self.relay_closed = self.relay_stuck
        elif ticks_diff(now_ms, self._drive_changed_ms) >= self.relay_delay_ms:
            self.relay_closed = self.relay_drive
        return self.fresh

    def set_relay(self, closed, now_ms):
        """Drive the relay; the feedback follows after relay_delay_ms."""
        if closed != self.relay_drive:
            self.relay_drive = closed
            self.relay_switches += 1
            self._drive_changed_ms = now_ms
        if self.relay_stuck is not None:  # the feedback, as in sample
            self.relay_closed = self.relay_stuck
        elif ticks_diff(now_ms, self._drive_changed_ms) >= self.relay_delay_ms:
            self.relay_closed = self.relay_drive

    def set_balance(self, words):
        """Switch the balancer outputs (4 words of 16 cells)."""
        out = self.balance_words
        for k in range(BALANCE_WORDS):
            out[k] = words[k]

    @property
    def balance_mask(self):
        """Balancer outputs as one int: bit i = cell i + 1 bleeding."""
        w = self.balance_words
        return w[0] | (w[1] << 16) | (w[2] << 32) | (w[3] << 48)
