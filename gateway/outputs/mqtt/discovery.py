"""Home Assistant MQTT discovery configs: pure, from the topology and the topic tree.

Follows Home Assistant's "MQTT" integration documentation (section "MQTT Discovery": the
topic `<discovery_prefix>/<component>/[<node_id>/]<object_id>/config`, retained, a JSON
config with unique_id and device; an empty retained payload deletes the entity) and the
sensor rules of homeassistant/components/sensor/const.py (DEVICE_CLASS_UNITS,
DEVICE_CLASS_STATE_CLASSES: which units and state classes each device class accepts; energy
counters must be `total_increasing` in Wh/kWh to appear in the energy dashboard).

One HA device per gateway and one per node, the nodes linked to the gateway by via_device.
Every entity is available only while the gateway's status topic says "online" (the last
will says "offline"); a node's entities also need the node to be present.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway import __version__
from gateway.contracts.decision import Alarm, Phase
from gateway.contracts.snapshot import NodeState
from gateway.outputs.mqtt.topics import Topics

SENSOR, BINARY_SENSOR = "sensor", "binary_sensor"
DIAGNOSTIC = "diagnostic"
ORIGIN = {"name": "moat-bms", "sw_version": __version__}
# Alarms about the battery's safety limits; the others are problems of the installation.
SAFETY_ALARMS = frozenset(
    {
        Alarm.HIGH_CELL_VOLTAGE,
        Alarm.LOW_CELL_VOLTAGE,
        Alarm.HIGH_TEMPERATURE,
        Alarm.LOW_TEMPERATURE,
        Alarm.HIGH_CHARGE_CURRENT,
        Alarm.HIGH_DISCHARGE_CURRENT,
    }
)


@dataclass(frozen=True, slots=True)
class Sensor:
    """One numeric (or enum) sensor read from a JSON key of a state topic."""

    object_id: str
    name: str
    key: str  # Jinja path below value_json
    unit: str | None = None
    device_class: str | None = None
    state_class: str | None = "measurement"
    precision: int | None = None
    category: str | None = None
    options: tuple[str, ...] = ()


BATTERY_SENSORS = (
    Sensor("soc", "State of charge", "soc_pct", "%", "battery", precision=1),
    Sensor("soh", "State of health", "soh_pct", "%", precision=1, category=DIAGNOSTIC),
    Sensor("voltage", "Voltage", "voltage_v", "V", "voltage", precision=2),
    Sensor("current", "Current", "current_a", "A", "current", precision=1),
    Sensor("power", "Power", "power_w", "W", "power", precision=0),
    Sensor(
        "energy_charged",
        "Energy charged",
        "energy_charged_kwh",
        "kWh",
        "energy",
        "total_increasing",
        3,
    ),
    Sensor(
        "energy_discharged",
        "Energy discharged",
        "energy_discharged_kwh",
        "kWh",
        "energy",
        "total_increasing",
        3,
    ),
    Sensor("cycles", "Cycles", "cycles", None, None, "total_increasing", 2, DIAGNOSTIC),
    Sensor("cell_min", "Lowest cell", "cell_min_v", "V", "voltage", precision=3),
    Sensor("cell_max", "Highest cell", "cell_max_v", "V", "voltage", precision=3),
    Sensor("cell_spread", "Cell spread", "cell_spread_v", "V", "voltage", precision=3),
    Sensor("temp_min", "Lowest temperature", "temp_min_c", "°C", "temperature", precision=1),
    Sensor("temp_max", "Highest temperature", "temp_max_c", "°C", "temperature", precision=1),
    Sensor(
        "charge_voltage_limit",
        "Charge voltage limit",
        "limits.charge_voltage_v",
        "V",
        "voltage",
        precision=2,
        category=DIAGNOSTIC,
    ),
    Sensor(
        "charge_current_limit",
        "Charge current limit",
        "limits.charge_current_a",
        "A",
        "current",
        precision=1,
    ),
    Sensor(
        "discharge_current_limit",
        "Discharge current limit",
        "limits.discharge_current_a",
        "A",
        "current",
        precision=1,
    ),
    Sensor("capacity", "Capacity online", "capacity_ah", "Ah", precision=0, category=DIAGNOSTIC),
    Sensor("strings_online", "Strings online", "strings_online", precision=0, category=DIAGNOSTIC),
    Sensor(
        "phase",
        "Charge phase",
        "phase",
        device_class="enum",
        state_class=None,
        options=tuple(p.value for p in Phase),
    ),
)

NODE_SENSORS = (
    Sensor("voltage", "Voltage", "voltage_v", "V", "voltage", precision=2),
    Sensor("current", "Current", "current_a", "A", "current", precision=1),
    Sensor("cell_min", "Lowest cell", "cell_min_v", "V", "voltage", precision=3),
    Sensor("cell_max", "Highest cell", "cell_max_v", "V", "voltage", precision=3),
    Sensor(
        "state",
        "State",
        "state",
        device_class="enum",
        state_class=None,
        options=tuple(s.name.lower() for s in NodeState),
        category=DIAGNOSTIC,
    ),
)


@dataclass(frozen=True, slots=True)
class Names:
    """Display names: the gateway's and any node's that was given one."""

    gateway: str
    nodes: Mapping[int, str]

    def node(self, node: int) -> str:
        return self.nodes.get(node) or f"{self.gateway} node {node}"


def gateway_device(topics: Topics, names: Names) -> dict[str, Any]:
    return {
        "identifiers": [f"moat-bms-{topics.system_id}"],
        "name": names.gateway,
        "manufacturer": "moat-bms",
        "model": "gateway",
        "sw_version": __version__,
    }


def node_device(topics: Topics, names: Names, node: int) -> dict[str, Any]:
    return {
        "identifiers": [f"moat-bms-{topics.system_id}-node{node}"],
        "name": names.node(node),
        "manufacturer": "moat-bms",
        "model": "battery node",
        "via_device": f"moat-bms-{topics.system_id}",
    }


def _value(key: str) -> str:
    return "{{ value_json." + key + " }}"


def _sensor(
    topics: Topics,
    sensor: Sensor,
    object_id: str,
    state_topic: str,
    device: dict[str, Any],
    availability: list[dict[str, str]],
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": sensor.name,
        "unique_id": f"moat_bms_{topics.system_id}_{object_id}",
        "state_topic": state_topic,
        "value_template": _value(sensor.key),
        "availability": availability,
        "availability_mode": "all",
        "device": device,
        "origin": ORIGIN,
    }
    optional = {
        "unit_of_measurement": sensor.unit,
        "device_class": sensor.device_class,
        "state_class": sensor.state_class,
        "suggested_display_precision": sensor.precision,
        "entity_category": sensor.category,
    }
    config.update({k: v for k, v in optional.items() if v is not None})
    if sensor.options:
        config["options"] = list(sensor.options)
    return config


def _binary(
    topics: Topics,
    object_id: str,
    name: str,
    state_topic: str,
    test: str,
    device_class: str | None,
    device: dict[str, Any],
    availability: list[dict[str, str]],
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": name,
        "unique_id": f"moat_bms_{topics.system_id}_{object_id}",
        "state_topic": state_topic,
        "value_template": "{{ 'ON' if " + test + " else 'OFF' }}",
        "payload_on": "ON",
        "payload_off": "OFF",
        "availability": availability,
        "availability_mode": "all",
        "device": device,
        "origin": ORIGIN,
    }
    if device_class is not None:
        config["device_class"] = device_class
    return config


Config = tuple[str, dict[str, Any]]


def gateway_configs(topics: Topics, names: Names) -> list[Config]:
    """The gateway device: battery sensors and one binary sensor per alarm."""
    device = gateway_device(topics, names)
    availability = [{"topic": topics.status}]
    configs: list[Config] = [
        (
            topics.discovery(SENSOR, s.object_id),
            _sensor(topics, s, s.object_id, topics.state, device, availability),
        )
        for s in BATTERY_SENSORS
    ]
    for alarm in Alarm:
        object_id = f"alarm_{alarm.value}"
        name = "Alarm " + alarm.value.replace("_", " ")
        device_class = "safety" if alarm in SAFETY_ALARMS else "problem"
        test = f"'{alarm.value}' in value_json.alarms"
        configs.append(
            (
                topics.discovery(BINARY_SENSOR, object_id),
                _binary(
                    topics, object_id, name, topics.state, test, device_class, device, availability
                ),
            )
        )
    return configs


def node_configs(topics: Topics, names: Names, node: int, cells: int) -> list[Config]:
    """One node's device: pack sensors, relay and trip, and a sensor per cell (cells > 0)."""
    device = node_device(topics, names, node)
    state_topic = topics.node(node)
    gateway_up = {"topic": topics.status}
    present = {
        "topic": state_topic,
        "value_template": "{{ 'online' if value_json.present else 'offline' }}",
    }
    configs: list[Config] = []
    for s in NODE_SENSORS:
        object_id = f"node{node}_{s.object_id}"
        # The node's state stays readable while it is missing: it says why.
        availability = [gateway_up] if s.object_id == "state" else [gateway_up, present]
        configs.append(
            (
                topics.discovery(SENSOR, object_id),
                _sensor(topics, s, object_id, state_topic, device, availability),
            )
        )
    for cell in range(1, cells + 1):
        object_id = f"node{node}_cell{cell}"
        sensor = Sensor(
            object_id, f"Cell {cell}", f"cells_v[{cell - 1}]", "V", "voltage", precision=3
        )
        configs.append(
            (
                topics.discovery(SENSOR, object_id),
                _sensor(topics, sensor, object_id, state_topic, device, [gateway_up, present]),
            )
        )
    for object_id, name, test, device_class in (
        (f"node{node}_relay", "Relay closed", "value_json.relay_closed", None),
        (f"node{node}_tripped", "Tripped", "value_json.state == 'tripped'", "problem"),
    ):
        configs.append(
            (
                topics.discovery(BINARY_SENSOR, object_id),
                _binary(
                    topics,
                    object_id,
                    name,
                    state_topic,
                    test,
                    device_class,
                    device,
                    [gateway_up, present],
                ),
            )
        )
    return configs


def all_configs(
    topics: Topics, names: Names, nodes: Mapping[int, int], per_cell: bool
) -> list[Config]:
    """Every discovery config of the gateway; nodes maps node id -> its cell count."""
    configs = gateway_configs(topics, names)
    for node, cells in sorted(nodes.items()):
        configs += node_configs(topics, names, node, cells if per_cell else 0)
    return configs


def stale(existing: Iterable[str], current: Iterable[str]) -> list[str]:
    """Config topics found on the broker that this gateway no longer has (a removed node,
    fewer cells): each gets an empty retained message, which deletes the entity."""
    return sorted(set(existing) - set(current))


NODE_OBJECT = re.compile(r"^node(\d+)_")


def node_of(config_topic: str) -> int | None:
    """The node a config topic belongs to (None for the gateway's own entities)."""
    parts = config_topic.split("/")
    if len(parts) < 2:
        return None
    match = NODE_OBJECT.match(parts[-2])
    return int(match.group(1)) if match else None
