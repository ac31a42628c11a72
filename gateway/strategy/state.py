"""The persisted part of the charge strategy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field

from gateway.contracts.decision import Phase
from gateway.contracts.saved import SavedState, parse_saved

STATE_VERSION = 2  # 2: the balancing charge account (a version 1 file has none)

# The charge account of charge-based balancing (balancecharge.py): per node, the Ah each
# cell still has to bleed.
BalanceOwed = tuple[tuple[int, tuple[float, ...]], ...]


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
    # Forgetting it would stop the bleeding until the next top, a day without balancing.
    balance_owed: BalanceOwed = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict for persistence."""
        return {
            "version": STATE_VERSION,
            "phase": self.phase.value,
            "absorption_completed": self.absorption_completed,
            "last_full_charge": self.last_full_charge,
            "full_charge_from": self.full_charge_from,
            "full_charge_requested": self.full_charge_requested,
            "balance_owed": {str(node): list(cells) for node, cells in self.balance_owed},
        }

    @classmethod
    def from_dict(cls, data: object) -> StrategyState:
        """The state from `to_dict()` output; ValueError naming the key for anything else."""
        saved = parse_saved(SavedStrategy, data, "strategy")
        if saved.phase is Phase.STOPPED:
            raise ValueError("strategy state phase must not be stopped")
        owed = []
        for node, cells in saved.balance_owed.items():
            if not node.isdigit():
                raise ValueError(f"strategy state balance_owed: node {node!r} is not a node id")
            owed.append((int(node), tuple(cells)))
        return cls(
            **saved.model_dump(exclude={"version", "balance_owed"}),
            balance_owed=tuple(sorted(owed)),
        )


class SavedStrategy(SavedState):
    """StrategyState as saved: the keys `StrategyState.to_dict()` writes."""

    version: Literal[1, 2]
    phase: Phase = Field(strict=False)  # its value, a string in the file
    absorption_completed: bool
    last_full_charge: float | None
    full_charge_from: float | None
    full_charge_requested: bool
    balance_owed: dict[str, list[Annotated[float, Field(ge=0)]]] = Field(default_factory=dict)
