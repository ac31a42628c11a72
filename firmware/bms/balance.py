"""Cell balancing: execute the gateway's BalanceCommand, with local vetoes.

The gateway decides which cells to bleed; the node only ever says no:

* a cell at or below max(balance_floor_mv, the command's BleedFloorVoltage) is not bled, and
  a cell stopped by the floor restarts only above the floor + balance_hysteresis_mv (no
  chattering at the floor); a cell without a usable reading is not bled;
* nothing is bled unless the caller allows it (the node forbids it while not Standby or
  Active, without a gateway link, with the balancer too hot, or with a sensor fault);
* each cell group's command (cells 1..32, 33..64) expires balance_timeout_ms after its last
  valid frame.

Outputs are 4 words of 16 cells (bit b of word k = cell 16 k + b + 1), as in BalanceState.
"""

from bms.compat import ticks_diff
from bms.hw import BALANCE_WORDS
from bms.measure import CELL_MV_MAX, CELL_MV_MIN


class Balancer:
    """Balancing state of one node; see the module docstring."""

    def __init__(self, config):
        self.cells = config.cells
        # At least CELL_MV_MIN (as the configuration's range ensures): update() then finds
        # a cell without a usable reading at or below the floor, in the same test.
        self.floor_mv = max(config.balance_floor_mv, CELL_MV_MIN)
        self.hysteresis_mv = config.balance_hysteresis_mv
        self.timeout_ms = config.balance_timeout_ms
        self.requested = [0] * BALANCE_WORDS
        self.words = [0] * BALANCE_WORDS  # outputs as switched
        self.held = [0] * BALANCE_WORDS  # cells stopped by the floor
        self.group_valid = [False, False]
        self.group_ms = [0, 0]
        self.group_floor_mv = [0, 0]
        self.active = False  # at least one output on
        # The cells of each word (bit b set for a cell the node has).
        self.word_cells = [
            (1 << max(0, min(16, self.cells - 16 * k))) - 1 for k in range(BALANCE_WORDS)
        ]
        # The words that hold cells: the others have no cell to bleed, so they stay 0 and
        # update() need not look at them (16 cells: one word of four).
        self.cell_words = (self.cells + 15) // 16

    def command(self, group, low, high, floor_mv, now_ms):
        """A valid BalanceCommand for one cell group (0: cells 1..32, 1: cells 33..64)."""
        self.requested[2 * group] = low
        self.requested[2 * group + 1] = high
        self.group_floor_mv[group] = floor_mv
        self.group_ms[group] = now_ms
        self.group_valid[group] = True

    def clear(self):
        """Forget every command."""
        for g in range(2):
            self.group_valid[g] = False
        for k in range(BALANCE_WORDS):
            self.requested[k] = 0

    def off(self):
        """Forget every command and switch every output off (the caller writes words out)."""
        self.clear()
        for k in range(BALANCE_WORDS):
            self.words[k] = 0
        self.active = False

    def update(self, now_ms, cell_mv, allowed, lowest_mv=0):
        """Compute the outputs; True when they changed (and must be switched).

        lowest_mv: the lowest cell when every cell has a usable reading (bms.measure's
        Summary), else 0. A word whose floor and hysteresis are below it releases every
        held cell and bleeds what is wanted, so its cells need not be looked at one by one.
        """
        for g in range(2):
            if self.group_valid[g] and ticks_diff(now_ms, self.group_ms[g]) > self.timeout_ms:
                self.group_valid[g] = False
                self.requested[2 * g] = 0
                self.requested[2 * g + 1] = 0
        cells = self.cells
        hysteresis = self.hysteresis_mv
        changed = False
        active = False
        for k in range(self.cell_words):
            g = k >> 1
            floor = self.group_floor_mv[g]
            floor = max(floor, self.floor_mv)
            want = self.requested[k] if allowed and self.group_valid[g] else 0
            if lowest_mv > floor + hysteresis:
                out = want & self.word_cells[k]
                self.held[k] = 0
                if out != self.words[k]:
                    self.words[k] = out
                    changed = True
                if out:
                    active = True
                continue
            held = self.held[k]
            release = floor + hysteresis
            bit = 1  # cell i's bit in word k
            for i in range(16 * k, min(16 * k + 16, cells)):
                mv = cell_mv[i]
                # The floor is never below CELL_MV_MIN (__init__): a cell without a usable
                # reading is at or below it, or above CELL_MV_MAX (far above the release).
                if mv <= floor:
                    held |= bit
                elif mv > release:
                    if mv > CELL_MV_MAX:
                        held |= bit
                    else:
                        held &= ~bit
                # else: between the floor and the release a cell stays as it was: stopped
                # by the floor, it restarts only above floor + hysteresis.
                bit <<= 1
            self.held[k] = held
            # A cell bleeds when it is wanted and not held (held has only the word's cells).
            out = want & ~held & self.word_cells[k]
            if out != self.words[k]:
                self.words[k] = out
                changed = True
            if out:
                active = True
        self.active = active
        return changed
