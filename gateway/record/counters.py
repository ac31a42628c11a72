"""Frame counters and rate-limited logging for bad input.

A malformed or unexpected frame is counted and logged at most once per key per interval,
never raised: a noisy bus must not flood the log or stop the gateway.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field


@dataclass
class BusCounters:
    """Counters of one CAN bus, as shown to the user and in the API."""

    received: int = 0  # every frame read from the bus
    sent: int = 0  # frames handed to the adapter
    send_failed: int = 0  # frames the adapter refused (queue full, bus-off, gone)
    unknown: int = 0  # ids not in the DBC for this direction, unconfigured nodes, 29-bit ids
    malformed: int = 0  # known id, but wrong length or undecodable content
    errors: int = 0  # error frames reported by the adapter
    reconnects: int = 0  # times the adapter was reopened
    unknown_ids: dict[int, int] = field(default_factory=dict)  # id -> count (bounded)

    MAX_TRACKED_IDS = 64

    def count_unknown(self, frame_id: int) -> None:
        self.unknown += 1
        if frame_id in self.unknown_ids or len(self.unknown_ids) < self.MAX_TRACKED_IDS:
            self.unknown_ids[frame_id] = self.unknown_ids.get(frame_id, 0) + 1

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["unknown_ids"] = {f"0x{k:03X}": v for k, v in sorted(self.unknown_ids.items())}
        return d


class RateLimitedLog:
    """Logs a message at most once per key per interval (seconds of the caller's clock)."""

    MAX_KEYS = 1024

    def __init__(self, logger: logging.Logger, interval: float = 60.0) -> None:
        self.logger = logger
        self.interval = interval
        self._last: dict[object, float] = {}
        self.suppressed = 0

    def warning(self, key: object, now: float, msg: str, *args: object) -> bool:
        """Log msg % args unless key was logged less than `interval` ago. True if logged."""
        last = self._last.get(key)
        if last is not None and 0 <= now - last < self.interval:
            self.suppressed += 1
            return False
        if len(self._last) >= self.MAX_KEYS:
            self._last.clear()  # a flood of distinct keys must not grow memory
        self._last[key] = now
        self.logger.warning(msg, *args)
        return True
