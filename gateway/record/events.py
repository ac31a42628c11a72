"""What happened, for the user: trips, resets, phase changes, nodes lost and found, the
inverter missing, alarms raised and cleared. A bounded ring buffer; the newest last."""

from __future__ import annotations

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


class EventLog:
    """The last `size` events; each is logged too."""

    def __init__(self, size: int = 500) -> None:
        self.events: deque[Event] = deque(maxlen=size)
        self.count = 0  # events ever recorded: lets a client ask "what is new since n"

    def add(self, time: float, kind: EventKind, message: str, node: int | None = None) -> Event:
        event = Event(time, kind, message, node)
        self.events.append(event)
        self.count += 1
        log.info("%s: %s", kind.value, message)
        return event

    def since(self, count: int) -> list[Event]:
        """Events recorded after the first `count` (as many as are still kept)."""
        new = self.count - count
        if new <= 0:
            return []
        return list(self.events)[-min(new, len(self.events)) :]
