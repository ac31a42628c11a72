"""The gateway's state as JSON-ready data for the page and the API.

Pure functions of the core's public state and `now` (the core's clock). Unknown values
(NaN, infinity) become null: JSON has no NaN, and the page shows a dash for them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from gateway.codec import moat_bms as codec
from gateway.contracts.decision import Limits
from gateway.contracts.snapshot import CellRef, NodeSnapshot
from gateway.core import GatewayCore
from gateway.outputs import Output
from gateway.record.events import Event
from gateway.sources.moat_nodes.model import NodeRecord

Json = dict[str, Any]


def num(value: float | None, digits: int = 3) -> float | None:
    """A finite value rounded for display, or None (unknown)."""
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


def _cell_ref(ref: CellRef | None) -> Json | None:
    return None if ref is None else {"node": ref.node, "cell": ref.cell}


def _limits(limits: Limits) -> Json:
    return {
        "cvl": num(limits.cvl, 2),
        "ccl": num(limits.ccl, 1),
        "dcl": num(limits.dcl, 1),
        "dvl": num(limits.dvl, 2),
        "charge_enable": limits.charge_enable,
        "discharge_enable": limits.discharge_enable,
        "force_charge": limits.force_charge,
        "full_charge_request": limits.full_charge_request,
    }


def status(
    core: GatewayCore, now: float, outputs: Sequence[Output] = (), wall_offset: float = 0.0
) -> Json:
    """The battery summary: SoC, V, A, W, phase, limits (decided and sent), alarms, and what
    each output (D-Bus, MQTT) says of itself.

    Times are the core's (monotonic) clock; `wall_offset` turns them into the wall clock's
    reading for display (the page adds it)."""
    snap, soc, decision = core.snapshot, core.soc_state, core.decision
    chem = core.chemistry
    sent = core.sent  # the values after the profile's shaping, at the wire's 0.1 resolution
    alarms = sorted(
        (decision.alarms if decision else {}).items(), key=lambda a: (-a[1], a[0].value)
    )
    return {
        "time": now,
        "started": core.started,
        "wall_offset_s": round(wall_offset, 3),
        "valid": snap.valid,
        "data_age_s": num(snap.data_age, 1),
        "soc": num(soc.soc, 1),
        "soh": num(soc.soh, 1),
        "soc_source": soc.source.value,
        "soc_trusted": soc.trusted,
        # ± points the SoC may be off, and what the inverter is sent (the low end of the
        # uncertainty while the SoC is not trusted).
        "soc_uncertainty": num(soc.uncertainty, 1),
        "soc_sent": num(soc.for_inverter, 1),
        "soc_strings": [num(s, 1) for s in soc.strings],
        "voltage": num(snap.voltage, 2),
        "current": num(snap.current, 1),
        "power_w": num(snap.voltage * snap.current, 0),
        "capacity_ah": num(snap.capacity_ah, 1),
        "strings_online": snap.strings_online,
        "strings_total": snap.strings_total,
        "cells": {
            "min": num(snap.min_cell),
            "max": num(snap.max_cell),
            "spread": num(snap.cell_spread),
            "min_at": _cell_ref(snap.min_cell_at),
            "max_at": _cell_ref(snap.max_cell_at),
        },
        "temperature": {"min": num(snap.min_temp, 1), "max": num(snap.max_temp, 1)},
        "phase": decision.phase.value if decision else None,
        "notes": list(decision.notes) if decision else [],
        "limits": {
            "sent": None
            if sent is None
            else {
                "cvl": num(sent.cvl, 1),
                "ccl": num(sent.ccl, 1),
                "dcl": num(sent.dcl, 1),
                "dvl": num(sent.dvl, 1),
            },
            "decided": _limits(decision.limits) if decision else None,
        },
        "alarms": [{"alarm": a.value, "severity": s.name.lower()} for a, s in alarms],
        "inverter": {
            "profile": core.profile.name,
            "keepalive": core.keepalive.status(now).value,
            # SMA Sunny Island: its own readings from 0x305/0x306 (issue 15 item 3).
            **(
                {"readings": {k: num(v, 2) for k, v in core.inverter_readings.items()}}
                if core.profile.reads_inverter_readings
                else {}
            ),
        },
        "strings": [
            {
                "index": s.index,
                "nodes": list(s.nodes),
                "online": s.online,
                "blocked": s.blocked,
                "reason": s.reason,
                "voltage": num(s.voltage, 2),
                "current": num(s.current, 1),
            }
            for s in snap.strings
        ],
        "chemistry": {
            "name": chem.chemistry.value,
            "hard_min_v": chem.hard_min_v,
            "min_cell_v": chem.min_cell_v,
            "float_v": chem.float_v,
            "charge_target_v": chem.charge_target_v,
            "full_charge_v": chem.full_charge_v,
            "hard_max_v": chem.hard_max_v,
        },
        "counters": {
            "battery": core.battery_counters.as_dict(),
            "inverter": core.inverter_counters.as_dict(),
        },
        "events_count": core.events.count,
        "packs": packs(core, now),
        # An output's `status` is its own words ("registered as ...", "... retrying in 4 s").
        "outputs": [{"name": o.name, "status": o.describe()} for o in outputs],
    }


def _faults(snap: NodeSnapshot) -> list[Json]:
    out = []
    for level, kinds in (("fault", snap.faults), ("warning", snap.warnings), ("info", snap.infos)):
        out += [{"kind": k.value, "level": level} for k in sorted(kinds)]
    return out


def node(core: GatewayCore, rec: NodeRecord, now: float) -> Json:
    """One node: state, relay, pack, cells with min/max and bleeding marks, temperatures,
    faults by level."""
    model = core.model
    snap = core.snapshot.nodes.get(rec.node) or model.node_snapshot(rec, now)
    present = snap.present
    string = next(
        (i for i, s in enumerate(core.settings.battery.topology.strings) if rec.node in s), None
    )
    info = rec.info
    return {
        "node": rec.node,
        "string": string,
        "present": present,
        "age_s": num(now - rec.t_state, 1),
        "state": rec.state.name.lower(),
        "relay": rec.relay_state.name.lower(),
        "relay_request": rec.relay_request.name.lower(),
        "trip_cleared": rec.trip_cleared,
        "balancing": rec.balancing,
        "gateway_link": rec.gateway_link.name.lower(),
        "voltage": num(rec.pack_voltage, 2) if present else None,
        "current": num(rec.pack_current, 1) if present else None,
        "cell_count": rec.cell_count,
        "cells": [num(v) for v in model.fresh_cells(rec, now)],
        "min_cell": {"voltage": num(rec.min_cell), "cell": rec.min_cell_no} if present else None,
        "max_cell": {"voltage": num(rec.max_cell), "cell": rec.max_cell_no} if present else None,
        "bleeding": [k + 1 for k in range(rec.cell_count) if rec.bleeding >> k & 1]
        if present
        else [],
        "temperatures": [num(t, 1) for t in model.fresh_temperatures(rec, now)],
        "balancer_temperature": num(model.fresh_balancer_temperature(rec, now), 1),
        "faults": _faults(snap) if present else [],
        "rejected_commands": rec.rejected_commands,
        "ignored_state_frames": rec.state_frames_ignored,
        "info": None
        if info is None
        else {
            "firmware": f"{info.firmware_major}.{info.firmware_minor}.{info.firmware_patch}",
            "cell_count": info.cell_count,
            "temperature_sensors": info.temperature_sensor_count,
            "chemistry": _chemistry_name(info.chemistry),
            "capacity_ah": num(info.capacity, 1),
        },
    }


def _chemistry_name(value: int) -> str:
    try:
        return codec.NodeInfoChemistry(value).name.lower()
    except ValueError:
        return f"unknown ({value})"


def nodes(core: GatewayCore, now: float) -> list[Json]:
    """Every configured node, in node-id order."""
    return [node(core, core.model.nodes[n], now) for n in sorted(core.model.nodes)]


def packs(core: GatewayCore, now: float) -> list[Json]:
    """Every commercial pack (battery.packs; docs/sources.md), in id order: what its BMS
    last reported and whether its readings fail."""
    combined = core.packs
    if combined is None:
        return []
    source, out = combined.packs, []
    for pack, rec in sorted(source.packs.items()):
        snap = core.snapshot.nodes.get(pack) or source.node_snapshot(rec, now)
        reading = rec.reading if snap.present else None
        cfg = core.settings.battery.packs[pack]
        out.append(
            {
                "pack": pack,
                "source": cfg.source,
                "present": snap.present,
                "age_s": num(rec.age(now), 1),
                "state": snap.state.name.lower(),
                "charge_on": reading.charge_on if reading else None,
                "discharge_on": reading.discharge_on if reading else None,
                "voltage": num(snap.voltage, 2) if snap.present else None,
                "current": num(snap.current, 1) if snap.present else None,
                "soc": num(reading.soc, 1) if reading and reading.soc is not None else None,
                "cells": [num(v) for v in source.fresh_cells(rec, now)],
                "temperatures": [num(t, 1) for t in reading.temperatures] if reading else [],
                "alarms": sorted(reading.alarms) if reading else [],
                "faults": _faults(snap) if snap.present else [],
                "errors": rec.errors,
                "last_error": rec.last_error,
            }
        )
    return out


def _event(seq: int, event: Event) -> Json:
    return {
        "seq": seq,
        "time": event.time,
        "kind": event.kind.value,
        "message": event.message,
        "node": event.node,
    }


def events(core: GatewayCore, since: int = 0) -> Json:
    """Events recorded after the first `since` (as many as are kept), oldest first, each
    with its sequence number (1 = the first event ever recorded)."""
    log = core.events
    new = log.since(since)
    first = log.count - len(new) + 1
    return {"count": log.count, "events": [_event(first + i, e) for i, e in enumerate(new)]}


def history(core: GatewayCore, since: float = -math.inf) -> Json:
    """History samples after `since` (core clock, s) as column arrays."""
    return {"interval_s": core.history.interval, "columns": core.history.columns(since)}
