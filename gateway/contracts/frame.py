"""One CAN frame as the gateway handles it, in and out: python-can's Message carries the same
fields, the simulator's buses too. Outgoing frames are always classic data frames with an
11-bit identifier (both DBCs define only those), so only received frames set the flags."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Frame:
    id: int  # 11-bit, or 29-bit when extended
    data: bytes
    extended: bool = False  # 29-bit identifier
    remote: bool = False  # remote transmission request (no data)
    error: bool = False  # an error frame reported by the controller

    @property
    def plain(self) -> bool:
        """A classic data frame with an 11-bit identifier: the only kind either protocol uses."""
        return not (self.extended or self.remote or self.error)
