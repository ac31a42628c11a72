"""Ring buffer of battery history for charts: one sample per interval for the last hours."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class Sample:
    time: float
    voltage: float
    current: float
    soc: float
    cvl: float
    ccl: float
    dcl: float
    min_cell: float
    max_cell: float
    max_temp: float


class History:
    """Keeps one sample per `interval` seconds for `hours` hours."""

    def __init__(self, interval: float = 10.0, hours: float = 6.0) -> None:
        self.interval = interval
        self.samples: deque[Sample] = deque(maxlen=max(1, int(hours * 3600 / interval)))
        self._next = -math.inf

    def due(self, time: float) -> bool:
        """Whether offer() would take a sample of `time`: a caller that ticks more often
        than the interval builds a Sample only then."""
        return time >= self._next

    def offer(self, sample: Sample) -> bool:
        """Record the sample if the interval has passed since the last one."""
        if sample.time < self._next:
            return False
        self.samples.append(sample)
        self._next = sample.time + self.interval
        return True

    def columns(self, since: float = -math.inf) -> dict[str, list[float | None]]:
        """Column arrays (JSON friendly: NaN becomes None) of the samples after `since`."""
        rows = [s for s in self.samples if s.time > since]
        out: dict[str, list[float | None]] = {}
        for f in fields(Sample):
            out[f.name] = [_json(getattr(s, f.name)) for s in rows]
        return out


def _json(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else round(value, 4)
