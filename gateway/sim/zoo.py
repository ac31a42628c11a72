"""The inverter zoo: named inverter behaviours met in the field, for scenarios and benchmarks.

Each model is a set of changes to SimInverterSettings (gateway/sim/inverter.py);
`inverter_model(name, base)` applies one to a scenario's inverter (`moat-bms sim --inverter
NAME`). The strategy must keep every cell under its maximum with all of them (issue 14;
benchmarks/charge_quality.py runs the matrix).
Where a behaviour comes from (brief charging-and-soc.md, "Measured against the references"):

- ideal: follows every limit, flag and alarm, and holds the battery at CVL both ways (above a
  lowered CVL it discharges into the loads and the grid, as a Victron ESS regulates its DC
  voltage).
- no-pull-down: the simulator's default inverter (today's scenarios): as ideal, but above a
  lowered CVL it only stops charging; the battery comes down by its loads alone.
- ccl-overshoot: charges 10 % above CCL (a loose current loop; Battery-Emulator raises
  "charge limit exceeded" for such inverters).
- cvl-only: follows only CVL: ignores CCL, the 0x35C enable bits and the 0x359/0x35A alarms
  (chargers that only regulate voltage; "some chargers only follow CVL").
- low-voltmeter: reads the battery 0.3 V low, so it holds the battery 0.3 V above CVL.
- mppt-ignores-ccl: its DC-coupled MPPTs charge the PV surplus whatever CCL says, the
  inverter/charger follows CCL for grid charge (Victron RS450 and DC-coupled MPPTs,
  venus #1358).
"""

from __future__ import annotations

from typing import Any

from gateway.sim.inverter import SimInverterSettings

__all__ = ["MODELS", "inverter_model"]

# Model name -> the settings it changes from SimInverterSettings' defaults.
MODELS: dict[str, dict[str, Any]] = {
    "ideal": {"pulls_down_to_cvl": True},
    "no-pull-down": {},
    "ccl-overshoot": {"pulls_down_to_cvl": True, "ccl_overshoot": 0.10},
    "cvl-only": {
        "pulls_down_to_cvl": True,
        "follows_ccl": False,
        "honours_request_flags": False,
        "honours_alarms": False,
    },
    "low-voltmeter": {"pulls_down_to_cvl": True, "voltage_offset_v": -0.3},
    "mppt-ignores-ccl": {"pulls_down_to_cvl": True, "pv_ignores_ccl": True},
}


def inverter_model(name: str, base: SimInverterSettings | None = None) -> SimInverterSettings:
    """Zoo model `name` on top of `base` (a scenario's inverter: its family, its power; the
    defaults when None). ValueError naming the known models for an unknown name."""
    try:
        changes = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown inverter model {name!r}; known: {', '.join(MODELS)}") from None
    start = base if base is not None else SimInverterSettings()
    return SimInverterSettings(**{**start.model_dump(), **changes})
