"""Which changed paths to signal: only on a change, at most once per interval per path. Pure.

Venus OS services tell their readers of a change with a PropertiesChanged signal per path
(and ItemsChanged on the root); readers keep the last signalled value. A value that changes
every tick (a current, a cell voltage) would flood the bus, so a path is signalled at most
once per `interval` seconds of the caller's monotonic clock: a change within the interval
waits until it has passed and is then signalled with the value current at that moment (an
intermediate value that is changed back is never signalled). GetValue always answers the
newest value.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.outputs.venus.paths import Item, Value

INTERVAL_S = 1.0


def _key(value: Value) -> tuple[str, Value]:
    # 1, 1.0 and True are equal in Python but not on the bus (int32, double, boolean).
    return type(value).__name__, value


class ChangeGate:
    def __init__(self, interval: float = INTERVAL_S) -> None:
        self.interval = interval
        self._sent: dict[str, tuple[str, Value]] = {}  # path -> the value readers know
        self._at: dict[str, float] = {}  # path -> when it was last signalled

    def start(self, items: Mapping[str, Item]) -> None:
        """The values readers got without a signal (GetItems after registering)."""
        self._sent = {path: _key(value) for path, (value, _) in items.items()}
        self._at = {}

    def due(self, items: Mapping[str, Item], now: float) -> dict[str, Item]:
        """The items to signal now; they count as signalled at `now`."""
        out: dict[str, Item] = {}
        for path, item in items.items():
            key = _key(item[0])
            if self._sent.get(path) == key:
                continue
            at = self._at.get(path)
            if at is not None and 0 <= now - at < self.interval:
                continue  # signalled less than an interval ago: wait
            self._sent[path] = key
            self._at[path] = now
            out[path] = item
        return out
