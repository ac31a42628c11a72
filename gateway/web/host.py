"""What the web page needs from the running gateway (service.Gateway, the simulator)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from gateway.config.root import Settings
from gateway.core import GatewayCore


class Host(Protocol):
    """A running gateway as the web page sees it.

    `core` is read and acted on directly: the web handlers run in the same event loop as
    the code that feeds and ticks it, so no locking is needed.
    """

    @property
    def core(self) -> GatewayCore:
        """The gateway's logic and state."""
        ...

    @property
    def settings(self) -> Settings:
        """The settings the gateway runs with."""
        ...

    @property
    def config_path(self) -> Path | None:
        """The configuration file the settings came from; None when running on defaults
        (the page then shows the configuration but cannot save edits)."""
        ...

    def clock(self) -> float:
        """The core's clock, seconds (the `now` passed to the core)."""
        ...
