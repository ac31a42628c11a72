"""`moat-bms run`: the gateway on real (or vcan, or virtual) CAN buses."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from gateway.cli.config import EXIT_INVALID
from gateway.cli.options import add_bus_options, bus_overrides, warn_if_virtual
from gateway.config.root import ConfigError, Settings, load_config, validate

if TYPE_CHECKING:
    from gateway.runtime.service import Gateway

log = logging.getLogger(__name__)


def add_subparser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the gateway",
        description="Run the gateway: read the battery bus, drive the nodes, talk to the "
        "inverter, serve the web page. Stops cleanly (state saved) on Ctrl-C or SIGTERM.",
    )
    parser.add_argument("--config", type=Path, help="YAML configuration file (default: defaults)")
    add_bus_options(parser, "battery bus (overrides buses.battery)")
    parser.add_argument("--no-web", action="store_true", help="do not serve the web page")
    parser.set_defaults(func=run)


def settings_from(args: argparse.Namespace) -> Settings:
    """The configuration file's settings with the command line's bus options applied."""
    base = load_config(args.config) if args.config else validate({})
    # Only what the file states: a default is not a value the user set (pack-rating checks).
    data = base.model_dump(mode="json", exclude_none=True, exclude_unset=True)
    battery = base.buses.battery.model_dump(mode="json", exclude_none=True)
    battery.update(bus_overrides(args))
    data.setdefault("buses", {})["battery"] = battery
    return validate(data, str(args.config or "command line"))


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return EXIT_INVALID
    mqtt = settings.outputs.mqtt
    if mqtt is not None:
        from gateway.outputs.mqtt.settings import check_files  # noqa: PLC0415

        try:
            check_files(mqtt)
        except ValueError as exc:
            print(
                f"{args.config or 'command line'}: invalid configuration\n  {exc}", file=sys.stderr
            )
            return EXIT_INVALID
    from gateway.runtime.service import Gateway  # noqa: PLC0415 -- keeps `--help` fast

    warn_if_virtual("moat-bms run", settings.buses.battery.bus_kwargs())
    if settings.buses.inverter is not None:
        warn_if_virtual("moat-bms run", settings.buses.inverter.bus_kwargs())

    web = serve_web if settings.web.enabled and not args.no_web else None
    from gateway.runtime.outputs import build_outputs  # noqa: PLC0415

    try:
        outputs = build_outputs(settings, settings.persistence.state_file)
        gateway = Gateway(settings, config_path=args.config, outputs=outputs)
    except ValueError as exc:  # the validator should have said so: never a traceback
        print(f"{args.config or 'command line'}: invalid configuration\n  {exc}", file=sys.stderr)
        return EXIT_INVALID
    if mqtt is not None:
        from gateway.runtime.outputs import mqtt_output  # noqa: PLC0415 -- only when used

        gateway.outputs.append(
            mqtt_output(mqtt, settings.battery.topology, lambda: gateway.core, gateway.clock)
        )
    anyio.run(gateway.run, web)  # SIGINT/SIGTERM end it cleanly, state saved
    return 0


async def serve_web(gateway: Gateway) -> None:
    """The web page, its stack imported in a worker thread once the gateway runs: the
    import takes a good part of a second on a small computer, and meanwhile the event loop
    already ticks and the inverter has its first frames."""
    server = await anyio.to_thread.run_sync(importlib.import_module, "gateway.web.server")
    await server.serve(gateway)
