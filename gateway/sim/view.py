"""The live terminal view of a simulation (`moat-bms sim`): what the inverter is told, the
battery as the gateway sees it next to the simulator's truth, every node and the latest
events. A pure function of the SimSystem: rich renders it, the caller decides how often."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from gateway.contracts.snapshot import ProtectionKind
from gateway.sim.system import SimSystem

# NodeState.State values (dbc/moat_bms.dbc), as the view names them.
NODE_STATES = {0: "init", 1: "standby", 2: "active", 3: "TRIPPED", 4: "CONFIG ERROR"}
EVENTS_SHOWN = 6


@dataclass
class ViewInfo:
    """What the view shows besides the system itself."""

    scenario: str
    seed: int
    speed: str  # "x60", "max"
    url: str | None = None  # the web page, when served


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 86400}d {s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def _v(value: float | None, unit: str, digits: int = 1) -> str:
    if value is None or math.isnan(value):
        return "\N{EN DASH}"
    return f"{value:.{digits}f} {unit}"


def _flags(bits: int) -> str:
    kinds = list(ProtectionKind)
    return ", ".join(kinds[i].value for i in range(len(kinds)) if bits >> i & 1)


def render(sim: SimSystem, info: ViewInfo) -> RenderableType:
    clock = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(sim.now()))
    title = Text.assemble(
        ("moat-bms simulation ", "bold"),
        f"scenario {info.scenario}, seed {info.seed}, speed {info.speed}   ",
        (f"{clock} UTC", "cyan"),
        f"  (+{_hms(sim.t)})",
    )
    return Group(title, _top(sim), _nodes(sim), _events(sim, info))


def _top(sim: SimSystem) -> Table:
    inv = sim.inverter
    limits = inv.limits
    told = Table(title="the inverter is told", show_header=False, box=None, expand=True)
    told.add_column(style="dim")
    told.add_column()
    if limits is None:
        told.add_row("limits", Text("nothing received", style="red"))
    else:
        told.add_row("charge voltage", _v(limits.charge_voltage_limit, "V"))
        told.add_row("charge current", _v(limits.charge_current_limit, "A"))
        told.add_row("discharge current", _v(limits.discharge_current_limit, "A"))
        told.add_row("discharge voltage", _v(limits.discharge_voltage_limit, "V"))
    flags = inv.flags
    if flags is not None:
        charge = "charge" if flags.charge_enable == 1 else "[red]no charge[/]"
        discharge = "discharge" if flags.discharge_enable == 1 else "[red]no discharge[/]"
        told.add_row("enabled", f"{charge}, {discharge}")
    told.add_row("inverter", inv.status)

    core = sim.core
    battery = Table(title="the battery", show_header=False, box=None, expand=True)
    battery.add_column(style="dim")
    battery.add_column()
    if core is None:
        battery.add_row("gateway", Text("down (killed by the scenario)", style="bold red"))
    else:
        soc = core.soc_state
        battery.add_row(
            "SoC",
            f"{soc.soc:.1f} % (truth {100 * sim.battery.true_soc():.1f} %)"
            + ("" if soc.trusted else " [yellow]not yet calibrated[/]"),
        )
        decision = core.decision
        if decision is not None:
            battery.add_row("phase", Text(decision.phase.value, style="bold"))
            alarms = ", ".join(f"{a.value} ({s.value})" for a, s in decision.alarms.items())
            battery.add_row("alarms", Text(alarms or "none", style="red" if alarms else "green"))
    battery.add_row("voltage", _v(sim.battery.bus_voltage, "V", 2))
    battery.add_row("current", _v(sim.inverter_current, "A") + " (+ charges)")
    pv, load = sim.setup.pv(sim.t), sim.setup.load(sim.t)
    battery.add_row("sun / house", f"{pv:.0f} W / {load:.0f} W, grid {round(inv.grid_w)} W")

    top = Table.grid(expand=True)
    top.add_column(ratio=1)
    top.add_column(ratio=1)
    top.add_row(Panel(told), Panel(battery))
    return top


def _nodes(sim: SimSystem) -> Table:
    table = Table(title="nodes", expand=True)
    for name in ("node", "string", "state", "relay", "cells V min..max", "spread", "temp max"):
        table.add_column(name)
    table.add_column("balancing")
    table.add_column("faults / warnings", ratio=1)
    string_of = {n: i for i, s in enumerate(sim.setup.strings) for n in s}
    for node_id in sorted(sim.nodes):
        node = sim.nodes[node_id].node
        pack = sim.battery.packs[node_id]
        cells = pack.cell_voltages()
        temps = [t for t in pack.temperatures() if t is not None]
        state = NODE_STATES.get(int(node.state), str(node.state))
        faults, warnings = _flags(node.faults), _flags(node.warnings)
        alarm = Text(faults, style="bold red") if faults else Text(warnings, style="yellow")
        table.add_row(
            str(node_id),
            str(string_of.get(node_id, "?")),
            Text(state, style="red" if node.faults else ""),
            Text("closed", style="green") if node.relay_closed else Text("open", style="red"),
            f"{min(cells):.3f}..{max(cells):.3f}",
            f"{1000 * (max(cells) - min(cells)):.0f} mV",
            _v(max(temps) if temps else None, "°C"),
            str(bin(pack.balance_mask).count("1")),
            alarm,
        )
    return table


def _events(sim: SimSystem, info: ViewInfo) -> RenderableType:
    lines = Text()
    core = sim.core
    if core is not None:
        for event in list(core.events.events)[-EVENTS_SHOWN:]:
            stamp = time.strftime("%H:%M:%S", time.gmtime(event.time))
            node = "" if event.node is None else f"node {event.node} "
            lines.append(f"{stamp} {event.kind.value}: {node}{event.message}\n")
    if not lines:
        lines.append("no events yet\n", style="dim")
    footer = "Ctrl-C stops."
    if info.url:
        footer = f"web page: {info.url}   " + footer
    lines.append(footer, style="bold")
    return Panel(lines, title="events")
