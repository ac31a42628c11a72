"""`moat-bms sim`: the whole system simulated on python-can's virtual bus.

Battery physics, the real firmware nodes, the real gateway core, a simulated inverter and
the web page, driven by one simulated clock: `--speed 60` runs a minute per second,
`--speed max` as fast as the CPU allows. A live terminal view shows the battery; `--log`
writes every frame of both buses in candump log format. The scenario's checks run at the
end when the whole scenario ran: a failed check exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any, TextIO

import anyio
from pydantic import ValidationError
from rich.console import Console
from rich.live import Live
from rich.logging import RichHandler

from gateway.config.root import ConfigError, Settings, load_config
from gateway.core import GatewayCore
from gateway.outputs import Output
from gateway.outputs.inverter.registry import PROFILES
from gateway.runtime.outputs import build_outputs
from gateway.sim.scenarios import SCENARIOS, Record, Scenario
from gateway.sim.system import BUSES, SimSystem
from gateway.sim.view import ViewInfo, render
from gateway.sim.zoo import MODELS

log = logging.getLogger(__name__)

EXIT_CHECK_FAILED = 1
REDRAW_S = 0.25  # the terminal view, wall seconds
YIELD_S = 0.02  # at --speed max (or behind), let the web page run this often (wall seconds)


def add_subparser(subparsers: Any) -> None:
    scenarios = "\n".join(
        textwrap.fill(
            f"{name}: {s.summary} ({_span(s.duration)})",
            width=88,
            initial_indent="  ",
            subsequent_indent="      ",
        )
        for name, s in sorted(SCENARIOS.items())
    )
    parser = subparsers.add_parser(
        "sim",
        help="run the whole system simulated",
        description="Run nodes, gateway, inverter and web page simulated on python-can's "
        "virtual bus, with a live view in the terminal.",
        epilog=f"scenarios:\n{scenarios}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenario", default="demo", choices=sorted(SCENARIOS), metavar="NAME")
    parser.add_argument(
        "--config",
        type=Path,
        help="simulate your own battery: the topology, chemistry, capacity, strategy, SoC "
        "and inverter settings of this gateway configuration file (buses, web and state "
        "stay the simulator's)",
    )
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        metavar="NAME",
        help="the inverter profile the gateway speaks and the simulated inverter reads "
        "(default: the configuration's, else pylontech): " + ", ".join(sorted(PROFILES)),
    )
    parser.add_argument(
        "--inverter",
        choices=list(MODELS),
        metavar="MODEL",
        help="how the simulated inverter follows the limits, a model of the inverter zoo "
        "(default: the scenario's): " + ", ".join(MODELS),
    )
    parser.add_argument(
        "--duration", type=float, help="simulated seconds (default: the whole scenario)"
    )
    parser.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        help="simulated seconds per wall second, or 'max' (default 1: real time)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same run)")
    parser.add_argument(
        "--bus",
        choices=sorted(BUSES),
        default="virtual",
        help="python-can's virtual bus (default) or the in-memory bus: the same frames at "
        "about half the cost per step, for long runs at --speed max",
    )
    parser.add_argument("--log", type=Path, help="write every frame of both buses here (candump)")
    parser.add_argument("--no-web", action="store_true", help="do not serve the web page")
    parser.add_argument("--port", type=int, default=8080, help="web page port (default 8080)")
    parser.add_argument(
        "--no-view", action="store_true", help="no live view: a status line per simulated hour"
    )
    parser.add_argument(
        "--mqtt",
        metavar="URL",
        help="publish to this MQTT broker: mqtt://[user:password@]host[:port] (mqtts:// for "
        "TLS), with Home Assistant discovery (docs/mqtt.md)",
    )
    parser.add_argument(
        "--mqtt-id", default="sim", help="the simulated gateway's system id in topics (sim)"
    )
    parser.add_argument(
        "--mqtt-commands",
        action="store_true",
        help="accept the MQTT commands (full_charge, balance, set_name)",
    )
    parser.add_argument(
        "--state-dir", type=Path, help="where the gateway keeps its state (default: a temp dir)"
    )
    parser.add_argument(
        "--venus",
        metavar="ADDRESS",
        help="also serve the battery as a Venus OS D-Bus service (docs/venus.md) on this "
        "D-Bus: system, session or an address such as unix:path=/tmp/bus",
    )
    parser.set_defaults(func=run)


def _span(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 60:g} min"


def _speed(text: str) -> float:
    if text == "max":
        return math.inf
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or 'max': {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0: {text!r}")
    return value


def add_mqtt(sim: SimSystem, url: str, system_id: str, commands: bool, state_dir: Path) -> None:
    """Publish the simulated gateway to the broker at `url` (ValueError when it is wrong)."""
    from gateway.outputs.mqtt.settings import settings_from_url  # noqa: PLC0415
    from gateway.runtime.outputs import mqtt_output  # noqa: PLC0415

    try:
        mqtt = settings_from_url(
            url,
            system_id=system_id,
            commands=commands,
            names_file=str(state_dir / "mqtt-names.json"),
        )
    except ValidationError as exc:
        raise ValueError("; ".join(e["msg"] for e in exc.errors())) from None
    sim.outputs.append(mqtt_output(mqtt, sim.settings.battery.topology, lambda: sim.core, sim.now))


class SimHost:
    """The simulation as the web page's Host: while a scenario has the gateway killed, the
    page keeps showing the last state it had."""

    def __init__(self, sim: SimSystem) -> None:
        self.sim = sim
        self._core = sim.core

    @property
    def core(self) -> GatewayCore:
        if self.sim.core is not None:
            self._core = self.sim.core
        assert self._core is not None
        return self._core

    @property
    def settings(self) -> Settings:
        return self.sim.settings

    @property
    def config_path(self) -> Path | None:
        return None

    @property
    def outputs(self) -> list[Output]:
        return self.sim.outputs

    def clock(self) -> float:
        return self.sim.now()


def run(args: argparse.Namespace) -> int:
    scenario = SCENARIOS[args.scenario]
    duration = scenario.duration if args.duration is None else args.duration
    if duration <= 0:
        print(f"moat-bms sim: --duration must be above 0, got {duration}", file=sys.stderr)
        return 2
    config = None
    if args.config is not None:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(exc.report(), file=sys.stderr)
            return 2
    view = not args.no_view and sys.stdout.isatty()
    console = Console()
    # The view (or the hourly status line) shows the events; the log keeps to warnings
    # (the web token among them) unless -v asks for more.
    level = logging.WARNING - 10 * min(args.verbose, 2) if args.verbose else logging.WARNING
    if view:
        # Log records print above the live view instead of tearing it.
        # The handler shows time and level itself: the format adds only the logger's name
        # (basicConfig's default would print the level a second time).
        logging.basicConfig(
            level=level,
            format="%(name)s: %(message)s",
            handlers=[RichHandler(console=console, show_path=False)],
            force=True,
        )
    else:
        logging.getLogger().setLevel(level)
    with contextlib.ExitStack() as stack:
        state_dir = args.state_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        log_file: TextIO | None = None
        if args.log is not None:
            log_file = stack.enter_context(args.log.open("w", encoding="ascii"))
        web = {
            "enabled": not args.no_web,
            "port": args.port,
            "token_file": str(state_dir / "token"),
        }
        gateway: dict[str, Any] = {"web": web}
        if args.profile is not None:
            gateway["inverter"] = {"profile": args.profile}
        if args.venus is not None:
            gateway["outputs"] = {"venus": {"bus": args.venus}}
        try:
            sim, record = scenario.build(
                args.seed,
                gateway=gateway,
                config=config,
                inverter=args.inverter,
                log=log_file,
                state_dir=state_dir,
                bus=args.bus,
            )
        except (ValueError, ConfigError) as exc:
            print(f"moat-bms sim: {args.config}: {exc}", file=sys.stderr)
            return 2
        stack.callback(sim.close)
        sim.outputs.extend(build_outputs(sim.settings, state_dir / "state.json"))
        if args.mqtt:
            try:
                add_mqtt(sim, args.mqtt, args.mqtt_id, args.mqtt_commands, state_dir)
            except ValueError as exc:
                print(f"moat-bms sim: --mqtt: {exc}", file=sys.stderr)
                return 2
        runner = Runner(sim, scenario, record, args, console, view)
        try:
            anyio.run(runner.main, duration)
        except KeyboardInterrupt:
            console.print(f"stopped by the user at +{sim.t:.0f} s (simulated)")
            return 0
        return runner.finish(duration)


class Runner:
    """Steps the simulation in an anyio loop beside the web page."""

    def __init__(
        self,
        sim: SimSystem,
        scenario: Scenario,
        record: Record,
        args: argparse.Namespace,
        console: Console,
        view: bool,
    ) -> None:
        self.sim = sim
        self.scenario = scenario
        self.record = record
        self.args = args
        self.console = console
        self.view = view
        speed = "max" if math.isinf(args.speed) else f"x{args.speed:g}"
        self.info = ViewInfo(scenario.name, args.seed, speed)

    async def main(self, duration: float) -> None:
        async with anyio.create_task_group() as tg:
            if not self.args.no_web:
                from gateway.web.server import serve  # noqa: PLC0415 -- only when served

                self.info.url = await tg.start(serve, SimHost(self.sim))
                if not self.view:
                    print(f"web page: {self.info.url}", flush=True)
            for output in self.sim.outputs:
                tg.start_soon(output.run)
            if self.view:
                with Live(
                    render(self.sim, self.info),
                    console=self.console,
                    auto_refresh=False,
                    screen=False,
                ) as live:
                    await self.drive(duration, live)
            else:
                await self.drive(duration, None)
            tg.cancel_scope.cancel()

    async def drive(self, duration: float, live: Live | None) -> None:
        sim, speed = self.sim, self.args.speed
        end = sim.t + duration
        wall0, sim0 = time.monotonic(), sim.t
        next_draw = next_yield = 0.0
        next_line = sim.t
        while sim.t < end - 1e-9:
            sim.step()
            now = time.monotonic()
            ahead = -math.inf if math.isinf(speed) else (sim.t - sim0) / speed - (now - wall0)
            if ahead > 0:
                await anyio.sleep(ahead)
            elif now >= next_yield:
                # At --speed max, or behind the wall clock on a busy machine: the web page
                # and the outputs (MQTT) still get their turn.
                next_yield = now + YIELD_S
                await anyio.sleep(0)
            if live is not None and now >= next_draw:
                next_draw = now + REDRAW_S
                live.update(render(sim, self.info), refresh=True)
            elif live is None and sim.t >= next_line:
                next_line += 3600.0
                print(self.status_line(), flush=True)
        if live is not None:
            live.update(render(sim, self.info), refresh=True)

    def status_line(self) -> str:
        sim = self.sim
        core = sim.core
        limits = sim.inverter.limits
        parts = [f"+{sim.t / 3600:6.2f} h"]
        if core is None:
            parts.append("gateway down")
        else:
            parts.append(
                f"SoC {core.soc_state.soc:5.1f} % (truth {100 * sim.battery.true_soc():5.1f})"
            )
            if core.decision is not None:
                parts.append(f"{core.decision.phase.value:<11}")
        if limits is not None:
            parts.append(
                f"CVL {limits.charge_voltage_limit:.1f} V CCL {limits.charge_current_limit:.0f} A"
                f" DCL {limits.discharge_current_limit:.0f} A"
            )
        parts.append(f"I {sim.inverter_current:+.1f} A")
        return "  ".join(parts)

    def finish(self, duration: float) -> int:
        sim, scenario = self.sim, self.scenario
        if not self.view:
            print(self.status_line())
        truth = sim.truth
        print(
            f"simulated {sim.t:.0f} s; highest cell {truth.max_cell_v:.3f} V, lowest "
            f"{truth.min_cell_v:.3f} V; {truth.charge_ah:.1f} Ah in, "
            f"{truth.discharge_ah:.1f} Ah out"
        )
        if self.args.log is not None:
            print(f"frames of both buses in {self.args.log} (candump log format)")
        if duration < scenario.duration:
            print(
                f"checks of '{scenario.name}' skipped: "
                f"they need the whole {scenario.duration:.0f} s"
            )
            return 0
        problems = scenario.check(sim, self.record)
        if problems:
            for problem in problems:
                print(f"check failed: {problem}", file=sys.stderr)
            return EXIT_CHECK_FAILED
        print(f"checks of '{scenario.name}' passed")
        return 0
