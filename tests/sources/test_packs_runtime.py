"""`moat-bms run` with two Pylontech LV CAN batteries in parallel, each on a python-can
virtual bus of its own, and the inverter on a third: the pack tasks poll them, the gateway
makes one battery of them. The batteries are played by the independent V1.2 encoder
(tests/sources/pylontech_frames.py). Waits poll for a condition with a deadline; nothing
asserts on timing."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import can
import pytest

from gateway.codec import pylontech_lv as codec
from gateway.config.root import validate
from gateway.contracts.snapshot import NodeState
from gateway.record.events import EventKind
from gateway.runtime.packlink import PROTOCOLS
from gateway.runtime.packs import PackPoller, default_links, pylontech_link
from gateway.runtime.service import Gateway
from gateway.sources.packs.reading import PackError
from gateway.sources.packs.settings import CAN_SOURCES, SERIAL_SOURCES, PackSettings
from tests.sources.pylontech_frames import BatteryState, frames

DEADLINE_S = 30.0


def config(tmp_path: Path, tag: str) -> dict[str, object]:
    def pack(name: str) -> dict[str, object]:
        return {
            "source": "pylontech-can",
            "bus": {"interface": "virtual", "channel": f"{tag}-{name}"},
            "poll_s": 0.2,
            "timeout_s": 1.0,
        }

    return {
        "battery": {
            "topology": {"strings": [[0], [1]], "cells_per_node": 15, "capacity_ah": 50},
            "packs": {0: pack("a"), 1: pack("b")},
        },
        "buses": {
            "battery": {"interface": "virtual", "channel": f"{tag}-nodes"},
            "inverter": {"interface": "virtual", "channel": f"{tag}-inverter"},
        },
        "strategy": {"limits": {"hold_s": 0.0, "ramp_a_per_s": 50.0}},
        "persistence": {"state_file": str(tmp_path / "state.json")},
        "web": {"enabled": False},
    }


@pytest.mark.anyio
async def test_run_makes_one_battery_of_two_pylontech_batteries_and_stops_a_silent_one(
    tmp_path: Path,
) -> None:
    tag = f"packs-{os.getpid()}"
    gateway = Gateway(validate(config(tmp_path, tag)))
    a_bus = can.Bus(interface="virtual", channel=f"{tag}-a")
    b_bus = can.Bus(interface="virtual", channel=f"{tag}-b")
    inverter = can.Bus(interface="virtual", channel=f"{tag}-inverter")
    batteries = {"a": BatteryState(ccl=20.0), "b": BatteryState(ccl=20.0)}
    sending = {"a": True, "b": True}
    keepalives = {"a": 0, "b": 0}
    ccl: list[float] = []
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(gateway.run)

            async def play() -> None:
                while True:
                    for name, bus in (("a", a_bus), ("b", b_bus)):
                        if sending[name]:
                            for frame_id, data in frames(batteries[name]):
                                msg = can.Message(
                                    arbitration_id=frame_id, data=data, is_extended_id=False
                                )
                                bus.send(msg)
                        while (msg := bus.recv(0)) is not None:
                            keepalives[name] += msg.arbitration_id == 0x305
                    while (msg := inverter.recv(0)) is not None:
                        if msg.arbitration_id == 0x351:
                            limits = codec.decode_battery_limits(bytes(msg.data))
                            ccl.append(limits.charge_current_limit)
                    await anyio.sleep(0.1)

            tg.start_soon(play)

            core = gateway.core
            with anyio.fail_after(DEADLINE_S):
                while not (core.snapshot.strings_online == 2 and ccl and ccl[-1] >= 39.9):
                    await anyio.sleep(0.05)
            assert ccl[-1] == pytest.approx(40.0)  # 2 x the batteries' own 20 A
            assert min(keepalives.values()) > 0  # each battery is answered
            assert core.snapshot.cells_unreported

            sending["b"] = False  # battery b's cable is cut
            with anyio.fail_after(DEADLINE_S):
                while not (core.snapshot.strings[1].blocked and ccl[-1] <= 20.1):
                    await anyio.sleep(0.05)
            assert core.snapshot.strings[1].reason == "node 1 missing"

            # Battery a cuts off on a cell under-voltage.
            batteries["a"] = BatteryState(
                protection={"cell_uv"}, charge_enable=False, discharge_enable=False
            )
            with anyio.fail_after(DEADLINE_S):
                while core.snapshot.nodes[0].state != NodeState.TRIPPED:
                    await anyio.sleep(0.05)
            tripped = [e for e in core.events.since(0) if e.kind == EventKind.NODE_TRIPPED]
            assert [e.node for e in tripped] == [0]
            assert "CellUnderVoltage" in tripped[0].message
            tg.cancel_scope.cancel()
    finally:
        for bus in (a_bus, b_bus, inverter):
            bus.shutdown()
    assert gateway.packs is not None and gateway.packs.errors > 0  # b's silence was seen


def test_a_source_without_a_link_here_is_refused_naming_the_pack(tmp_path: Path) -> None:
    data = config(tmp_path, "nolink")
    data["battery"]["packs"][1] = {"source": "jbd", "port": "/dev/ttyUSB9"}  # type: ignore[index]
    settings = validate(data)
    with pytest.raises(ValueError, match=r"battery.packs.1 \(jbd\)"):
        PackPoller(settings.battery.packs, {"pylontech-can": pylontech_link()}, print, float)


def test_default_links_are_every_source_the_config_accepts() -> None:
    assert set(default_links()) == {*SERIAL_SOURCES, *CAN_SOURCES}


def test_the_config_and_the_serial_runtime_name_the_protocols_alike() -> None:
    assert set(PROTOCOLS) == set(SERIAL_SOURCES)
    links = default_links()
    for source in SERIAL_SOURCES:
        link = links[source](PackSettings(source=source, port="/dev/ttyUSB9"))
        assert link.name == f"{source} /dev/ttyUSB9"


@pytest.mark.anyio
async def test_a_link_that_hangs_is_a_timeout_error_delivered_with_the_clock() -> None:
    class Hanging:
        name = "hanging link"
        can_switch = True

        async def read(self):  # type: ignore[no-untyped-def]
            await anyio.sleep_forever()

        async def switch(self, charge: bool, discharge: bool) -> None:
            raise PackError("refused")

        async def close(self) -> None:
            pass

    settings = validate(
        {
            "battery": {
                "topology": {"strings": [[0]]},
                "packs": {
                    0: {"source": "jbd", "port": "/dev/ttyUSB0", "timeout_s": 0.5, "poll_s": 0.2}
                },
            }
        }
    )
    got = []
    poller = PackPoller(
        settings.battery.packs,
        {"jbd": lambda cfg: Hanging()},
        lambda pack, result, now: got.append((pack, result, now)),
        lambda: 42.0,
    )
    await poller.poll_once(0)
    [(pack, result, now)] = got
    assert pack == 0 and now == 42.0
    assert isinstance(result, PackError) and "no answer within 0.5 s" in str(result)
