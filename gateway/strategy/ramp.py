"""Anti-oscillation of a current limit: decrease at once, increase late and slowly.

- A lower target applies in the same step (a stop to 0 always; smaller cuts once they
  exceed min_step_a, so measurement noise cannot ratchet the limit down).
- A higher target must persist for hold_s, then the limit ramps at ramp_a_per_s, in
  steps ramp_step_s apart (every 0x351 change counts against the inverter: one step of
  ramp_a_per_s x ramp_step_s instead of one per tick). An
  increase also waits relax_after_s after the last
  decrease (a stop by the fail-safe excepted: it recovers as from the start): no reversal
  from down to up faster than that, so a loop through the battery (IR drop, an inverter's
  lag) cannot cycle the limit faster either.
- An increase that a decrease reverses within relax_after_s was a failed try (a cell at
  the steep top of its curve takes no more current): the next increase waits twice as
  long, and so on up to relax_max_s. A limit probing a full cell every quarter hour made a
  cycle of four to eight changes of 0x351 each time (issue 14); with the back-off it comes
  at most once an hour. An increase that holds, a phase change or a stop resets the wait.
- From 0 the limit recovers only once the target reaches recover_fraction of the maximum:
  on/off hysteresis, so a limit cannot flap around 0.
- Increases (ramp starts) are counted; beyond max_increases_per_hour in the last hour a
  new increase waits (decreases never do). Every up-and-down needs an increase, so a limit
  that still oscillates does so at most that often per hour.
"""

from __future__ import annotations

import math
from collections import deque

from gateway.strategy.settings import LimitSettings

HOUR_S = 3600.0


class LimitRamp:
    """One current limit (A) between 0 and `maximum`."""

    def __init__(self, settings: LimitSettings, maximum: float) -> None:
        self.settings = settings
        self.maximum = maximum
        self.output = 0.0
        self._above_s = 0.0  # how long the target has been above the output
        self._ramping = False
        self._clock = 0.0  # counted seconds, for the hourly budget
        self._starts: deque[float] = deque()  # counted times of the ramp starts
        self._since_change = math.inf  # counted time since the last decrease or ramp end
        self._since_step = math.inf  # counted time since the ramp's last step
        self._since_up = math.inf  # counted time since the output last rose
        self._trying = False  # an increase not yet held for relax_after_s
        self._wait_s = settings.relax_after_s  # the present relax wait (backs off)

    @property
    def increases_last_hour(self) -> int:
        """Ramp starts within the last hour of counted time."""
        return len(self._starts)

    def step(self, target: float, dt: float) -> float:
        """The limit after `dt` seconds with `target` (A) wanted; never above the target
        plus min_step_a, never above the maximum, never negative."""
        cfg = self.settings
        self._clock += dt
        while self._starts and self._starts[0] <= self._clock - HOUR_S:
            self._starts.popleft()
        self._since_change += dt
        self._since_up += dt
        if self._trying and self._since_up >= cfg.relax_after_s:
            self._trying = False  # the last increase held: back to the normal wait
            self._wait_s = cfg.relax_after_s
        # Within 0..maximum, NaN as 0 (two comparisons, not three C calls: every step asks).
        if not target > 0.0:  # NaN too
            target = 0.0
        elif target > self.maximum:
            target = self.maximum
        out = self.output
        if target < out:
            self._above_s = 0.0
            self._ramping = False
            if target == 0.0 or out - target >= cfg.min_step_a:
                self.output = target
                self._since_change = 0.0
                if self._trying:  # the last increase failed
                    self._trying = False
                    self._wait_s = min(max(cfg.relax_max_s, cfg.relax_after_s), 2 * self._wait_s)
            return self.output
        if target == out:
            self._ramping = False
            self._above_s = 0.0
            return out
        if out == 0.0 and target < cfg.recover_fraction * self.maximum:
            self._above_s = 0.0
            return out
        if not self._ramping:
            if target - out < cfg.min_step_a and out > 0.0:
                return out
            self._above_s += dt
            budget = len(self._starts) < cfg.max_increases_per_hour
            relaxed = self._since_change >= self._wait_s
            if self._above_s < cfg.hold_s or not budget or not relaxed:
                return out
            self._ramping = True
            self._starts.append(self._clock)
            self._since_step = math.inf
        self._since_step += dt
        if self._since_step < cfg.ramp_step_s:
            return out
        self._since_step = 0.0
        self.output = min(target, out + cfg.ramp_a_per_s * max(dt, cfg.ramp_step_s))
        self._since_up, self._trying = 0.0, True
        if self.output >= target:
            self._ramping = False
            self._above_s = 0.0
            self._since_change = 0.0
        return self.output

    def new_phase(self) -> None:
        """The charge phase changed: an increase need not wait relax_after_s."""
        self._since_change = math.inf
        self._wait_s = self.settings.relax_after_s
        self._trying = False

    def stop(self) -> float:
        """Force the limit to 0 at once (fail-safe); it recovers as from the start."""
        self.output = 0.0
        self._ramping = False
        self._above_s = 0.0
        self._since_change = math.inf
        self._wait_s = self.settings.relax_after_s
        self._trying = False
        return 0.0
