"""The /History counters of the battery service: deepest discharge, lowest and highest cell
voltage, energy charged and discharged. Pure: `update` takes the view's time and values.

Charge cycles are the SoC estimator's equivalent full cycles (gateway/soc/). The rest is
kept here and persisted with the service's state (service.py), as a Victron battery monitor
keeps its history across restarts. Energy is the trapezoid integral of the pack power over
the core's clock; a gap longer than MAX_STEP_S counts as MAX_STEP_S (a pause or a clock jump
must not add energy), a clock that steps back counts nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

MAX_STEP_S = 5.0  # s, as the SoC estimator's default max_step_s
J_PER_KWH = 3_600_000.0


@dataclass(slots=True)
class HistoryState:
    deepest_discharge_ah: float | None = None  # most negative consumed Ah seen (<= 0)
    min_cell_v: float | None = None  # lowest cell voltage seen, V
    max_cell_v: float | None = None  # highest cell voltage seen, V
    charged_kwh: float = 0.0
    discharged_kwh: float = 0.0

    def to_dict(self) -> dict[str, float | None]:
        return {
            "deepest_discharge_ah": self.deepest_discharge_ah,
            "min_cell_v": self.min_cell_v,
            "max_cell_v": self.max_cell_v,
            "charged_kwh": self.charged_kwh,
            "discharged_kwh": self.discharged_kwh,
        }

    @classmethod
    def from_dict(cls, data: object) -> HistoryState:
        """The state from to_dict() output; ValueError naming the key for anything else."""
        if not isinstance(data, Mapping):
            raise ValueError(f"history must be a mapping, not {type(data).__name__}")
        values: dict[str, float | None] = {}
        for key, default in cls().to_dict().items():
            value = data.get(key, default)
            if value is None and default is None:
                values[key] = None
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"history {key} {value!r} is not a number")
            if not math.isfinite(value):
                raise ValueError(f"history {key} {value!r} is not finite")
            values[key] = float(value)
        return cls(**values)  # type: ignore[arg-type]


class History:
    """Updates a HistoryState from every view (cheap: called after every tick)."""

    def __init__(self, state: HistoryState | None = None) -> None:
        self.state = state if state is not None else HistoryState()
        self._last: tuple[float, float] | None = None  # (time, power W) of the last sample

    def update(
        self,
        now: float,
        power_w: float,
        consumed_ah: float | None,
        cells: tuple[float, float] | None,
    ) -> None:
        """One sample: the pack power (NaN when unknown), the consumed Ah (None when
        unknown) and (lowest, highest) cell voltage of fresh data (None when none)."""
        s = self.state
        if consumed_ah is not None and (
            s.deepest_discharge_ah is None or consumed_ah < s.deepest_discharge_ah
        ):
            s.deepest_discharge_ah = consumed_ah
        if cells is not None:
            low, high = cells
            if math.isfinite(low) and (s.min_cell_v is None or low < s.min_cell_v):
                s.min_cell_v = low
            if math.isfinite(high) and (s.max_cell_v is None or high > s.max_cell_v):
                s.max_cell_v = high
        if not math.isfinite(power_w):
            self._last = None
            return
        last, self._last = self._last, (now, power_w)
        if last is None:
            return
        dt = min(now - last[0], MAX_STEP_S)
        if dt <= 0:
            return
        energy = (last[1] + power_w) / 2 * dt / J_PER_KWH
        if energy > 0:
            s.charged_kwh += energy
        else:
            s.discharged_kwh -= energy
