"""One CAN frame as the gateway handles it, in and out: python-can's Message carries the same
fields, the simulator's buses too. Outgoing frames are always classic data frames with an
11-bit identifier (both DBCs define only those), so only received frames set the flags.

A NamedTuple: immutable like the frozen dataclass it was, and made in C. Every frame in and
out is one (the simulated week makes 14 a second), and a frozen dataclass's __init__ sets
each field through object.__setattr__, three times the cost. A copy with a change is
`frame._replace(data=...)`; a Frame equals the plain tuple of its fields."""

from __future__ import annotations

from typing import NamedTuple


class Frame(NamedTuple):
    id: int  # 11-bit, or 29-bit when extended
    data: bytes
    extended: bool = False  # 29-bit identifier
    remote: bool = False  # remote transmission request (no data)
    error: bool = False  # an error frame reported by the controller

    @property
    def plain(self) -> bool:
        """A classic data frame with an 11-bit identifier: the only kind either protocol uses."""
        return not (self.extended or self.remote or self.error)
