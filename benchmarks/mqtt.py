"""6. MQTT: messages per second through a real mosquitto and the broker's CPU, 100 nodes.

Ten gateways of ten 16-cell nodes (100 nodes, 1,600 cells), each with its own MqttOutput
(gateway/outputs/mqtt) and credentials, publish to one Debian mosquitto started here (as the
tests do: tests/mqtt/broker.py); a second client subscribes to everything. First the
discovery burst (every Home Assistant config, retained), then the outputs are fed views as
fast as they send them, with the state and node intervals at one simulated second and the
simulated clock a second ahead per round: each round is a state and ten node messages per
gateway. Figures: messages per second received by the subscriber (end to end), the broker's
and the outputs' CPU per message (the broker's from /proc, 10 ms ticks: measure long enough),
and what the broker's means at the default intervals (state every 5 s, nodes every 30 s).

The views come from one real simulated system (gateway/sim); the benchmark times the output
and the broker, not the simulator.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

from benchmarks.common import Result
from gateway.outputs import BatteryView
from gateway.outputs.mqtt.client import MqttOutput
from gateway.outputs.mqtt.settings import MqttSettings
from gateway.sim.system import SimSetup, SimSystem
from tests.mqtt.broker import PASSWORD, USER, Broker, make_pki, mosquitto_path

GATEWAYS = 10
NODES = 10  # per gateway: 100 in all
CELLS = 16
DEFAULT_STATE_S, DEFAULT_NODE_S = 5.0, 30.0


def run(quick: bool = False) -> Result:
    res = Result("mqtt", "MQTT output through mosquitto, 100 nodes")
    seconds = 2.0 if quick else 6.0
    res.params = {"gateways": GATEWAYS, "nodes": GATEWAYS * NODES, "cells_per_node": CELLS}
    res.params["measured_s"] = seconds
    executable = mosquitto_path()
    if executable is None:
        res.notes.append("skipped: mosquitto is not installed (make mqtt-broker)")
        return res
    logging.getLogger("gateway").setLevel(logging.ERROR)
    view = _view()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        broker = Broker(directory, make_pki(directory), executable)
        broker.start()
        try:
            figures = anyio.run(_measure, broker, USER, PASSWORD, view, seconds, directory)
        finally:
            broker.stop()
    configs, burst_s, rate, broker_s, gateway_s, received = figures
    res.add("discovery burst", configs / burst_s, "configs/s")
    res.add("messages end to end", rate, "messages/s")
    res.add("broker CPU", broker_s * 1e6, "µs per message")
    res.add("outputs' CPU", gateway_s * 1e6, "µs per message")
    at_defaults = GATEWAYS * (1 / DEFAULT_STATE_S + NODES / DEFAULT_NODE_S)
    res.add("broker CPU at default intervals", 100 * at_defaults * broker_s, "% of a core")
    res.notes.append(
        f"{configs} discovery configs in {burst_s:.2f} s; {received} messages received; "
        f"{at_defaults:.1f} messages/s at the default intervals (state {DEFAULT_STATE_S:g} s, "
        f"nodes {DEFAULT_NODE_S:g} s)"
    )
    return res


def _view() -> BatteryView:
    setup = SimSetup(strings=[list(range(NODES))], cells_per_node=CELLS)
    with SimSystem(setup, seed=1, bus="memory") as sim:
        sim.run(5.0)
        assert sim.core is not None
        view, _ = sim.core.view(0)
    assert view is not None
    return dataclasses.replace(view, events=())


# The subscriber runs in a process of its own (paho's network thread), as a real consumer
# would: in this process it would share the event loop with the outputs it measures. It
# prints "CONFIGS DATA" (messages received so far) for every line it reads.
SUBSCRIBER = """
import sys, threading
import paho.mqtt.client as mqtt
counts = [0, 0]
lock = threading.Lock()
def on_message(client, userdata, message):
    with lock:
        counts[0 if message.topic.startswith("homeassistant/") else 1] += 1
def on_connect(client, userdata, flags, reason, properties):
    client.subscribe([("homeassistant/#", 0), ("moat-bms/#", 0)])
    print("ready", flush=True)
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
client.username_pw_set(sys.argv[2], sys.argv[3])
client.on_message, client.on_connect = on_message, on_connect
client.connect("127.0.0.1", int(sys.argv[1]))
client.loop_start()
for line in sys.stdin:
    with lock:
        print(counts[0], counts[1], flush=True)
"""


class Subscriber:
    def __init__(self, port: int, user: str, password: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", SUBSCRIBER, str(port), user, password],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the subscriber did not connect")

    def counts(self) -> tuple[int, int]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        configs, data = self.process.stdout.readline().split()
        return int(configs), int(data)

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


async def _measure(
    broker: Broker, user: str, password: str, view: BatteryView, seconds: float, tmp: Path
) -> tuple[int, float, float, float, float, int]:
    outputs = [
        MqttOutput(
            MqttSettings(
                host="127.0.0.1",
                port=broker.port,
                username=user,
                password=password,
                system_id=f"bench{g}",
                names_file=tmp / f"names{g}.json",
                state_interval_s=1.0,
                node_interval_s=1.0,
            ),
            dict.fromkeys(range(NODES), CELLS),
        )
        for g in range(GATEWAYS)
    ]
    configs = sum(1 for o in outputs for t in o._retained if t.startswith("homeassistant/"))
    subscriber = Subscriber(broker.port, user, password)
    try:
        async with anyio.create_task_group() as tg:
            start = time.perf_counter()
            for output in outputs:
                tg.start_soon(output.run)
            with anyio.fail_after(60):
                while subscriber.counts()[0] < configs:
                    await anyio.sleep(0.01)
            burst_s = time.perf_counter() - start
            await anyio.sleep(0.2)
            cpu0, own0 = broker.cpu_seconds(), time.process_time()
            data0 = subscriber.counts()[1]
            t0 = time.perf_counter()
            t = view.time
            while time.perf_counter() - t0 < seconds:
                t += 1.0
                for output in outputs:
                    output.publish(dataclasses.replace(view, time=t))
                # The next round when this one is out: every payload built is sent (none
                # superseded), so the CPU per message is the cost of one that reaches the
                # broker.
                while any(o._dirty for o in outputs):
                    await anyio.sleep(0)
            wall = time.perf_counter() - t0
            received = subscriber.counts()[1] - data0
            cpu = broker.cpu_seconds() - cpu0
            own = time.process_time() - own0
            tg.cancel_scope.cancel()
    finally:
        subscriber.close()
    n = max(received, 1)
    return configs, burst_s, received / wall, cpu / n, own / n, received
