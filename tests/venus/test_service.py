"""The Venus OS battery service on a real dbus-daemon, fed by the simulator.

The simulated system (real firmware nodes, real gateway core) runs in this event loop with
the venus output; another D-Bus connection (dbus-fast) and dbus-send read the service as a
GX would. Values are compared with the API's status (gateway/web/views.py). Waits poll a
condition with a bounded timeout, never a fixed sleep. The output's clock is the test's,
moved with the simulator's steps: the one timing under test (at most one signal a second
per path) is measured on it, not on the wall clock.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from gateway.outputs.venus.changes import INTERVAL_S
from gateway.outputs.venus.paths import CELL_PREFIX, UNITS, unit_of
from gateway.outputs.venus.service import VenusOutput
from gateway.runtime.outputs import build_outputs
from gateway.sim.power import Constant, PowerCurve
from gateway.sim.scenarios import base_setup
from gateway.sim.system import SimSystem
from gateway.web.views import status
from tests.venus.daemon import DBUS_SEND, DBusDaemon, needs_dbus
from tests.venus.fake_settings import FakeSettings

pytestmark = [needs_dbus, pytest.mark.anyio]

NAME = "com.victronenergy.battery.moat_bms"
BUS_ITEM = "com.victronenergy.BusItem"
WAIT_S = 10.0
CELLS = 16
# Paths whose value does not change while the battery runs.
STATIC = (
    "/Mgmt/ProcessName",
    "/Mgmt/ProcessVersion",
    "/Mgmt/Connection",
    "/DeviceInstance",
    "/ProductId",
    "/ProductName",
    "/FirmwareVersion",
    "/Connected",
    "/CustomName",
    "/InstalledCapacity",
    "/System/NrOfCellsPerBattery",
)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DBusDaemon]:
    bus = DBusDaemon(tmp_path)
    bus.start()
    yield bus
    bus.stop()


@dataclass
class Clock:
    """The output's monotonic clock, moved by the test: with the simulator's steps, and on
    its own to let time pass while the battery stands still."""

    t: float = 1000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Rig:
    daemon: DBusDaemon
    sim: SimSystem
    output: VenusOutput
    settings: FakeSettings
    client: MessageBus
    state_file: Path
    clock: Clock

    def step(self, seconds: float) -> None:
        """The simulator and the output's clock on by `seconds`."""
        for _ in range(round(seconds / self.sim.step_s)):
            self.sim.step()
            self.clock.t += self.sim.step_s

    async def updated(self) -> None:
        """Until the output has run an update at the clock's time: it renders the newest
        view again (the same items) and signals what is due then."""
        self.output._rendered = None
        await self.settled()

    async def settled(self) -> None:
        """Until the output has rendered the newest view (the sim is not stepping)."""
        out = self.output
        await wait_for(lambda: out._view is not None and out._rendered is out._view)

    async def call(self, path: str, member: str, signature: str = "", body: Any = ()) -> Any:
        reply = await self.client.call(
            Message(
                destination=NAME,
                path=path,
                interface=BUS_ITEM,
                member=member,
                signature=signature,
                body=list(body),
            )
        )
        assert reply is not None
        assert reply.message_type == MessageType.METHOD_RETURN, (path, member, reply.body)
        return reply.body[0]

    async def items(self) -> dict[str, tuple[Any, str]]:
        raw = await self.call("/", "GetItems")
        return {p: (_value(d["Value"]), d["Text"].value) for p, d in raw.items()}


def _value(variant: Variant) -> Any:
    """A value as a GX reads it: an empty array is invalid (None)."""
    if variant.signature.startswith("a") and not variant.value:
        return None
    return variant.value


async def wait_for(condition: Callable[[], bool], timeout: float = WAIT_S) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.02)


STEADY = Constant(1500.0)  # W: discharging, the current flows


@dataclass(frozen=True)
class Battery:
    """What the simulated battery does: the house's load (W at t s) and the simulation step
    (the gateway ticks once a step)."""

    load: PowerCurve = STEADY
    step_s: float = 1.0


@pytest.fixture
def battery() -> Battery:
    return Battery()


def swaying_load(t: float) -> float:
    """The house's power swaying about 1.5 kW: with ten steps a second, the current and the
    power change at every tick, ten times within each second."""
    return 1500.0 + 400.0 * math.sin(2.3 * t)


@pytest.fixture
async def rig(daemon: DBusDaemon, battery: Battery, tmp_path: Path) -> AsyncIterator[Rig]:
    # Another battery has the instance asked for: the claim gives the next free one.
    settings = FakeSettings(
        {"/Settings/Devices/other/ClassAndVrmInstance": Variant("s", "battery:100")}
    )
    await settings.start(daemon.address)
    venus = {"bus": daemon.address, "retry_min_s": 0.1, "retry_max_s": 0.4}
    setup = base_setup(
        step_s=battery.step_s,
        initial_soc_known=True,
        load=battery.load,
        gateway={"outputs": {"venus": venus}},
    )
    state_dir = tmp_path / "state"
    sim = SimSystem(setup, seed=3, state_dir=state_dir, bus="memory")
    state_file = state_dir / "state.json"
    clock = Clock()
    sim.outputs.extend(build_outputs(sim.settings, state_file, clock=clock))
    (output,) = sim.outputs
    assert isinstance(output, VenusOutput)
    client = await MessageBus(bus_address=daemon.address).connect()
    r = Rig(daemon, sim, output, settings, client, state_file, clock)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(output.run)
            r.step(60.0)  # nodes report, relays close, the current flows
            await wait_for(lambda: output.registered)
            yield r
            tg.cancel_scope.cancel()
    finally:
        client.disconnect()
        settings.stop()
        sim.close()


def expected_paths() -> set[str]:
    return set(UNITS) | {f"{CELL_PREFIX}{n}" for n in range(1, CELLS + 1)}


async def test_every_path_is_served_with_the_status_values(rig: Rig) -> None:
    await rig.settled()
    items = await rig.items()
    assert set(items) == expected_paths()
    now = rig.sim.now()
    st = status(rig.sim.core, now)  # type: ignore[arg-type]
    values = {p: v for p, (v, _) in items.items()}

    # The same numbers as the API, rounded the same way.
    assert values["/Dc/0/Voltage"] == st["voltage"]
    assert values["/Dc/0/Current"] == st["current"]
    assert values["/Dc/0/Current"] < 0  # discharging
    assert values["/Dc/0/Power"] == st["power_w"]
    assert values["/Soc"] == st["soc"]
    assert values["/Soh"] == st["soh"]
    assert values["/System/MinCellVoltage"] == st["cells"]["min"]
    assert values["/System/MaxCellVoltage"] == st["cells"]["max"]
    assert values["/Voltages/Diff"] == pytest.approx(st["cells"]["spread"], abs=0.0011)
    at = st["cells"]["min_at"]
    assert values["/System/MinVoltageCellId"] == f"N{at['node']}C{at['cell']}"
    assert values["/System/MinCellTemperature"] == st["temperature"]["min"]
    assert values["/System/MaxCellTemperature"] == st["temperature"]["max"]
    assert values["/Dc/0/Temperature"] == st["temperature"]["max"]
    decided = st["limits"]["decided"]
    assert values["/Info/MaxChargeVoltage"] == pytest.approx(decided["cvl"], abs=0.006)
    assert values["/Info/MaxChargeCurrent"] == pytest.approx(decided["ccl"], abs=0.06)
    assert values["/Info/MaxDischargeCurrent"] == pytest.approx(decided["dcl"], abs=0.06)
    assert values["/Io/AllowToCharge"] == int(decided["charge_enable"])
    assert values["/Io/AllowToDischarge"] == int(decided["discharge_enable"])
    assert values["/InstalledCapacity"] == 100.0
    assert values["/Capacity"] == pytest.approx(st["soc"] * st["soh"] / 100, abs=0.11)
    assert values["/System/NrOfCellsPerBattery"] == CELLS
    assert values["/System/NrOfModulesOnline"] == st["strings_online"]
    cells = [values[f"{CELL_PREFIX}{n}"] for n in range(1, CELLS + 1)]
    assert min(cells) == st["cells"]["min"]
    assert max(cells) == st["cells"]["max"]
    assert values["/Voltages/Sum"] == pytest.approx(sum(cells), abs=0.006)
    assert all(values[f"/Alarms/{a}"] == 0 for a in ("LowVoltage", "HighCellVoltage", "BmsCable"))
    assert values["/TimeToGo"] > 0
    assert values["/Connected"] == 1
    assert values["/ProductName"] == "moat-bms"
    # The instance another battery had is not taken: the settings service gave the next.
    assert values["/DeviceInstance"] == 101
    claim = "/Settings/Devices/moat_bms/ClassAndVrmInstance"
    assert rig.settings.calls == [claim]
    assert rig.settings.values[claim].value == "battery:101"

    # Every path answers GetValue and GetText on its own object, with its unit in the text.
    for path, (value, text) in items.items():
        assert _value(await rig.call(path, "GetValue")) == value, path
        assert await rig.call(path, "GetText") == text, path
        unit = unit_of(path)
        if value is None:
            assert text == "---", path
        elif isinstance(value, float):
            assert text == f"{value:.{unit.digits}f}{unit.symbol}", path
    # A parent answers with its subtree.
    dc = await rig.call("/Dc/0", "GetValue")
    assert dc.value["Voltage"].value == values["/Dc/0/Voltage"]

    # dbus-send, as a person on the GX would check it.
    result = await anyio.run_process(
        [
            str(DBUS_SEND),
            f"--bus={rig.daemon.address}",
            "--print-reply",
            f"--dest={NAME}",
            "/Dc/0/Voltage",
            f"{BUS_ITEM}.GetValue",
        ]
    )
    match = re.search(r"variant\s+double\s+([0-9.]+)", result.stdout.decode())
    assert match is not None, result.stdout
    assert float(match.group(1)) == st["voltage"]


# The gateway's ten ticks a second, under a load that moves the current at every one.
@pytest.mark.parametrize("battery", [Battery(swaying_load, step_s=0.1)])
async def test_changes_are_signalled_once_a_second_at_most(rig: Rig) -> None:
    # Every signal with the output's clock when it arrived. Each update below is followed
    # by a GetItems: its reply leaves the service after the update's signals, so they have
    # all arrived by then, stamped with the time of the update that sent them.
    signals: list[tuple[str, str, Any, float]] = []  # (kind, path, value, clock)

    def on_message(msg: Message) -> None:
        if msg.message_type == MessageType.SIGNAL and msg.interface == BUS_ITEM:
            if msg.member == "PropertiesChanged":
                signals.append(("one", msg.path, _value(msg.body[0]["Value"]), rig.clock()))
            elif msg.member == "ItemsChanged":
                for path, change in msg.body[0].items():
                    signals.append(("all", path, _value(change["Value"]), rig.clock()))

    rig.client.add_message_handler(on_message)
    match = f"type='signal',sender='{NAME}',interface='{BUS_ITEM}'"
    await rig.client.call(
        Message(
            destination="org.freedesktop.DBus",
            path="/org/freedesktop/DBus",
            interface="org.freedesktop.DBus",
            member="AddMatch",
            signature="s",
            body=[match],
        )
    )
    await rig.settled()
    # A second with the battery standing still: whatever waited for its second goes out,
    # and a reader knows every value.
    rig.clock.t += INTERVAL_S
    await rig.updated()
    items = await rig.items()
    known = {path: value for path, (value, _) in items.items()}  # what a reader has
    last = {path: t for kind, path, _, t in signals if kind == "one" and t == rig.clock()}
    seen = len(signals)
    changed: dict[str, int] = dict.fromkeys(known, 0)  # steps that changed a path's value
    sent: dict[str, int] = dict.fromkeys(known, 0)  # and its signals

    def check(items: dict[str, tuple[Any, str]]) -> None:
        """The signals of the update at the clock's time against the items then."""
        nonlocal seen
        now = rig.clock()
        batch = signals[seen:]
        seen = len(signals)
        assert all(t == now for *_, t in batch), "a signal arrived after its update's reply"
        one = [(path, value) for kind, path, value, _ in batch if kind == "one"]
        assert sorted(one) == sorted((p, v) for kind, p, v, _ in batch if kind == "all"), (
            "ItemsChanged carries the update's changes"
        )
        assert len({path for path, _ in one}) == len(one), f"a path signalled twice: {one}"
        for path, value in one:
            assert value == items[path][0], f"{path}: signalled {value!r}, not the newest"
            assert value != known[path], f"{path}: signalled {value!r} without a change"
            if path in last:
                gap = now - last[path]
                assert gap >= INTERVAL_S, f"{path}: signalled again after {gap:.1f} s"
            known[path], last[path] = value, now
            sent[path] += 1
        for path, (value, _) in items.items():
            # A change not signalled is held for the rest of its path's second, no longer.
            if value != known[path]:
                held = now - last.get(path, -math.inf)
                assert held < INTERVAL_S, f"{path}: {value!r} not signalled after {held:.1f} s"

    # Three seconds of the battery in steps: the current and the cells change every step.
    for _ in range(30):
        before = items
        rig.step(rig.sim.step_s)
        await rig.settled()
        items = await rig.items()
        for path, (value, _) in items.items():
            changed[path] += value != before[path][0]
        check(items)
    # The battery stands still (no new view) while a second passes: the last changes go out
    # then, with nothing lost.
    held = {path for path, (value, _) in items.items() if value != known[path]}
    assert "/Dc/0/Power" in held, held  # changed after its last signal
    rig.clock.t += INTERVAL_S
    await wait_for(lambda: held <= {path for kind, path, *_ in signals[seen:] if kind == "one"})
    items = await rig.items()
    check(items)
    assert known == {path: value for path, (value, _) in items.items()}

    signalled = {path for path, n in sent.items() if n}
    assert {"/Dc/0/Voltage", "/History/DischargedEnergy"} <= signalled
    assert not signalled & set(STATIC), "a value that did not change was signalled"
    # A current that moves every step is signalled once a second, not ten times.
    assert changed["/Dc/0/Current"] >= 25, changed
    assert sent["/Dc/0/Current"] <= 4, sent


async def test_custom_name_is_set_on_the_bus_and_kept(rig: Rig) -> None:
    await rig.settled()
    ok = await rig.call("/CustomName", "SetValue", "v", [Variant("s", "Garage battery")])
    assert ok == 0
    assert await rig.call("/CustomName", "GetValue") == Variant("s", "Garage battery")
    saved = json.loads(rig.state_file.with_name("state.venus.json").read_text())
    assert saved["state"]["custom_name"] == "Garage battery"
    # Read-only paths and wrong types are refused, as vedbus.py refuses them.
    assert await rig.call("/Soc", "SetValue", "v", [Variant("d", 10.0)]) == 1
    assert await rig.call("/CustomName", "SetValue", "v", [Variant("i", 3)]) == 2
    # A restarted gateway has the name.
    again = build_outputs(rig.sim.settings, rig.state_file)[0]
    assert isinstance(again, VenusOutput)
    assert again.custom_name == "Garage battery"


async def test_device_instance_set_on_the_gx_is_taken(rig: Rig) -> None:
    await rig.settled()
    assert await rig.call("/DeviceInstance", "GetValue") == Variant("i", 101)
    setting = "/Settings/Devices/moat_bms/ClassAndVrmInstance"
    reply = await rig.client.call(
        Message(
            destination="com.victronenergy.settings",
            path=setting,
            interface=BUS_ITEM,
            member="SetValue",
            signature="v",
            body=[Variant("s", "battery:7")],
        )
    )
    assert reply is not None and reply.body == [0]
    await wait_for(lambda: rig.output.device_instance == 7)
    await rig.settled()
    assert await rig.call("/DeviceInstance", "GetValue") == Variant("i", 7)


async def test_service_comes_back_when_the_bus_restarts(rig: Rig) -> None:
    await rig.settled()
    rig.client.disconnect()
    rig.settings.stop()
    rig.daemon.stop()
    await wait_for(lambda: not rig.output.registered)
    await wait_for(lambda: "retrying" in rig.output.status)
    rig.step(1.0)  # the gateway ticks on while the bus is gone
    rig.daemon.start()  # this time without com.victronenergy.settings
    await wait_for(lambda: rig.output.registered)
    rig.client = await MessageBus(bus_address=rig.daemon.address).connect()
    await rig.settled()
    items = await rig.items()
    assert set(items) == expected_paths()
    assert items["/DeviceInstance"][0] == 100  # the configured one: no settings service
    assert math.isfinite(items["/Dc/0/Voltage"][0])
    assert "registered" in rig.output.status
