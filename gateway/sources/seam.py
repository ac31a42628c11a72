"""The battery-source seam: where the gateway's knowledge of the battery comes from and where
the commands for its packs go.

A source is synchronous and does no I/O, like the rest of the core: the runtime hands it the
frames of its bus as they arrive and sends what it returns. It keeps its packs' readings with
the time each arrived (ages on the core's monotonic clock) and makes them into one
BatterySnapshot, the contract every later stage reads (gateway/contracts/snapshot.py).

Today's implementation is moat_nodes/ (the moat-bms nodes on the battery CAN bus).
docs/architecture.md says how to add one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from gateway.contracts.decision import Decision
    from gateway.contracts.frame import Frame
    from gateway.contracts.snapshot import BatterySnapshot


class BatterySource(Protocol):
    """Packs placed in the topology, their readings and their commands."""

    name: str

    def on_frame(self, frame: Frame, now: float) -> bool:
        """One frame of the source's bus. True when it may change a decision at once (a cell
        beyond an alert bound, a trip): the caller then ticks without waiting."""
        ...

    def snapshot(self, now: float) -> BatterySnapshot:
        """The battery as the source knows it now; stale readings are unknown (NaN)."""
        ...

    def problems(self) -> list[str]:
        """What the packs report about themselves that contradicts the configuration."""
        ...

    def commands(self, decision: Decision, now: float) -> list[Frame]:
        """The frames due now to carry out `decision` (relays, balancing, keep-alive)."""
        ...

    def stopping(self) -> Frame | None:
        """The gateway is going away: a last frame telling the packs so, once; None after."""
        ...
