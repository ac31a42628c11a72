"""What happened, for the user: trips, resets, phase changes, nodes lost and found, the
inverter missing, alarms raised and cleared. A bounded ring buffer; the newest last."""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from dataclasses import asdict, dataclass
from enum import StrEnum

log = logging.getLogger("gateway.record.events")


class EventKind(StrEnum):
    START = "start"
    PHASE = "phase"
    NODE_TRIPPED = "node_tripped"
    NODE_RESET = "node_reset"
    NODE_MISSING = "node_missing"
    NODE_BACK = "node_back"
    RELAY = "relay"
    ALARM = "alarm"
    ALARM_CLEARED = "alarm_cleared"
    INVERTER_MISSING = "inverter_missing"
    INVERTER_BACK = "inverter_back"
    USER = "user"  # an action taken through the web page or API
    PERSIST = "persist"


@dataclass(frozen=True, slots=True)
class Event:
    time: float
    kind: EventKind
    message: str
    node: int | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(slots=True)
class _Burst:
    """Events of one cause close together: how many, and the folded summary event."""

    last: float  # time of the latest event of the cause
    recorded: int = 1  # events of this burst recorded one by one
    folded: int = 0  # events of this burst folded into `summary`
    summary: Event | None = None


class EventLog:
    """The last `size` events; each is logged too.

    Rate-limited per cause (kind, node, message; or the cause the caller names): the first
    `burst_events` events of a burst are kept one by one, the rest fold into one summary
    event -- the burst's last, with a count -- that moves to the end as it repeats. A burst
    ends after `burst_quiet_s` without its cause. So a flapping alarm cannot flush the log:
    a flood of one cause takes at most burst_events + 1 places and never evicts the others.
    """

    MAX_CAUSES = 256  # bounds memory under a flood of distinct causes

    def __init__(
        self, size: int = 500, *, burst_events: int = 4, burst_quiet_s: float = 60.0
    ) -> None:
        self.events: deque[Event] = deque(maxlen=size)
        self.count = 0  # events ever recorded: lets a client ask "what is new since n"
        self.burst_events = burst_events
        self.burst_quiet_s = burst_quiet_s
        self.folded = 0  # events folded into a summary, ever
        self._bursts: dict[object, _Burst] = {}

    def add(
        self,
        time: float,
        kind: EventKind,
        message: str,
        node: int | None = None,
        *,
        cause: object = None,
    ) -> Event:
        key = cause if cause is not None else (kind, node, message)
        burst = self._bursts.get(key)
        if burst is None or not 0 <= time - burst.last < self.burst_quiet_s:
            if len(self._bursts) >= self.MAX_CAUSES:
                self._forget_quiet(time)
            self._bursts[key] = _Burst(time)
            return self._append(Event(time, kind, message, node), log_it=True)
        burst.last = time
        if burst.recorded < self.burst_events:
            burst.recorded += 1
            return self._append(Event(time, kind, message, node), log_it=True)
        burst.folded += 1
        self.folded += 1
        if burst.summary is not None:
            with contextlib.suppress(ValueError):  # already evicted: append anew
                self.events.remove(burst.summary)
        summary = Event(
            time, kind, f"{message} (and {burst.folded} more like it in this burst)", node
        )
        burst.summary = summary
        # Logged once per burst: the journal must not flood either.
        return self._append(summary, log_it=burst.folded == 1)

    def _append(self, event: Event, *, log_it: bool) -> Event:
        self.events.append(event)
        self.count += 1
        if log_it:
            log.info("%s: %s", event.kind.value, event.message)
        return event

    def _forget_quiet(self, now: float) -> None:
        quiet = [k for k, b in self._bursts.items() if not 0 <= now - b.last < self.burst_quiet_s]
        for key in quiet:
            del self._bursts[key]
        if len(self._bursts) >= self.MAX_CAUSES:
            self._bursts.clear()

    def since(self, count: int) -> list[Event]:
        """Events recorded after the first `count` (as many as are still kept)."""
        new = self.count - count
        if new <= 0:
            return []
        return list(self.events)[-min(new, len(self.events)) :]
