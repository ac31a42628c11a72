"""The Venus OS battery service on a real dbus-daemon, fed by the simulator.

The simulated system (real firmware nodes, real gateway core) runs in this event loop with
the venus output; another D-Bus connection (dbus-fast) and dbus-send read the service as a
GX would. Values are compared with the API's status (gateway/web/views.py). Waits poll a
condition with a bounded timeout, never a fixed sleep; the one timing under test (at most
one signal a second per path) is measured on the wall clock the service uses.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from gateway.outputs.venus.paths import CELL_PREFIX, UNITS, unit_of
from gateway.outputs.venus.service import VenusOutput
from gateway.runtime.outputs import build_outputs
from gateway.sim.power import Constant
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
class Rig:
    daemon: DBusDaemon
    sim: SimSystem
    output: VenusOutput
    settings: FakeSettings
    client: MessageBus
    state_file: Path
    signals: list[tuple[str, str, Any, float]] = field(default_factory=list)

    def step(self, seconds: float) -> None:
        for _ in range(round(seconds / self.sim.step_s)):
            self.sim.step()

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


@pytest.fixture
async def rig(daemon: DBusDaemon, tmp_path: Path) -> AsyncIterator[Rig]:
    # Another battery has the instance asked for: the claim gives the next free one.
    settings = FakeSettings(
        {"/Settings/Devices/other/ClassAndVrmInstance": Variant("s", "battery:100")}
    )
    await settings.start(daemon.address)
    venus = {"bus": daemon.address, "retry_min_s": 0.1, "retry_max_s": 0.4}
    setup = base_setup(
        initial_soc_known=True,
        load=Constant(1500.0),  # discharging: current, power, cells change every step
        gateway={"outputs": {"venus": venus}},
    )
    state_dir = tmp_path / "state"
    sim = SimSystem(setup, seed=3, state_dir=state_dir, bus="memory")
    state_file = state_dir / "state.json"
    sim.outputs.extend(build_outputs(sim.settings, state_file))
    (output,) = sim.outputs
    assert isinstance(output, VenusOutput)
    client = await MessageBus(bus_address=daemon.address).connect()
    r = Rig(daemon, sim, output, settings, client, state_file)
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


async def test_changes_are_signalled_once_a_second_at_most(rig: Rig) -> None:
    received: list[tuple[str, str, Any, float]] = []

    def on_message(msg: Message) -> None:
        if msg.message_type == MessageType.SIGNAL and msg.interface == BUS_ITEM:
            if msg.member == "PropertiesChanged":
                received.append(("one", msg.path, _value(msg.body[0]["Value"]), time.monotonic()))
            elif msg.member == "ItemsChanged":
                for path, change in msg.body[0].items():
                    received.append(("all", path, _value(change["Value"]), time.monotonic()))

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
    await anyio.sleep(1.1)  # whatever was waiting for its second is out
    before = await rig.items()
    received.clear()
    # 2.5 s of wall clock at ten times real time: the current and cells change every step.
    end = time.monotonic() + 2.5
    while time.monotonic() < end:
        rig.step(1.0)
        await anyio.sleep(0.1)
    await rig.settled()
    await anyio.sleep(1.3)  # the last changes' second passes: they are signalled too
    after = await rig.items()

    one = [(p, v, t) for kind, p, v, t in received if kind == "one"]
    assert one, "no PropertiesChanged at all"
    assert sorted((p, v) for p, v, _ in one) == sorted(
        (p, v) for kind, p, v, _ in received if kind == "all"
    ), "ItemsChanged carries the same changes"
    assert not {p for p, _, _ in one} & set(STATIC), "a value that did not change was signalled"
    assert {"/Dc/0/Voltage", "/History/DischargedEnergy"} <= {p for p, _, _ in one}
    for path in before:
        mine = [(v, t) for p, v, t in one if p == path]
        known = before[path][0]
        for value, _ in mine:
            assert value != known, f"{path}: signalled {value!r} without a change"
            known = value
        assert known == after[path][0], f"{path}: the last change was not signalled"
        times = [t for _, t in mine]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(g > 0.8 for g in gaps), f"{path}: signals {gaps} s apart"


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
