"""The current reading: its zero, the charge detection and its plausibility.

The node's current is the sensor's reading less the sensor's zero, learned while no current
can flow, and the pack counts as charging on the charge that reading shows, not on one
sample; no protection may hang on one current sensor alone:

* Zero: with the relay open (drive and feedback) for REST_SETTLE_MS the current through the
  node is 0 by construction, so what the sensor reads is its offset. The mean of those
  readings (integer mA; from the rest's first reading on, up to about the last
  ZERO_MAX_SAMPLES) is the zero, subtracted from every reading from then on (`current_ma`):
  at the default cycle the 20 readings of the second before the relay first closes.
  A reading beyond current_rest_limit_a is not learned: it is the offset fault below. A real
  shunt amplifier's offset (a few hundred mA) would otherwise read as a charge at rest.
* Charging: a one-sided CUSUM (Page's change detector) of the current above
  charge_detect_a: the charge above it is summed over time, less whatever the current stays
  below it, never below 0. The pack counts as charging (`charging`) once that sum reaches
  charge_detect_as, and until it is back at 0. So at most charge_detect_as of charge above
  charge_detect_a goes in before the charge temperature faults start their debounce (a 2 A
  charge is seen after 1.3 s, 50 A within a cycle), while noise around a rest, which is
  below the threshold on average, never adds up to it.

The current's direction chooses the temperature window (charge or discharge) and the
over-current checks, so a sensor stuck at 0, offset or mounted the wrong way round would let
a cold or hot pack be charged. Two checks against what the node knows otherwise:

* Offset at rest: with the relay open (drive and feedback) for REST_SETTLE_MS no current can
  flow through the node; a reading beyond current_rest_limit_a is an offset or a broken
  sensor: `offset` (a SensorFault, which opens the relay; it clears when the reading does).
* Voltage trend: the pack voltage and the current are kept every TREND_STEP_MS over
  TREND_WINDOW_MS. A pack that rose by more than charge_rise_mv_per_cell per cell within
  that window while the sensor never read charging, and whose current reading is not up by
  twice charge_detect_a from its lowest in the window, is being charged by a current the
  sensor does not see (stuck at 0, wrong polarity: the reading stays or falls as the pack
  rises): `direction_doubtful`. A discharge that eases (a load switched off) raises the pack by its
  IR drop, and the reading with it: at -7 degC a household load stepping from 25 A to 15 A
  raises a 16s pack by 0.3 V, which used to open the relay of a cold pack. The node then
  applies the charge and the discharge temperature limits alike. Not a fault or a flag by
  itself: a pack relaxing slowly after a heavy discharge rises too, and must neither trip nor
  stop balancing for it; but a pack outside its charge temperature window opens its relay,
  since it may be charging.
"""

from bms.compat import const, ticks_diff

REST_SETTLE_MS = const(1000)
# Readings in the zero's mean: at this many its sum and count are halved (old ones fade).
ZERO_MAX_SAMPLES = const(64)
# The charge detection's sum in mA x ms: each step's time and excess current are bounded so
# that it stays a small int on MicroPython (below 2**30, no allocation).
STEP_MAX_MS = const(1000)
EXCESS_MAX_MA = const(100000)
TREND_STEP_MS = const(10000)
TREND_SLOTS = const(7)  # TREND_SLOTS - 1 steps: a window of 60 s
TREND_WINDOW_MS = const(60000)


class CurrentCheck:
    """The current of one node: its zero, charging, plausibility; see the module docstring."""

    def __init__(self, config):
        self.rest_limit_ma = config.current_rest_limit_ma
        self.rise_mv = config.charge_rise_mv_per_cell * config.cells
        self.charge_detect_ma = config.charge_detect_ma
        self.charge_detect_mams = config.charge_detect_mams
        self.explain_ma = 2 * config.charge_detect_ma
        self.zero_ma = 0
        self.current_ma = 0  # this cycle's reading less the zero; 0 when unusable
        self.charging = False
        self.offset = False
        self.direction_doubtful = False
        self._open_ms = 0
        self._rested = False
        self._was_open = False
        self._pack = [0] * TREND_SLOTS  # pack voltage at each step, oldest first
        self._charged = bytearray(TREND_SLOTS)  # the sensor read charging during that step
        self._current = [0] * TREND_SLOTS  # the current (less its zero) beside each voltage
        self._filled = 0
        self._step_ms = 0
        self._started = False
        self._zero_sum = 0
        self._zero_n = 0
        self._excess = 0  # the charge detection's sum, mA x ms
        self._last_ms = 0

    def update(self, now_ms, hw, summary):
        """Run both checks on this cycle's readings (after Summary.update)."""
        if not self._started:
            self._started = True
            self._step_ms = now_ms
            self._last_ms = now_ms
        current_ok = summary.current_ok
        raw = hw.current_ma if current_ok else 0

        # Offset at rest, and the zero. The rest is latched once long enough: no age
        # compared for ever.
        is_open = not hw.relay_drive and not hw.relay_closed
        if not is_open:
            self._rested = False
            self.offset = False
        else:
            if not self._was_open:
                self._open_ms = now_ms
                self._zero_sum = self._zero_n = 0  # a new rest: a new mean
            elif not self._rested and ticks_diff(now_ms, self._open_ms) >= REST_SETTLE_MS:
                self._rested = True
            magnitude = raw if raw >= 0 else -raw
            self.offset = self._rested and current_ok and magnitude > self.rest_limit_ma
            if self._rested and current_ok and not self.offset:
                self._learn_zero(raw)
        self._was_open = is_open
        current = raw - self.zero_ma if current_ok else 0
        self.current_ma = current

        # Charge detection (module docstring).
        dt = ticks_diff(now_ms, self._last_ms)
        self._last_ms = now_ms
        if dt > STEP_MAX_MS:
            dt = STEP_MAX_MS
        elif dt < 0:
            dt = 0
        excess = current - self.charge_detect_ma
        if excess > EXCESS_MAX_MA:
            excess = EXCESS_MAX_MA
        elif excess < -EXCESS_MAX_MA:
            excess = -EXCESS_MAX_MA
        total = self._excess + excess * dt
        if total <= 0:
            total = 0
            self.charging = False
        elif total >= self.charge_detect_mams:
            total = self.charge_detect_mams
            self.charging = True
        self._excess = total

        # Voltage trend while the relay is closed.
        pack = self._pack
        charged = self._charged
        currents = self._current
        last = TREND_SLOTS - 1
        if self.charging:
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
                currents[i] = current
            self._filled = 1
            self._step_ms = now_ms
        elif ticks_diff(now_ms, self._step_ms) >= TREND_STEP_MS:
            self._step_ms = now_ms
            for i in range(last):
                pack[i] = pack[i + 1]
                charged[i] = charged[i + 1]
                currents[i] = currents[i + 1]
            charged[last] = 0
            if self._filled < TREND_SLOTS:
                self._filled += 1
        pack[last] = hw.pack_mv
        currents[last] = current
        # Built-ins rather than a loop over the slots: no bytecode per slot, no allocation.
        # A rise the current explains is no doubt: the reading is up by twice
        # charge_detect_a or more from its lowest in the window (a load that eased: the IR
        # drop recovering); twice, so that the reading's noise does not explain it.
        self.direction_doubtful = (
            not max(charged)
            and pack[last] - min(pack) > self.rise_mv
            and current - min(currents) < self.explain_ma
        )

    def _learn_zero(self, raw):
        """One reading at rest (within the rest limit) into the mean that is the zero."""
        n = self._zero_n + 1
        total = self._zero_sum + raw
        if n >= ZERO_MAX_SAMPLES:
            n >>= 1
            total >>= 1
        self._zero_n = n
        self._zero_sum = total
        self.zero_ma = total // n
