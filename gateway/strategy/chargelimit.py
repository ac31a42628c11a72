"""Charge current above the CCL: the inverter ignores or overshoots the limit.

Battery-Emulator raises "charge limit exceeded" (EVENT_CHARGE_LIMIT_EXCEEDED, safety.cpp)
when the measured current stays above the allowed one; chargers that ignore CCL are common
(DC-coupled MPPTs, RS450: venus #1358; a Multi trickling at CCL 0). Here:

- The allowed current is the highest CCL sent within the last `follow_s` (an inverter
  follows a lower limit seconds late), plus a tolerance: `tolerance_a` and
  `tolerance_fraction` of that CCL (sensor error and the inverter's own regulation).
- A leaky counter (above: +dt, up to RATE_MAX x dt as far as the current is above, relative
  to the CCL; within: -dt / 2) bounds the share of time above: it must reach `delay_s` to
  report, so a short overshoot while the inverter follows does not, a current above the
  limit half the time does, and 150 A against a CCL of 0 does within delay_s / RATE_MAX.
- Once reported, the CVL steps down while the current is above (`above`); for MEMORY_S
  after the condition (`ignored`) the inverter is held to the CCL through the CVL
  (cvl.py: pack voltage plus the CCL left times the learnt resistance), so it does not
  overshoot again. The condition holds until the current has stayed within the limit for
  `release_s`.
"""

from __future__ import annotations

import math
from collections import deque

from gateway.strategy.settings import ChargeLimitSettings

RATE_MAX = 10.0
MEMORY_S = 3600.0  # s: an inverter that ignored the CCL is expected to go on ignoring it
REFERENCE_A = 1.0  # the excess counts relative to the CCL, or to this when smaller


class ChargeLimitMonitor:
    """Tells, step by step, whether the charge current stays above the CCL sent."""

    def __init__(self, settings: ChargeLimitSettings) -> None:
        self.settings = settings
        self.exceeded = False
        self.above = False  # the current is above the limit in this step
        self._since_s = math.inf  # counted time since the condition was last reported
        self._count_s = 0.0  # leaky time above the limit
        self._within_s = 0.0  # time within the limit while exceeded
        # The CCLs sent (A) and when (counted time), in two queues kept in step: the
        # highest is then max() over the first in C, not a generator over pairs.
        self._sent: deque[float] = deque()
        self._sent_at: deque[float] = deque()
        self._clock = 0.0

    def step(self, current: float, ccl_sent: float, dt: float) -> bool:
        """Whether the current (A, + = charging) has stayed above the CCL; `ccl_sent` is
        this step's CCL (A)."""
        cfg = self.settings
        clock = self._clock = self._clock + dt
        sent, sent_at = self._sent, self._sent_at
        sent.append(ccl_sent)
        sent_at.append(clock)
        forgotten = clock - cfg.follow_s  # a CCL replaced by then is no longer followed
        while len(sent_at) > 1 and sent_at[1] <= forgotten:
            sent.popleft()
            sent_at.popleft()
        seen = max(sent)
        limit = seen * (1.0 + cfg.tolerance_fraction) + cfg.tolerance_a
        above = self.above = math.isfinite(current) and current > limit
        if above:
            # Far above counts faster (up to RATE_MAX times): 150 A against a CCL of 0 must
            # not flow for the whole delay.
            rate = min(RATE_MAX, 1.0 + (current - limit) / max(seen, REFERENCE_A))
            self._count_s = min(cfg.delay_s, self._count_s + rate * dt)
        else:
            count = self._count_s - dt / 2
            self._count_s = count if count > 0.0 else 0.0  # max(0.0, count)
        self._since_s = 0.0 if self.exceeded else self._since_s + dt
        if not self.exceeded:
            self.exceeded = self._count_s >= cfg.delay_s
            self._within_s = 0.0
        else:
            self._within_s = 0.0 if above else self._within_s + dt
            if self._within_s >= cfg.release_s:
                self.exceeded = False
                self._count_s = 0.0
        return self.exceeded

    @property
    def ignored(self) -> bool:
        """The CCL was exceeded now or within MEMORY_S."""
        return self.exceeded or self._since_s < MEMORY_S

    def reset(self) -> None:
        """Forget the condition (data stale: nothing is known about the current)."""
        self.exceeded = self.above = False
        self._count_s = self._within_s = 0.0
        self._since_s = math.inf
        self._sent.clear()
        self._sent_at.clear()
