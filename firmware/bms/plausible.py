"""Plausibility of the current reading: no protection may hang on one current sensor alone.

The current's direction chooses the temperature window (charge or discharge) and the
over-current checks, so a sensor stuck at 0, offset or mounted the wrong way round would let
a cold or hot pack be charged. Two checks against what the node knows otherwise:

* Offset at rest: with the relay open (drive and feedback) for REST_SETTLE_MS no current can
  flow through the node; a reading beyond current_rest_limit_a is an offset or a broken
  sensor: `offset` (a SensorFault, which opens the relay; it clears when the reading does).
* Voltage trend: the pack voltage is kept every TREND_STEP_MS over TREND_WINDOW_MS. A pack
  that rose by more than charge_rise_mv_per_cell per cell within that window while the
  sensor never read charging is being charged by a current the sensor does not see (stuck
  at 0, wrong polarity): `direction_doubtful`. The node then applies the charge and the
  discharge temperature limits alike. Not a fault or a flag by itself: a pack relaxing after
  a heavy discharge rises too, and must neither trip nor stop balancing for it; but a pack
  outside its charge temperature window opens its relay, since it may be charging.
"""

from bms.compat import const, ticks_diff

REST_SETTLE_MS = const(1000)
TREND_STEP_MS = const(10000)
TREND_SLOTS = const(7)  # TREND_SLOTS - 1 steps: a window of 60 s
TREND_WINDOW_MS = const(60000)


class CurrentCheck:
    """Current plausibility of one node; see the module docstring."""

    def __init__(self, config):
        self.rest_limit_ma = config.current_rest_limit_ma
        self.rise_mv = config.charge_rise_mv_per_cell * config.cells
        self.charge_detect_ma = config.charge_detect_ma
        self.offset = False
        self.direction_doubtful = False
        self._open_ms = 0
        self._rested = False
        self._was_open = False
        self._pack = [0] * TREND_SLOTS  # pack voltage at each step, oldest first
        self._charged = bytearray(TREND_SLOTS)  # the sensor read charging during that step
        self._filled = 0
        self._step_ms = 0
        self._started = False

    def update(self, now_ms, hw, summary):
        """Run both checks on this cycle's readings (after Summary.update)."""
        if not self._started:
            self._started = True
            self._step_ms = now_ms
        current_ok = summary.current_ok
        current = hw.current_ma if current_ok else 0

        # Offset at rest. The rest is latched once long enough: no age compared for ever.
        is_open = not hw.relay_drive and not hw.relay_closed
        if not is_open:
            self._rested = False
        elif not self._was_open:
            self._open_ms = now_ms
        elif not self._rested and ticks_diff(now_ms, self._open_ms) >= REST_SETTLE_MS:
            self._rested = True
        self._was_open = is_open
        magnitude = current if current >= 0 else -current
        self.offset = self._rested and current_ok and magnitude > self.rest_limit_ma

        # Voltage trend while the relay is closed.
        pack = self._pack
        charged = self._charged
        last = TREND_SLOTS - 1
        if current > self.charge_detect_ma:
            charged[last] = 1
        if not hw.relay_drive or not summary.pack_ok or not self.rise_mv:
            self._filled = 0
            self.direction_doubtful = False
            self._step_ms = now_ms
            return
        if self._filled == 0:
            for i in range(TREND_SLOTS):
                pack[i] = hw.pack_mv
                charged[i] = 0
            self._filled = 1
            self._step_ms = now_ms
        elif ticks_diff(now_ms, self._step_ms) >= TREND_STEP_MS:
            self._step_ms = now_ms
            for i in range(last):
                pack[i] = pack[i + 1]
                charged[i] = charged[i + 1]
            charged[last] = 0
            if self._filled < TREND_SLOTS:
                self._filled += 1
        pack[last] = hw.pack_mv
        # Built-ins rather than a loop over the slots: no bytecode per slot, no allocation.
        self.direction_doubtful = not max(charged) and pack[last] - min(pack) > self.rise_mv
