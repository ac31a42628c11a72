"""A second MQTT client that watches the broker, and the simulator driven in the loop."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import anyio

from gateway.outputs.mqtt.client import MqttOutput
from gateway.outputs.mqtt.settings import MqttSettings
from gateway.runtime.outputs import mqtt_output
from gateway.sim.scenarios import SCENARIOS
from gateway.sim.system import SimSystem
from tests.mqtt.broker import PASSWORD, USER, Broker

WAIT_S = 15.0  # bound on every wait for the broker


@dataclass
class Watcher:
    """Everything seen on the subscribed filters: the newest payload per topic (as a client
    subscribing now would get it, retained or not) and every message in order."""

    latest: dict[str, bytes] = field(default_factory=dict)
    messages: list[aiomqtt.Message] = field(default_factory=list)
    changed: anyio.Event = field(default_factory=anyio.Event)

    def json(self, topic: str) -> Any:
        return json.loads(self.latest[topic])

    def on(self, message: aiomqtt.Message) -> None:
        payload = message.payload
        assert isinstance(payload, bytes | bytearray)
        self.latest[str(message.topic)] = bytes(payload)
        self.messages.append(message)
        self.changed.set()
        self.changed = anyio.Event()

    def retained_configs(self, prefix: str = "homeassistant/") -> dict[str, dict[str, Any]]:
        """The discovery configs a subscriber would get now (empty payload = deleted)."""
        return {t: json.loads(p) for t, p in self.latest.items() if t.startswith(prefix) and p}

    async def wait(self, condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
        with anyio.fail_after(timeout):
            while not condition():
                changed = self.changed
                with anyio.move_on_after(0.05):
                    await changed.wait()
        assert condition(), what


async def watch(
    broker: Broker,
    watcher: Watcher,
    *filters: str,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Subscribe and record until cancelled (start it with tg.start)."""
    async with aiomqtt.Client(
        "127.0.0.1",
        broker.port,
        username=USER,
        password=PASSWORD,
        protocol=aiomqtt.ProtocolVersion.V5,  # to see MQTT 5 properties
    ) as client:
        for f in filters or ("#",):
            await client.subscribe(f, qos=1)
        task_status.started()
        async for message in client.messages:
            watcher.on(message)


def retained_now(broker: Broker, topic: str, timeout: float = 5.0) -> bytes | None:
    """The retained payload of a topic, read synchronously (blocking the event loop, so that
    nothing else in this process can publish meanwhile); None when there is none."""
    import paho.mqtt.client as paho  # noqa: PLC0415

    got: list[bytes] = []
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.username_pw_set(USER, PASSWORD)
    client.on_message = lambda _c, _u, message: got.append(message.payload)
    client.connect("127.0.0.1", broker.port)
    client.subscribe(topic, qos=1)
    deadline = time.monotonic() + timeout
    try:
        while not got and time.monotonic() < deadline:
            client.loop(0.05)
    finally:
        client.disconnect()
    return got[0] if got else None


def mqtt_settings(broker: Broker, tmp: Path, **extra: Any) -> MqttSettings:
    data: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": broker.port,
        "username": USER,
        "password": PASSWORD,
        "system_id": "garage",
        "names_file": str(tmp / "names.json"),
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
    }
    data.update(extra)
    return MqttSettings.model_validate(data)


OPEN: list[SimSystem] = []  # closed after each test (tests/mqtt/conftest.py)


def simulator(settings: MqttSettings, scenario: str = "demo") -> tuple[SimSystem, MqttOutput]:
    """A scenario's system with the MQTT output added (as `moat-bms sim --mqtt` does)."""
    sim, _ = SCENARIOS[scenario].build(0)
    OPEN.append(sim)
    output = mqtt_output(settings, sim.settings.battery.topology, lambda: sim.core, sim.now)
    sim.outputs.append(output)
    return sim, output


@dataclass
class Timing:
    """Wall time of each output.publish call and each whole simulation step, s."""

    publish: list[float] = field(default_factory=list)
    step: list[float] = field(default_factory=list)

    @property
    def worst_publish(self) -> float:
        return max(self.publish, default=math.nan)


def timed(output: MqttOutput, timing: Timing) -> None:
    """Measure every publish call of this output (the tick's side of the seam)."""
    inner = output.publish

    def publish(view: Any) -> None:
        t0 = time.perf_counter()
        inner(view)
        timing.publish.append(time.perf_counter() - t0)

    output.publish = publish  # type: ignore[method-assign]


async def drive(sim: SimSystem, steps: int, timing: Timing | None = None) -> None:
    """Step the simulation, letting the loop (and the output's task) run between steps."""
    for _ in range(steps):
        t0 = time.perf_counter()
        sim.step()
        if timing is not None:
            timing.step.append(time.perf_counter() - t0)
        await anyio.sleep(0)
