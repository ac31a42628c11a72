"""Energy charged into and discharged from the battery, for the inverter to display.

Victron's GX reads the totals from 0x378 (bytes 0-3 charged, bytes 4-7 discharged, u32 in
100 Wh each, as a BYD Battery-Box sends them to a GX and TinyBMS_Web_Gateway encodes them;
dfch/BydCanProtocol README, "0x378 History"). Pure: the core calls `update(now, voltage,
current)` every tick; the totals are saved with the gateway's state so a restart does not
reset what the GX shows.

The power of one interval is the voltage times the current measured at its end. An interval
longer than MAX_STEP_S (a stalled tick, a gateway that was down) or one with an unknown
measurement is not counted: the energy then is unknown, never guessed.
"""

from __future__ import annotations

import math
from typing import Any

from gateway.contracts.saved import SavedState, parse_saved

MAX_STEP_S = 5.0  # s: a longer interval between two updates is not integrated
STATE_VERSION = 1


class _Saved(SavedState):
    version: int
    charged_wh: float
    discharged_wh: float


class EnergyCounter:
    """Running totals of the energy into (charged) and out of (discharged) the battery, Wh."""

    def __init__(self, charged_wh: float = 0.0, discharged_wh: float = 0.0) -> None:
        self.charged_wh = charged_wh
        self.discharged_wh = discharged_wh
        self._last: float | None = None

    def update(self, now: float, voltage: float, current: float) -> None:
        """Count the interval since the last update at the pack `voltage` (V) and `current`
        (A, + = charging) measured now."""
        last, self._last = self._last, now
        if last is None or not math.isfinite(voltage) or not math.isfinite(current):
            return
        dt = now - last
        if not 0 < dt <= MAX_STEP_S:
            return
        wh = voltage * current * dt / 3600
        if wh > 0:
            self.charged_wh += wh
        else:
            self.discharged_wh -= wh

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict for persistence."""
        return {
            "version": STATE_VERSION,
            "charged_wh": self.charged_wh,
            "discharged_wh": self.discharged_wh,
        }

    @classmethod
    def from_dict(cls, data: object) -> EnergyCounter:
        """The counter saved by to_dict(); ValueError naming the problem otherwise."""
        saved = parse_saved(_Saved, data, "energy")
        if saved.version != STATE_VERSION or min(saved.charged_wh, saved.discharged_wh) < 0:
            raise ValueError(f"energy state unusable: {saved.model_dump()}")
        return cls(saved.charged_wh, saved.discharged_wh)
