"""JSON payloads from a BatteryView: pure functions, units in the key names.

Every key that carries a quantity ends in its unit: _v volts, _a amperes (+ = charging),
_w watts, _kwh kilowatt-hours, _c degrees Celsius, _ah ampere-hours, _pct percent, _s
seconds. An unknown value is null (the gateway's NaN), never a stale number. docs/mqtt.md
shows each payload.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from gateway.contracts.snapshot import CellRef, NodeSnapshot
from gateway.outputs.seam import BatteryView
from gateway.record.events import Event


def num(value: float, digits: int) -> float | None:
    """A finite value rounded for the wire; None (JSON null) for NaN and infinities."""
    if not math.isfinite(value):
        return None
    return round(value, digits)


def encode(payload: dict[str, Any]) -> bytes:
    """Compact JSON; NaN can never slip through (allow_nan=False raises instead)."""
    return json.dumps(payload, allow_nan=False, separators=(",", ":")).encode()


def _cell(ref: CellRef | None) -> dict[str, int] | None:
    return None if ref is None else {"node": ref.node, "cell": ref.cell}


@dataclass(frozen=True, slots=True)
class Energy:
    """Energy through the battery terminals since the gateway started (kWh, both >= 0)."""

    charged_kwh: float = 0.0
    discharged_kwh: float = 0.0


def state(view: BatteryView, energy: Energy) -> dict[str, Any]:
    """The battery: PREFIX/SYSTEM_ID/state."""
    snap, soc, decision = view.snapshot, view.soc, view.decision
    limits = view.report.limits if view.report is not None else decision.limits
    power = snap.voltage * snap.current
    return {
        "time": num(view.time, 3),
        "valid": snap.valid,
        "phase": decision.phase.value,
        "soc_pct": num(soc.soc, 1),
        "soc_trusted": soc.trusted,
        "soc_uncertainty_pct": num(soc.uncertainty, 1),
        "soh_pct": num(soc.soh, 1),
        "cycles": num(soc.cycles, 2),
        "voltage_v": num(snap.voltage, 2),
        "current_a": num(snap.current, 2),
        "power_w": num(power, 0),
        "capacity_ah": num(snap.capacity_ah, 1),
        "cell_min_v": num(snap.min_cell, 3),
        "cell_max_v": num(snap.max_cell, 3),
        "cell_spread_v": num(snap.cell_spread, 3),
        "cell_min_at": _cell(snap.min_cell_at),
        "cell_max_at": _cell(snap.max_cell_at),
        "temp_min_c": num(snap.min_temp, 1),
        "temp_max_c": num(snap.max_temp, 1),
        "strings_online": snap.strings_online,
        "strings_total": snap.strings_total,
        "data_age_s": num(snap.data_age, 1),
        "energy_charged_kwh": round(energy.charged_kwh, 4),
        "energy_discharged_kwh": round(energy.discharged_kwh, 4),
        "limits": {
            "charge_voltage_v": num(limits.cvl, 2),
            "charge_current_a": num(limits.ccl, 1),
            "discharge_current_a": num(limits.dcl, 1),
            "discharge_voltage_v": num(limits.dvl, 2),
            "charge_enable": limits.charge_enable,
            "discharge_enable": limits.discharge_enable,
            "force_charge": limits.force_charge,
            "full_charge_request": limits.full_charge_request,
        },
        # Only the raised ones: {"node_missing": "alarm", "cell_imbalance": "warning"}.
        "alarms": {
            alarm.value: severity.name.lower()
            for alarm, severity in sorted(decision.alarms.items())
        },
        "notes": list(decision.notes),
    }


def node(view: BatteryView, ns: NodeSnapshot, cells: bool) -> dict[str, Any]:
    """One node (pack) with its cells: PREFIX/SYSTEM_ID/node/N."""
    snap = view.snapshot
    voltages = snap.cell_voltages.get(ns.node, ())
    known = [v for v in voltages if math.isfinite(v)]
    bleeding = snap.bleeding.get(ns.node, 0)
    payload: dict[str, Any] = {
        "node": ns.node,
        "present": ns.present,
        "age_s": num(ns.age, 1),
        "state": ns.state.name.lower(),
        "relay_closed": ns.relay_closed,
        "voltage_v": num(ns.voltage, 2),
        "current_a": num(ns.current, 2),
        "cell_min_v": num(min(known), 3) if known and ns.present else None,
        "cell_max_v": num(max(known), 3) if known and ns.present else None,
        "faults": sorted(k.value for k in ns.faults),
        "warnings": sorted(k.value for k in ns.warnings),
    }
    if cells:
        # Stale data means unknown: a missing node's cells are null, not their last value.
        payload["cells_v"] = [num(v, 3) if ns.present else None for v in voltages]
        payload["balancing"] = [k + 1 for k in range(len(voltages)) if bleeding >> k & 1]
    return payload


def event(event: Event) -> dict[str, Any]:
    """One event: PREFIX/SYSTEM_ID/event (not retained)."""
    return {
        "time": num(event.time, 3),
        "kind": event.kind.value,
        "message": event.message,
        "node": event.node,
    }


def info(
    name: str, system_id: str, version: str, nodes: dict[int, int], commands: bool
) -> dict[str, Any]:
    """The gateway itself: PREFIX/SYSTEM_ID/info (retained)."""
    return {
        "name": name,
        "system_id": system_id,
        "version": version,
        "nodes": {str(n): {"cells": count} for n, count in sorted(nodes.items())},
        "commands": ["full_charge", "balance", "set_name"] if commands else [],
    }
