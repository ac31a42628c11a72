"""The MQTT output's pure parts without a broker: discovery by Home Assistant's rules,
payloads, intervals and energy on simulated time, commands, settings, the bounded queue."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config.root import ConfigError, validate
from gateway.contracts.decision import Alarm, Phase, Severity
from gateway.outputs import BatteryView
from gateway.outputs.mqtt import commands as cmd
from gateway.outputs.mqtt import discovery, payloads
from gateway.outputs.mqtt.client import MqttOutput
from gateway.outputs.mqtt.publisher import MAX_STEP_S, Publisher, energy_from_state
from gateway.outputs.mqtt.settings import MqttSettings, host_system_id, settings_from_url
from gateway.outputs.mqtt.topics import Topics
from gateway.record.events import Event, EventKind
from gateway.sim.scenarios import SCENARIOS
from tests.mqtt import hass

TOPICS = Topics("moat-bms", "garage")
NAMES = discovery.Names("Garage", {})


@pytest.fixture(scope="module")
def view() -> Iterator[BatteryView]:
    """A real view: the demo system after a few simulated seconds."""
    sim, _ = SCENARIOS["demo"].build(0)
    try:
        for _ in range(10):
            sim.step()
        assert sim.core is not None
        v, _ = sim.core.view(0)
        assert v is not None
        yield v
    finally:
        sim.close()


def at(view: BatteryView, t: float, **decision: object) -> BatteryView:
    changed = dataclasses.replace(view.decision, **decision) if decision else view.decision
    return dataclasses.replace(view, time=t, decision=changed, events=())


# ------------------------------------------------------------------ discovery


@pytest.mark.parametrize("cells", [True, False])
def test_discovery_configs_follow_home_assistants_rules(cells: bool) -> None:
    configs = discovery.all_configs(TOPICS, NAMES, {0: 16, 1: 8}, cells)
    assert [p for t, c in configs for p in hass.problems(t, c)] == []
    topics = [t for t, _ in configs]
    assert len(set(topics)) == len(topics)
    ids = [c["unique_id"] for _, c in configs]
    assert len(set(ids)) == len(ids)
    cell_sensors = [t for t in topics if re.search(r"_cell\d+/", t)]
    assert len(cell_sensors) == (24 if cells else 0)
    energy = [c for _, c in configs if c.get("device_class") == "energy"]
    assert len(energy) == 2
    assert all(c["state_class"] == "total_increasing" for c in energy)


def test_every_entity_renders_from_a_real_payload(view: BatteryView) -> None:
    state = payloads.encode(payloads.state(view, payloads.Energy(1.5, 2.25)))
    nodes = {
        TOPICS.node(n): payloads.encode(payloads.node(view, ns, True))
        for n, ns in view.snapshot.nodes.items()
    }
    retained = {TOPICS.state: state, TOPICS.status: b"online", **nodes}
    cells = {n: len(view.snapshot.cell_voltages[n]) for n in view.snapshot.nodes}
    for _, config in discovery.all_configs(TOPICS, NAMES, cells, True):
        hass.state_of(config, retained[config["state_topic"]])
        assert hass.available(config, retained)
    charged = next(
        c for _, c in discovery.gateway_configs(TOPICS, NAMES) if c["unique_id"].endswith("charged")
    )
    assert hass.state_of(charged, state) == "1.5"


def test_a_missing_node_is_unavailable_and_its_cells_unknown(view: BatteryView) -> None:
    ns = dataclasses.replace(view.snapshot.nodes[1], present=False)
    payload = payloads.node(view, ns, True)
    assert payload["cells_v"] == [None] * 8 and payload["cell_min_v"] is None
    body = payloads.encode(payload)
    retained = {TOPICS.status: b"online", TOPICS.node(1): body}
    configs = dict(discovery.node_configs(TOPICS, NAMES, 1, 8))
    cell = configs["homeassistant/sensor/garage/node1_cell1/config"]
    assert hass.state_of(cell, body) == "unknown"
    assert not hass.available(cell, retained)
    # The node's state stays available: it says why the rest is not.
    assert hass.available(configs["homeassistant/sensor/garage/node1_state/config"], retained)


def test_alarms_become_binary_sensors(view: BatteryView) -> None:
    alarmed = at(view, view.time, alarms={Alarm.NODE_MISSING: Severity.ALARM})
    body = payloads.encode(payloads.state(alarmed, payloads.Energy()))
    configs = dict(discovery.gateway_configs(TOPICS, NAMES))
    missing = configs["homeassistant/binary_sensor/garage/alarm_node_missing/config"]
    high = configs["homeassistant/binary_sensor/garage/alarm_high_cell_voltage/config"]
    assert (missing["device_class"], high["device_class"]) == ("problem", "safety")
    assert hass.state_of(missing, body) == "ON"
    assert hass.state_of(high, body) == "OFF"


def test_stale_configs_and_the_node_they_belong_to() -> None:
    now = [t for t, _ in discovery.all_configs(TOPICS, NAMES, {0: 4}, True)]
    before = [t for t, _ in discovery.all_configs(TOPICS, NAMES, {0: 8, 5: 4}, True)]
    gone = discovery.stale(before, now)
    assert {discovery.node_of(t) for t in gone} == {0, 5}  # node 0 lost cells 5..8
    assert all("node0_cell" in t for t in gone if discovery.node_of(t) == 0)
    assert discovery.node_of("homeassistant/sensor/garage/soc/config") is None


# ------------------------------------------------------------------ payloads, intervals


def test_unknown_values_are_null_never_nan(view: BatteryView) -> None:
    snap = dataclasses.replace(view.snapshot, voltage=math.nan, min_temp=math.inf)
    payload = payloads.state(dataclasses.replace(view, snapshot=snap), payloads.Energy())
    assert payload["voltage_v"] is None and payload["power_w"] is None
    assert payload["temp_min_c"] is None
    json.loads(payloads.encode(payload))  # strict JSON


def test_state_at_its_interval_and_at_once_on_a_phase_or_alarm_change(
    view: BatteryView,
) -> None:
    publisher = Publisher(TOPICS, state_interval_s=5.0, node_interval_s=30.0, cells=True)
    publisher.restore_energy(None)  # the broker had no earlier state
    t0 = view.time
    other = Phase.FLOAT if view.decision.phase != Phase.FLOAT else Phase.BULK

    def topics(v: BatteryView) -> list[str]:
        return [m.topic for m in publisher.offer(v)]

    first = topics(at(view, t0))
    assert first[0] == TOPICS.state and len(first) == 1 + 4  # the state and four nodes
    assert topics(at(view, t0 + 1)) == []
    assert topics(at(view, t0 + 5)) == [TOPICS.state]
    assert topics(at(view, t0 + 6, phase=other)) == [TOPICS.state]
    assert topics(at(view, t0 + 7, phase=other)) == []
    alarms = {Alarm.CELL_IMBALANCE: Severity.WARNING}
    assert topics(at(view, t0 + 8, phase=other, alarms=alarms)) == [TOPICS.state]
    nodes = [TOPICS.node(n) for n in range(4)]
    assert topics(at(view, t0 + 30, phase=other, alarms=alarms)) == [TOPICS.state, *nodes]
    # The clock goes back an hour (NTP): the topics go on, not silent for an hour.
    back = at(view, t0 + 31 - 3600, phase=other, alarms=alarms)
    assert topics(back) == [TOPICS.state, *nodes]
    assert topics(at(view, t0 + 32 - 3600, phase=other, alarms=alarms)) == []
    event = Event(t0, EventKind.USER, "hello")
    messages = publisher.offer(dataclasses.replace(at(view, t0 + 31), events=(event,)))
    assert messages[0].topic == TOPICS.event and not messages[0].retain


def test_no_state_until_the_earlier_energy_totals_are_known(view: BatteryView) -> None:
    """A state made before the read-back would carry counters from 0 and overwrite the
    retained totals: the newest view's state waits, and goes out when they are restored."""
    publisher = Publisher(TOPICS, state_interval_s=5.0, node_interval_s=30.0, cells=False)
    t0 = view.time
    first = publisher.offer(at(view, t0))
    assert [m.topic for m in first] == [TOPICS.node(n) for n in range(4)]  # nodes, no state
    assert all(m.topic != TOPICS.state for m in publisher.offer(at(view, t0 + 10)))
    messages = publisher.restore_energy(payloads.Energy(812.5, 790.25))
    assert [m.topic for m in messages] == [TOPICS.state]  # the newest view's, waiting
    state = json.loads(messages[0].payload)
    assert state["time"] == pytest.approx(t0 + 10)
    assert (state["energy_charged_kwh"], state["energy_discharged_kwh"]) >= (812.5, 790.25)
    assert publisher.restore_energy(None) == []  # nothing waits any more
    assert [m.topic for m in publisher.offer(at(view, t0 + 15))] == [TOPICS.state]


def test_energy_counts_power_over_time_and_ignores_gaps(view: BatteryView) -> None:
    publisher = Publisher(TOPICS, state_interval_s=5.0, node_interval_s=30.0, cells=False)

    def battery(t: float, volts: float, amps: float) -> BatteryView:
        snap = dataclasses.replace(view.snapshot, voltage=volts, current=amps, valid=True)
        return dataclasses.replace(view, time=t, snapshot=snap, events=())

    publisher.offer(battery(0.0, 50.0, 20.0))  # 1000 W charging
    publisher.offer(battery(3.6, 50.0, 20.0))  # 3.6 s at 1 kW = 1 Wh
    assert publisher.energy.charged_kwh == pytest.approx(0.001)
    publisher.offer(battery(3600.0, 50.0, -20.0))  # a gap: counted as MAX_STEP_S at most
    expected = 0.001 + (1000 - 1000) / 2 * MAX_STEP_S / 3.6e6
    assert publisher.energy.charged_kwh == pytest.approx(expected)
    publisher.offer(battery(3603.6, 50.0, -20.0))
    assert publisher.energy.discharged_kwh == pytest.approx(0.001)
    publisher.offer(battery(3605.0, math.nan, -20.0))  # unknown: nothing counted
    assert publisher.energy.discharged_kwh == pytest.approx(0.001)
    state = payloads.encode(payloads.state(view, publisher.energy))
    restored = energy_from_state(state)
    assert restored is not None
    assert restored.charged_kwh == pytest.approx(publisher.energy.charged_kwh, abs=1e-4)
    assert restored.discharged_kwh == pytest.approx(publisher.energy.discharged_kwh, abs=1e-4)
    assert energy_from_state(b"{}") is None and energy_from_state(b"nonsense") is None


# ------------------------------------------------------------------ the queue


def test_publish_never_blocks_and_drops_the_oldest_events(view: BatteryView) -> None:
    settings = MqttSettings(system_id="garage", queue_size=10, names_file=Path("/nonexistent"))
    output = MqttOutput(settings, {0: 8, 1: 8, 2: 8, 3: 8})
    output.publisher.restore_energy(None)  # read back at an earlier connect, then away
    for i in range(25):
        event = Event(view.time + i, EventKind.USER, f"event {i}")
        output.publish(dataclasses.replace(view, time=view.time + i, events=(event,)))
    assert output.status.dropped == 15 and output.status.queued == 10
    assert json.loads(output._events[0].payload)["message"] == "event 15"
    # Retained topics keep only their newest payload, however long the broker is away.
    state = json.loads(output._retained[TOPICS.state])
    assert state["time"] == pytest.approx(view.time + 20)  # the last one due (5 s interval)
    broken = dataclasses.replace(view, snapshot=None)  # type: ignore[arg-type]
    output.publish(broken)  # a bug in a view must not reach the tick
    assert output.status.publish_errors == 1


# ------------------------------------------------------------------ commands


class Target:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def request_full_charge(self) -> str:
        self.calls.append("full_charge")
        return "ok"

    def request_balancing(self) -> str:
        self.calls.append("balance")
        return "ok"


@pytest.mark.parametrize(
    ("payload", "retained", "why"),
    [
        (b'{"command": "relay", "node": 0, "action": "close"}', False, "relays and limits never"),
        (b'{"command": "set_soc", "soc": 100}', False, "unknown command"),
        (b'{"command": "full_charge", "limit": 3}', False, "unknown keys limit"),
        (b'{"command": "full_charge"}', True, "retained"),
        (b"[1, 2]", False, "JSON object"),
        (b"full_charge", False, "not JSON"),
        (b'{"command": "full_charge", "id": [1]}', False, "id must be"),
        (b" " * 2000, False, "larger than"),
    ],
)
def test_refused_commands(payload: bytes, retained: bool, why: str) -> None:
    with pytest.raises(cmd.CommandError, match=why):
        cmd.parse(payload, retained)


def test_commands_act_only_through_the_target(tmp_path: Path) -> None:
    target, names = Target(), cmd.NameStore(tmp_path / "names.json")
    nodes = frozenset({0, 1})
    for body in (b'{"command": "full_charge"}', b'{"command": "balance", "id": 7}'):
        cmd.execute(cmd.parse(body, False), target, names, nodes)
    assert target.calls == ["full_charge", "balance"]
    named = cmd.parse(b'{"command": "set_name", "name": " Shed ", "node": 1}', False)
    assert cmd.execute(named, target, names, nodes) == "node 1 named 'Shed'"
    for bad in (
        b'{"command": "set_name", "name": ""}',
        b'{"command": "set_name", "name": "x", "node": 4}',
        b'{"command": "set_name", "name": "x", "node": true}',
        b'{"command": "set_name", "name": "a\\nb"}',
    ):
        with pytest.raises(ValueError, match="set_name"):
            cmd.execute(cmd.parse(bad, False), target, names, nodes)
    names.save()
    assert cmd.NameStore(tmp_path / "names.json").nodes == {1: "Shed"}
    (tmp_path / "bad.json").write_text("{not json")
    assert cmd.NameStore(tmp_path / "bad.json").gateway is None  # logged, not fatal


# ------------------------------------------------------------------ settings


def test_broker_url() -> None:
    s = settings_from_url("mqtt://ha:p%40ss@broker.local:1884")
    assert (s.host, s.broker_port, s.username, s.password, s.tls) == (
        "broker.local",
        1884,
        "ha",
        "p@ss",
        None,
    )
    assert settings_from_url("mqtts://broker").broker_port == 8883
    for bad, why in (
        ("http://x", "use mqtt://"),
        ("mqtt://x:99999", "port"),
        ("mqtt://:1883", "no host"),
        ("mqtt://x/topic", "only scheme"),
    ):
        with pytest.raises(ValueError, match=why):
            settings_from_url(bad)


@pytest.mark.parametrize(
    ("mqtt", "key", "why"),
    [
        ({"password": "x"}, "outputs.mqtt", "a password needs a username"),
        ({"system_id": "my gateway"}, "outputs.mqtt.system_id", "letters, digits"),
        ({"prefix": "bms/#"}, "outputs.mqtt.prefix", "must not contain"),
        ({"prefix": "/bms"}, "outputs.mqtt.prefix", "leading or trailing"),
        ({"tls": {"cert_file": "c.pem"}}, "outputs.mqtt.tls", "go together"),
        ({"qos": 2}, "outputs.mqtt.qos", "Input should be"),
        ({"hots": "x"}, "outputs.mqtt.hots", "unknown key"),
    ],
)
def test_config_errors_name_the_key(mqtt: dict[str, object], key: str, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate({"outputs": {"mqtt": mqtt}}, "gw.yaml")
    assert any(p.startswith(f"{key}: ") and why in p for p in info.value.problems), (
        info.value.problems
    )


def test_defaults_and_host_names(tmp_path: Path) -> None:
    assert validate({}).outputs.mqtt is None
    assert validate({"outputs": None}).outputs.mqtt is None
    s = validate({"outputs": {"mqtt": {}}}).outputs.mqtt
    assert s is not None and s.broker_port == 1883 and s.protocol == "5"
    assert host_system_id("Battery-GW.local") == "battery-gw"
    assert host_system_id("ünïcode box") == "n-code-box"
    secret = tmp_path / "pw"
    secret.write_text("hunter2\n")
    with_file = MqttSettings(username="u", password_file=secret)
    assert with_file.read_password() == "hunter2"
    with pytest.raises(ValueError, match="password_file: cannot read"):
        MqttSettings(username="u", password_file=tmp_path / "none").read_password()


def test_sim_refuses_a_bad_broker_url(capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main  # noqa: PLC0415

    assert main(["sim", "--mqtt", "http://broker", "--no-web", "--duration", "1"]) == 2
    assert "--mqtt: 'http://broker': use mqtt://host[:port]" in capsys.readouterr().err


def test_run_refuses_unreadable_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli import main  # noqa: PLC0415

    config = tmp_path / "gw.yaml"
    bus = ["--interface", "virtual", "--channel", "mqtt-check"]
    config.write_text(
        f"outputs:\n  mqtt:\n    username: u\n    password_file: {tmp_path / 'missing'}\n"
    )
    assert main(["run", "--config", str(config), *bus]) == 2
    err = capsys.readouterr().err
    assert "outputs.mqtt.password_file: cannot read" in err and "missing" in err
    config.write_text(f"outputs:\n  mqtt:\n    tls:\n      ca_file: {tmp_path / 'ca.pem'}\n")
    assert main(["run", "--config", str(config), *bus]) == 2
    assert "outputs.mqtt.tls.ca_file: cannot read" in capsys.readouterr().err


def test_the_status_line_says_where_it_publishes_or_why_not() -> None:
    from gateway.outputs.mqtt.client import MqttStatus  # noqa: PLC0415

    status = MqttStatus(broker="127.0.0.1:1883")
    assert status.describe() == "not connected to 127.0.0.1:1883: connecting"
    status.last_error = "not authorised"
    assert "not authorised" in status.describe()
    status.connected, status.sent = True, 12
    assert status.describe().startswith("connected to 127.0.0.1:1883, 12 messages sent")
