"""The persisted part of the SoC estimate and where its value comes from."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from gateway.contracts.saved import SavedState, parse_saved

STATE_VERSION = 1


class SocSource(StrEnum):
    """Where the present SoC value comes from (and so whether it is trusted)."""

    NONE = "none"  # no battery data yet: a placeholder
    ESTIMATE = "estimate"  # from the voltage under load: rough, replaced after a rest
    OCV = "ocv"  # from the rested voltage, counted since
    FULL = "full"  # recalibrated to 100 % at the end of a charge, counted since
    EMPTY = "empty"  # recalibrated to 0 % at the empty voltage, counted since
    USER = "user"  # set by the user, counted since
    PACKS = "packs"  # the packs' own BMSes count it (batteries that report no cells)


_UNTRUSTED = frozenset({SocSource.NONE, SocSource.ESTIMATE})


@dataclass(frozen=True, slots=True)
class SocState:
    """The persisted part of the SoC estimate. JSON-safe through to_dict()/from_dict()."""

    soc: float = 50.0  # %, 0..100
    source: SocSource = SocSource.NONE
    health: float = 1.0  # learned usable capacity / rated capacity
    cycles: float = 0.0  # equivalent full cycles: discharged Ah / rated Ah
    # Net charge taken out since the last 100 % point, as a fraction of rated capacity;
    # None when there is no full point to measure from (or it was used or invalidated).
    since_full: float | None = None
    uncounted_s: float = 0.0  # time not counted since the last 100 % point (s)
    learned: int = 0  # capacity measurements accepted so far
    last_full: float | None = None  # time of the last 100 % recalibration
    last_empty: float | None = None  # time of the last 0 % recalibration

    @property
    def trusted(self) -> bool:
        """True when the SoC rests on a calibration point, a rested OCV or the user."""
        return self.source not in _UNTRUSTED

    @property
    def soh(self) -> float:
        """State of health (%): learned usable capacity over rated, at most 100."""
        return min(100.0, 100.0 * self.health)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict for persistence."""
        return {
            "version": STATE_VERSION,
            "soc": self.soc,
            "source": self.source.value,
            "health": self.health,
            "cycles": self.cycles,
            "since_full": self.since_full,
            "uncounted_s": self.uncounted_s,
            "learned": self.learned,
            "last_full": self.last_full,
            "last_empty": self.last_empty,
        }

    @classmethod
    def from_dict(cls, data: object) -> SocState:
        """The state from `to_dict()` output; ValueError naming the key for anything else."""
        saved = parse_saved(SavedSoc, data, "SoC")
        return cls(**saved.model_dump(exclude={"version"}))


class SavedSoc(SavedState):
    """SocState as saved: the keys `SocState.to_dict()` writes, with their ranges."""

    version: Literal[1]
    soc: float = Field(ge=0.0, le=100.0)
    source: SocSource = Field(strict=False)  # its value, a string in the file
    health: float = Field(ge=0.1, le=2.0)
    cycles: float = Field(ge=0.0, le=1e7)
    since_full: float | None = Field(ge=-10.0, le=10.0)
    uncounted_s: float = Field(ge=0.0)
    learned: int = Field(ge=0)
    last_full: float | None
    last_empty: float | None
