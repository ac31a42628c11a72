"""Current derating: what fraction of the maximum charge and discharge current may flow.

The fraction of each direction is the smallest of its factors (cell voltage, temperature,
SoC when enabled, node flags), times the share of parallel strings online. Node flags act
by level and kind (table below); temperature windows block a direction with hysteresis.
The cell-voltage factors move between levels (level_ratio^k), from the extreme cells
without their IR drop (the controller passes them, resistance.py): a limit that follows
a raw reading through its own IR drop cycles; a level falls at once, to where the cell's
rate takes it within two minutes, and rises one level at a time above the limit sent
(celllevel.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter

from gateway.contracts.chemistry import ChemistrySpec, Curve, TemperatureWindow
from gateway.contracts.decision import Alarm, Severity
from gateway.contracts.snapshot import BatterySnapshot, Level, ProtectionKind
from gateway.strategy.alarms import raise_alarm
from gateway.strategy.celllevel import CellLevel
from gateway.strategy.flags import Effect, Flags, flag_effect, flags
from gateway.strategy.settings import DeratingSettings

Reason = Callable[[], str]
_FACTOR = itemgetter(0)  # the factor of a (factor, reason) pair


class TemperatureGate:
    """A direction allowed strictly inside a temperature window, with hysteresis: once
    blocked, allowed again only `hysteresis` inside. Unknown temperatures block."""

    def __init__(self, window: TemperatureWindow) -> None:
        self.window = window
        self.open = True
        self.side = ""  # "low" or "high" while blocked

    def update(self, t_min: float, t_max: float) -> bool:
        """Whether the direction is allowed at these coldest and hottest temperatures."""
        w = self.window
        if math.isnan(t_min) or math.isnan(t_max):
            self.open, self.side = False, "unknown"
        elif self.open:
            if t_min <= w.low:
                self.open, self.side = False, "low"
            elif t_max >= w.high:
                self.open, self.side = False, "high"
        elif t_min >= w.low + w.hysteresis and t_max <= w.high - w.hysteresis:
            self.open, self.side = True, ""
        elif self.side == "unknown":
            self.side = "low" if t_min < w.low + w.hysteresis else "high"
        return self.open


class TemperatureFactor:
    """A temperature table's factor for the coldest and the hottest cell: the lower of the
    two. The readings move in 0.1 degC steps and stay for minutes, so the factor of the last
    two readings is kept and given again for the same two (the table never changes)."""

    def __init__(self, curve: Curve) -> None:
        self.curve = curve
        self._last: tuple[float, float, float] | None = None  # (t_min, t_max, factor)

    def at(self, t_min: float, t_max: float) -> float:
        last = self._last
        if last is not None and last[0] == t_min and last[1] == t_max:
            return last[2]
        factor = min(_at(self.curve, t_min), _at(self.curve, t_max))
        self._last = (t_min, t_max, factor)
        return factor


@dataclass(frozen=True, slots=True)
class Derating:
    """Allowed fractions of the maximum currents, with the reasons."""

    charge: float  # 0..1, online share included
    discharge: float
    notes: tuple[str, ...] = ()
    alarms: dict[Alarm, Severity] = field(default_factory=dict)
    # The charge fraction without the highest-cell factor: what an inverter that ignores
    # CCL is held to through the CVL (whose own loop does the taper at the top).
    charge_unless_cell: float = 1.0


class Derater:
    """Computes the derating of one battery step by step (the temperature gates keep state)."""

    def __init__(self, settings: DeratingSettings, chemistry: ChemistrySpec) -> None:
        self.settings = settings
        self.chemistry = chemistry
        self.charge_gate = TemperatureGate(chemistry.charge_temp)
        self.discharge_gate = TemperatureGate(chemistry.discharge_temp)
        self.charge_by_temp = TemperatureFactor(chemistry.charge_by_temp)
        self.discharge_by_temp = TemperatureFactor(chemistry.discharge_by_temp)
        self.charge_level = CellLevel(settings.level_ratio, worse_up=True)
        self.discharge_level = CellLevel(settings.level_ratio, worse_up=False)
        # The factor of each node-flag effect (the settings never change).
        self._factor_of = {
            Effect.NONE: 1.0,
            Effect.MILD: settings.info_factor,
            Effect.STRONG: settings.warning_factor,
            Effect.STOP: 0.0,
        }

    def step(
        self,
        snap: BatterySnapshot,
        allowed_max: float,
        soc: float,
        connected_flags: Flags | None = None,
        *,
        max_cell: float | None = None,
        min_cell: float | None = None,
        charge_sent: float | None = None,
        charge_least_rise: float = 0.0,
        dt: float = 0.0,
        charge_flow: float = math.nan,
        discharge_flow: float = math.nan,
    ) -> Derating:
        """Fractions for a valid snapshot; `allowed_max` is the cell maximum (V) the charge
        derating counts from; `max_cell` / `min_cell` replace the snapshot's extreme cells
        (the controller passes them without their IR drop, resistance.py).
        `charge_sent`: the CCL last sent as a fraction of the maximum (the online share
        included), so the highest cell's level rises one level above it at a time
        (celllevel.py); `charge_least_rise` the smallest rise of the CCL, as a fraction;
        `dt` the time since the last step (s): a decrease of a cell-voltage level looks
        ahead at the cell's rate (celllevel.py; 0: no look-ahead); `charge_flow` and
        `discharge_flow` the present charge and discharge currents as fractions of their
        maxima (the online share included; NaN: not known), which scale that rate."""
        top = snap.max_cell if max_cell is None else max_cell
        bottom = snap.min_cell if min_cell is None else min_cell
        prof, cfg = self.chemistry, self.settings
        # (factor, reason): the reason is written only for a factor that limits, in the
        # notes; most ticks nothing does.
        charge: list[tuple[float, Reason]] = []
        discharge: list[tuple[float, Reason]] = []
        alarms: dict[Alarm, Severity] = {}

        share = snap.online_fraction
        if not snap.cells_unreported:  # else the packs' own BMSes bound them (core)
            sent: float | None = None
            least = 0.0
            up_flow = down_flow = math.nan
            if share > 0.0:
                up_flow, down_flow = charge_flow / share, discharge_flow / share
                if charge_sent is not None:
                    sent, least = charge_sent / share, charge_least_rise / share
            up = self.charge_level.step(
                lambda v: _at(prof.charge_by_cell, v - allowed_max),
                top,
                sent,
                least,
                dt,
                up_flow,
            )
            down = self.discharge_level.step(
                lambda v: _at(prof.discharge_by_cell, v), bottom, dt=dt, flow=down_flow
            )
            charge.append((up, lambda: f"max cell {top:.3f} V"))
            discharge.append((down, lambda: f"min cell {bottom:.3f} V"))

        def temps() -> str:
            return f"{snap.min_temp:.1f}..{snap.max_temp:.1f} degC"

        for gate, by_temp, out, name in (
            (self.charge_gate, self.charge_by_temp, charge, "charging"),
            (self.discharge_gate, self.discharge_by_temp, discharge, "discharging"),
        ):
            if gate.update(snap.min_temp, snap.max_temp):
                factor = by_temp.at(snap.min_temp, snap.max_temp)
                out.append((factor, lambda: f"temperature {temps()}"))
                if factor < 1.0:
                    raise_alarm(alarms, _temp_alarm(snap, by_temp.curve), Severity.WARNING)
            else:

                def blocked(name: str = name, gate: TemperatureGate = gate) -> str:
                    return f"{name} blocked: temperature {gate.side} ({temps()})"

                out.append((0.0, blocked))
                alarm = {
                    "low": Alarm.LOW_TEMPERATURE,
                    "high": Alarm.HIGH_TEMPERATURE,
                }.get(gate.side, Alarm.SYSTEM)
                # Blocked charging is reported as a warning: an inverter may read a
                # temperature alarm as "stop everything", and discharging still works.
                severity = Severity.WARNING if name == "charging" else Severity.ALARM
                raise_alarm(alarms, alarm, severity)

        if cfg.by_soc:
            charge.append((_at(prof.charge_by_soc, soc), lambda: f"SoC {soc:.0f} %"))

        factor_of = self._factor_of
        for level, kind in flags(snap) if connected_flags is None else connected_flags:
            c_eff, d_eff = flag_effect(level, kind)

            def why(level: Level = level, kind: ProtectionKind = kind) -> str:
                return f"node {level.name.lower()} {kind}"

            charge.append((factor_of[c_eff], why))
            discharge.append((factor_of[d_eff], why))

        # Every charge factor but the highest cell's (the first, where the cells are known).
        others = charge if snap.cells_unreported else charge[1:]
        # (The factors picked out of the pairs by map in C: every step asks.)
        unless_cell = max(0.0, min(1.0, *map(_FACTOR, others))) * share if others else share
        notes: list[str] = []
        results: list[float] = []
        for direction, factors in (("charge", charge), ("discharge", discharge)):
            low = min(map(_FACTOR, factors), default=1.0)
            results.append(max(0.0, min(1.0, low)) * share)
            if low < 1.0:
                notes.extend(
                    f"{direction} {100 * f:.0f} %: {reason()}" for f, reason in factors if f == low
                )
        if share < 1.0:
            notes.append(f"{snap.strings_online} of {snap.strings_total} strings online")
        return Derating(
            results[0], results[1], tuple(notes), alarms, charge_unless_cell=unless_cell
        )


def _at(curve: Curve, x: float) -> float:
    """Curve value; an unknown input allows nothing."""
    y = curve.at(x)
    return 0.0 if math.isnan(y) else y


def _temp_alarm(snap: BatterySnapshot, curve: Curve) -> Alarm:
    """Which end of a temperature table derates: the colder or the hotter cell."""
    return (
        Alarm.LOW_TEMPERATURE
        if curve.at(snap.min_temp) <= curve.at(snap.max_temp)
        else Alarm.HIGH_TEMPERATURE
    )
