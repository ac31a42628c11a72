"""Building BatterySnapshots for the strategy tests, consistent with
gateway/contracts/snapshot.py."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

from gateway.contracts.snapshot import (
    BatterySnapshot,
    CellRef,
    NodeSnapshot,
    NodeState,
    ProtectionKind,
    StringSnapshot,
)

NONE: frozenset[ProtectionKind] = frozenset()


def node(
    n: int,
    cells: Sequence[float],
    *,
    present: bool = True,
    state: NodeState = NodeState.ACTIVE,
    relay_closed: bool = True,
    trip_cleared: bool = False,
    current: float = 0.0,
    faults: frozenset[ProtectionKind] = NONE,
    warnings: frozenset[ProtectionKind] = NONE,
    infos: frozenset[ProtectionKind] = NONE,
) -> NodeSnapshot:
    """A node as reported; its pack voltage is the sum of its cells."""
    return NodeSnapshot(
        node=n,
        present=present,
        age=0.1 if present else math.inf,
        state=state,
        relay_closed=relay_closed,
        trip_cleared=trip_cleared,
        voltage=sum(cells) if present else math.nan,
        current=current if present else math.nan,
        faults=faults,
        warnings=warnings,
        infos=infos,
    )


def snapshot(
    cells: Sequence[Sequence[float]] = ((3.3,) * 16,),
    *,
    time: float = 0.0,
    current: float = 0.0,
    temps: tuple[float, float] = (25.0, 25.0),
    strings: Sequence[Sequence[int]] | None = None,
    capacity_ah: float = 280.0,
    data_age: float = 0.5,
    valid: bool | None = None,
    nodes: Mapping[int, NodeSnapshot] | None = None,
    faults: frozenset[ProtectionKind] = NONE,
    warnings: frozenset[ProtectionKind] = NONE,
    infos: frozenset[ProtectionKind] = NONE,
    bleeding: Mapping[int, int] | None = None,
) -> BatterySnapshot:
    """A battery: `cells[n]` are the cell voltages of node n; `strings` lists the node ids
    of each series string (default: one string per node); `current` is the system current,
    shared equally by the online strings; `faults`, `warnings` and `infos` are reported by
    every node; `nodes` replaces node reports (missing, tripped, open relay...)."""
    if strings is None:
        strings = [[n] for n in range(len(cells))]
    # Battery-wide flags are reported by every node (the battery's are their union).
    reports = {
        n: node(n, cells[n], faults=faults, warnings=warnings, infos=infos)
        for n in range(len(cells))
    }
    if nodes:
        reports.update(nodes)
    online_strings = [
        s
        for s in strings
        if all(
            reports[n].present and reports[n].relay_closed and reports[n].state is NodeState.ACTIVE
            for n in s
        )
    ]
    share = current / len(online_strings) if online_strings else math.nan
    built = []
    for i, s in enumerate(strings):
        ok = s in online_strings
        blocked = any(not reports[n].present or reports[n].state is NodeState.TRIPPED for n in s)
        missing = [n for n in s if not reports[n].present]
        voltage = math.nan if missing else sum(sum(cells[n]) for n in s)
        built.append(
            StringSnapshot(
                index=i,
                nodes=tuple(s),
                online=ok,
                blocked=blocked,
                reason=f"node {missing[0]} missing" if missing else "",
                voltage=voltage,
                current=share if ok else math.nan,
                capacity_ah=capacity_ah,
                relay_closed=all(reports[n].relay_closed for n in s),
            )
        )
        for n in s:
            if ok:
                reports[n] = replace(reports[n], current=share)
    online = [b for b in built if b.online]
    online_cells = [
        (v, CellRef(n, k + 1)) for b in online for n in b.nodes for k, v in enumerate(cells[n])
    ]
    lo = min(online_cells, key=lambda c: c[0], default=(math.nan, None))
    hi = max(online_cells, key=lambda c: c[0], default=(math.nan, None))
    return BatterySnapshot(
        time=time,
        valid=bool(online) if valid is None else valid,
        data_age=data_age,
        cells_in_series=len(cells[strings[0][0]]) * len(strings[0]),
        voltage=sum(b.voltage for b in online) / len(online) if online else math.nan,
        current=current if online else math.nan,
        min_cell=lo[0],
        max_cell=hi[0],
        min_cell_at=lo[1],
        max_cell_at=hi[1],
        min_temp=temps[0] if online else math.nan,
        max_temp=temps[1] if online else math.nan,
        capacity_ah=capacity_ah * len(online),
        strings=tuple(built),
        faults=frozenset().union(*(r.faults for r in reports.values() if r.present)),
        warnings=frozenset().union(*(r.warnings for r in reports.values() if r.present)),
        infos=frozenset().union(*(r.infos for r in reports.values() if r.present)),
        cell_voltages={n: tuple(v) for n, v in enumerate(cells)},
        bleeding=dict(bleeding or {}),
        nodes=reports,
    )
