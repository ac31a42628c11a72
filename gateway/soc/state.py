"""The persisted part of the SoC estimate and where its value comes from."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field

from gateway.contracts.saved import SavedState, parse_saved

STATE_VERSION = 2

# The uncertainty (± points) never grows beyond this: half the scale, "anything".
MAX_UNCERTAINTY = 50.0


class SocSource(StrEnum):
    """Where the present SoC value comes from (and so whether it is trusted)."""

    NONE = "none"  # no battery data yet: a placeholder
    ESTIMATE = "estimate"  # from the voltage under load: rough, replaced by a calibration
    OCV = "ocv"  # from a rested voltage where the OCV curve is steep, counted since
    FULL = "full"  # recalibrated to 100 % at the end of a charge, counted since
    EMPTY = "empty"  # recalibrated to 0 % at the empty voltage, counted since
    USER = "user"  # set by the user, counted since
    PACKS = "packs"  # the packs' own BMSes count it (batteries that report no cells)


_UNTRUSTED = frozenset({SocSource.NONE, SocSource.ESTIMATE})


@dataclass(frozen=True, slots=True)
class SocState:
    """The persisted part of the SoC estimate. JSON-safe through to_dict()/from_dict()."""

    soc: float = 50.0  # %, 0..100: the battery's, capacity-weighted over its strings
    source: SocSource = SocSource.NONE
    # ± points the value may be off: from the calibration it rests on, grown by counting.
    uncertainty: float = MAX_UNCERTAINTY
    health: float = 1.0  # learned usable capacity / rated capacity
    cycles: float = 0.0  # equivalent full cycles: discharged Ah / rated Ah
    # SoC (%) of each parallel string, in topology order: a string that is out keeps its own
    # charge. Empty until the first snapshot tells how many strings there are.
    strings: tuple[float, ...] = ()
    # Learned current-sensor offset of each string (A, what the sensor reads at 0 A).
    offsets: tuple[float, ...] = ()
    # The calibrated SoC (%) at the last trusted point, from which the next trusted point
    # measures the capacity; None when there is none (or the count since is broken).
    anchor_soc: float | None = None
    # Net charge counted since that point, as a fraction of rated capacity (+ = charged in).
    since_anchor: float = 0.0
    uncounted_s: float = 0.0  # time not counted since that point (s)
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

    @property
    def for_inverter(self) -> float:
        """The SoC (%) the inverter is sent: the value when trusted, else the low end of its
        uncertainty. An inverter acts on SoC only to stop discharging or to charge early
        (its cut-offs, grid charging); the cells' limits come from their voltages. Erring
        low keeps an unknown battery from being drained on a guess (docs/soc.md)."""
        if self.trusted:
            return self.soc
        return max(0.0, self.soc - self.uncertainty)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict for persistence."""
        return {
            "version": STATE_VERSION,
            "soc": self.soc,
            "source": self.source.value,
            "uncertainty": self.uncertainty,
            "health": self.health,
            "cycles": self.cycles,
            "strings": list(self.strings),
            "offsets": list(self.offsets),
            "anchor_soc": self.anchor_soc,
            "since_anchor": self.since_anchor,
            "uncounted_s": self.uncounted_s,
            "learned": self.learned,
            "last_full": self.last_full,
            "last_empty": self.last_empty,
        }

    @classmethod
    def from_dict(cls, data: object) -> SocState:
        """The state from `to_dict()` output, of this version or the one before; ValueError
        naming the key for anything else."""
        if isinstance(data, dict) and data.get("version") == 1:
            old = parse_saved(SavedSocV1, data, "SoC")
            # Version 1 counted the whole battery as one: every string starts from its SoC.
            # Its capacity measurement ran from a 100 % point only.
            anchor = None if old.since_full is None else 100.0
            return cls(
                soc=old.soc,
                source=old.source,
                uncertainty=_V1_UNCERTAINTY.get(old.source, MAX_UNCERTAINTY),
                health=old.health,
                cycles=old.cycles,
                anchor_soc=anchor,
                since_anchor=-(old.since_full or 0.0),
                uncounted_s=old.uncounted_s,
                learned=old.learned,
                last_full=old.last_full,
                last_empty=old.last_empty,
            )
        saved = parse_saved(SavedSoc, data, "SoC")
        return cls(
            **saved.model_dump(exclude={"version", "strings", "offsets"}),
            strings=tuple(saved.strings),
            offsets=tuple(saved.offsets),
        )


# What a version-1 state's value was worth: it had no uncertainty. A calibration point or
# the user is taken as the points a fresh one gives; an old OCV value may come from the flat
# part of the curve (version 1 trusted it there), so it is taken as rough.
_V1_UNCERTAINTY = {
    SocSource.FULL: 1.0,
    SocSource.EMPTY: 2.0,
    SocSource.USER: 0.0,
    SocSource.OCV: 20.0,
}


class SavedSoc(SavedState):
    """SocState as saved: the keys `SocState.to_dict()` writes, with their ranges."""

    version: Literal[2]
    soc: float = Field(ge=0.0, le=100.0)
    source: SocSource = Field(strict=False)  # its value, a string in the file
    uncertainty: float = Field(ge=0.0, le=MAX_UNCERTAINTY)
    health: float = Field(ge=0.1, le=2.0)
    cycles: float = Field(ge=0.0, le=1e7)
    strings: list[Annotated[float, Field(ge=0.0, le=100.0)]] = Field(max_length=64)
    offsets: list[Annotated[float, Field(ge=-1000.0, le=1000.0)]] = Field(max_length=64)
    anchor_soc: float | None = Field(ge=0.0, le=100.0)
    since_anchor: float = Field(ge=-10.0, le=10.0)
    uncounted_s: float = Field(ge=0.0)
    learned: int = Field(ge=0)
    last_full: float | None
    last_empty: float | None


class SavedSocV1(SavedState):
    """SocState as version 1 saved it (one SoC for the whole battery, no uncertainty)."""

    version: Literal[1]
    soc: float = Field(ge=0.0, le=100.0)
    source: SocSource = Field(strict=False)
    health: float = Field(ge=0.1, le=2.0)
    cycles: float = Field(ge=0.0, le=1e7)
    since_full: float | None = Field(ge=-10.0, le=10.0)
    uncounted_s: float = Field(ge=0.0)
    learned: int = Field(ge=0)
    last_full: float | None
    last_empty: float | None
