"""The persisted part of the charge strategy."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.limits import Phase

STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class StrategyState:
    """What must survive a restart. JSON-safe through to_dict()/from_dict()."""

    phase: Phase = Phase.BULK  # the phase to resume in (never STOPPED)
    absorption_completed: bool = False  # the last absorption ended by its timer
    last_full_charge: float | None = None  # time the last full charge completed
    # Time the periodic full-charge interval counts from while there was none yet (the
    # first start), so a new installation does not start with one.
    full_charge_from: float | None = None
    full_charge_requested: bool = False  # the user asked for a full charge

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict for persistence."""
        return {
            "version": STATE_VERSION,
            "phase": self.phase.value,
            "absorption_completed": self.absorption_completed,
            "last_full_charge": self.last_full_charge,
            "full_charge_from": self.full_charge_from,
            "full_charge_requested": self.full_charge_requested,
        }

    @classmethod
    def from_dict(cls, data: object) -> StrategyState:
        """The state from `to_dict()` output; ValueError for anything else."""
        if not isinstance(data, Mapping):
            raise ValueError(f"strategy state must be a mapping, not {type(data).__name__}")
        expected = set(cls().to_dict())
        if set(data) != expected:
            missing = sorted(expected - set(data))
            extra = sorted(str(k) for k in set(data) - expected)
            raise ValueError(f"strategy state keys wrong: missing {missing}, unknown {extra}")
        if data["version"] != STATE_VERSION:
            raise ValueError(f"strategy state version {data['version']!r} is not {STATE_VERSION}")
        try:
            phase = Phase(data["phase"])
        except ValueError:
            raise ValueError(f"strategy state phase {data['phase']!r} unknown") from None
        if phase is Phase.STOPPED:
            raise ValueError("strategy state phase must not be stopped")
        return cls(
            phase=phase,
            absorption_completed=_flag(data, "absorption_completed"),
            last_full_charge=_time(data, "last_full_charge"),
            full_charge_from=_time(data, "full_charge_from"),
            full_charge_requested=_flag(data, "full_charge_requested"),
        )


def _flag(data: Mapping[str, object], key: str) -> bool:
    value = data[key]
    if not isinstance(value, bool):
        raise ValueError(f"strategy state {key} {value!r} is not true or false")
    return value


def _time(data: Mapping[str, object], key: str) -> float | None:
    value = data[key]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"strategy state {key} {value!r} is not a time")
    return float(value)
