"""Home Assistant's rules for MQTT discovery configs, written from its documentation and
source, independent of gateway/outputs/mqtt/discovery.py:

- MQTT discovery (HA docs, "MQTT" integration): topic
  `<discovery_prefix>/<component>/[<node_id>/]<object_id>/config`, node_id and object_id of
  [a-zA-Z0-9_-]; an entity in the device registry needs unique_id and device (identifiers
  or connections); availability payloads default to "online"/"offline".
- homeassistant/components/sensor/const.py: DEVICE_CLASS_UNITS (units a device class
  accepts) and DEVICE_CLASS_STATE_CLASSES (state classes it accepts); enum sensors need
  options and take neither unit nor state class.
- homeassistant/components/binary_sensor/__init__.py: BinarySensorDeviceClass.
- The energy dashboard takes sensors of device class energy with state_class total or
  total_increasing.

Only the device classes this project could use are listed; any other fails the check.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import jinja2

TOPIC = re.compile(
    r"^(?P<prefix>[^/]+)/(?P<component>[a-z_]+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?"
    r"(?P<object_id>[a-zA-Z0-9_-]+)/config$"
)
MEASUREMENT, TOTAL, TOTAL_INCREASING = "measurement", "total", "total_increasing"
ALL_STATE_CLASSES = {MEASUREMENT, TOTAL, TOTAL_INCREASING}
SENSOR_UNITS: dict[str, set[str | None]] = {
    "battery": {"%"},
    "voltage": {"V", "mV", "µV", "kV", "MV"},
    "current": {"A", "mA"},
    "power": {"W", "kW", "MW", "GW", "TW"},
    "energy": {"J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh", "cal", "kcal"},
    "temperature": {"°C", "°F", "K"},
    "duration": {"d", "h", "min", "s", "ms", "µs"},
    "enum": {None},
    "timestamp": {None},
}
SENSOR_STATE_CLASSES: dict[str, set[str]] = {
    "battery": {MEASUREMENT},
    "voltage": {MEASUREMENT},
    "current": {MEASUREMENT},
    "power": {MEASUREMENT},
    "energy": {TOTAL, TOTAL_INCREASING},
    "temperature": {MEASUREMENT},
    "duration": ALL_STATE_CLASSES,
    "enum": set(),
    "timestamp": set(),
}
BINARY_DEVICE_CLASSES = {
    "battery",
    "battery_charging",
    "connectivity",
    "power",
    "problem",
    "running",
    "safety",
}
ENTITY_CATEGORIES = {"config", "diagnostic"}


def problems(topic: str, config: Mapping[str, Any]) -> list[str]:
    """Everything HA would reject or mis-handle in one discovery config."""
    out: list[str] = []
    m = TOPIC.match(topic)
    if m is None:
        return [f"{topic}: not a discovery config topic"]
    component = m["component"]
    for key in ("unique_id", "state_topic", "device", "name"):
        if key not in config:
            out.append(f"{topic}: no {key}")
    device = config.get("device", {})
    if not device.get("identifiers") and not device.get("connections"):
        out.append(f"{topic}: device without identifiers")
    for entry in config.get("availability", []):
        if "topic" not in entry:
            out.append(f"{topic}: availability entry without topic")
    if config.get("availability_mode", "latest") not in ("all", "any", "latest"):
        out.append(f"{topic}: bad availability_mode")
    category = config.get("entity_category")
    if category is not None and category not in ENTITY_CATEGORIES:
        out.append(f"{topic}: entity_category {category!r}")
    device_class = config.get("device_class")
    if component == "sensor":
        unit = config.get("unit_of_measurement")
        state_class = config.get("state_class")
        if device_class is not None:
            if device_class not in SENSOR_UNITS:
                out.append(f"{topic}: sensor device_class {device_class!r} unknown here")
            else:
                if unit not in SENSOR_UNITS[device_class]:
                    out.append(f"{topic}: unit {unit!r} not valid for {device_class}")
                if (
                    state_class is not None
                    and state_class not in SENSOR_STATE_CLASSES[device_class]
                ):
                    out.append(f"{topic}: state_class {state_class} not valid for {device_class}")
        if device_class == "enum" and not config.get("options"):
            out.append(f"{topic}: enum without options")
        if "options" in config and device_class != "enum":
            out.append(f"{topic}: options without device_class enum")
        if state_class is not None and state_class not in ALL_STATE_CLASSES:
            out.append(f"{topic}: state_class {state_class!r}")
    elif component == "binary_sensor":
        if device_class is not None and device_class not in BINARY_DEVICE_CLASSES:
            out.append(f"{topic}: binary_sensor device_class {device_class!r}")
        if "unit_of_measurement" in config or "state_class" in config:
            out.append(f"{topic}: binary_sensor with unit or state_class")
    else:
        out.append(f"{topic}: unexpected component {component}")
    return out


_JINJA = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined)


def render(template: str, payload: bytes) -> str:
    """A value_template rendered as HA does for MQTT (value and value_json)."""
    text = payload.decode()
    return _JINJA.from_string(template).render(value=text, value_json=json.loads(text))


def state_of(config: Mapping[str, Any], payload: bytes) -> str:
    """The entity's state from a payload of its state topic, as HA would show it."""
    value = render(config["value_template"], payload)
    if value == "None":  # a null in the JSON: HA shows the sensor as unknown
        return "unknown"
    if config.get("device_class") == "enum":
        assert value in config["options"], (value, config["options"])
    elif "unit_of_measurement" in config or config.get("state_class"):
        float(value)  # a numeric sensor must render a number
    return value


def available(config: Mapping[str, Any], retained: Mapping[str, bytes]) -> bool:
    """Whether HA would show the entity available, from the retained availability topics."""
    results = []
    for entry in config.get("availability", []):
        payload = retained.get(entry["topic"])
        if payload is None:
            results.append(False)
            continue
        value = (
            render(entry["value_template"], payload)
            if "value_template" in entry
            else payload.decode()
        )
        results.append(value == entry.get("payload_available", "online"))
    mode = config.get("availability_mode", "latest")
    return all(results) if mode == "all" else any(results)
