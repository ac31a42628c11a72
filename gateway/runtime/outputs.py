"""The outputs a configuration asks for (`outputs.*`), ready for Gateway(outputs=...) or
SimSystem.outputs. Each is imported only when configured: a gateway without D-Bus never
loads the D-Bus library."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.config.root import Settings
    from gateway.contracts.topology import TopologySettings
    from gateway.core import GatewayCore
    from gateway.outputs.mqtt.client import MqttOutput
    from gateway.outputs.mqtt.settings import MqttSettings
    from gateway.outputs.seam import Output


def build_outputs(
    settings: Settings, state_file: Path, *, clock: Callable[[], float] = time.monotonic
) -> list[Output]:
    """The configured outputs; `state_file` is the gateway's (outputs keep theirs beside it).
    `clock` is the monotonic clock their rate rules run on (a test moves its own)."""
    outputs: list[Output] = []
    venus = settings.outputs.venus
    if venus is not None:
        from gateway.outputs.venus.service import VenusOutput  # noqa: PLC0415

        bus = settings.buses.battery
        connection = f"CAN {bus.interface or ''} {bus.channel or ''}".strip()
        topology, inverter = settings.battery.topology, settings.inverter
        outputs.append(VenusOutput(venus, topology, inverter, connection, state_file, clock=clock))
    return outputs


class CoreCommands:
    """The MQTT commands (gateway/outputs/mqtt/commands.py) on a GatewayCore that may come
    and go (the simulator restarts it): `core()` is None while it is down."""

    def __init__(self, core: Callable[[], GatewayCore | None], clock: Callable[[], float]):
        self._core = core
        self._clock = clock

    def _running(self) -> GatewayCore:
        core = self._core()
        if core is None:
            raise ValueError("the gateway is not running")
        return core

    def request_full_charge(self) -> str:
        self._running().request_full_charge(self._clock())
        return "full charge requested"

    def request_balancing(self) -> str:
        self._running().request_balancing(self._clock())
        return "balancing run requested: the battery is charged full and held there"


def mqtt_output(
    settings: MqttSettings,
    topology: TopologySettings,
    core: Callable[[], GatewayCore | None],
    clock: Callable[[], float],
) -> MqttOutput:
    """The MQTT output of a gateway whose core `core()` returns (None while it is down)."""
    from gateway.outputs.mqtt.client import MqttOutput  # noqa: PLC0415 -- only when used

    nodes = {n: topology.cells_of(n) for n in topology.nodes}
    target = CoreCommands(core, clock) if settings.commands else None
    return MqttOutput(settings, nodes, target)


class OutputFeed:
    """Hands each tick's result to the outputs (they neither block nor raise), with every
    event once: the service and the simulator feed their outputs through one of these. A
    restarted gateway is a new core whose event count starts from 0 again: followed."""

    def __init__(self, outputs: list[Output]) -> None:
        self.outputs = outputs  # the caller's list: outputs added later are fed too
        self._core = 0  # id() of the core fed last
        self._seen = 0  # its events handed over

    def publish(self, core: GatewayCore) -> None:
        if not self.outputs:
            return
        if id(core) != self._core:
            self._core, self._seen = id(core), 0
        view, self._seen = core.view(self._seen)
        if view is not None:
            for output in self.outputs:
                output.publish(view)
