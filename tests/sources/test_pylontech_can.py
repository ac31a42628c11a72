"""The Pylontech LV CAN battery source against an independent encoder of V1.2
(tests/sources/pylontech_frames.py), and its link on python-can virtual buses."""

from __future__ import annotations

import anyio
import can
import pytest

from gateway.contracts.frame import Frame
from gateway.contracts.snapshot import ProtectionKind as K
from gateway.runtime.pylontech_link import PylontechCanLink
from gateway.sources.packs.pylontech_can import PylontechCanBattery
from gateway.sources.packs.reading import PackError, PackLimits
from gateway.sources.packs.source import alarm_kinds
from tests.sources.pylontech_frames import BatteryState, frames


def fed(state: BatteryState, offset: int = 0, now: float = 100.0) -> PylontechCanBattery:
    battery = PylontechCanBattery(offset, max_age=5.0)
    for frame_id, data in frames(state, offset):
        battery.on_frame(Frame(frame_id, data), now)
    return battery


def test_a_v12_cycle_reads_as_the_battery_says() -> None:
    r = fed(BatteryState()).reading(100.5)
    assert r.voltage == pytest.approx(51.23)
    assert r.current == pytest.approx(-12.5)
    assert r.temperatures == pytest.approx((24.5,))
    assert r.soc == 60
    assert (r.charge_on, r.discharge_on) == (True, True)
    assert r.alarms == frozenset()
    assert r.cells == () and r.cell_range is None
    assert r.limits == PackLimits(pytest.approx(53.2), pytest.approx(50.0), pytest.approx(100.0))


def test_protection_and_alarm_bits_become_named_alarms_of_the_right_kind() -> None:
    state = BatteryState(protection={"cell_ov", "charge_oc"}, alarms={"low_t"})
    r = fed(state).reading(100.0)
    assert r.alarms == {
        "protection: cell over-voltage",
        "protection: charge over-current",
        "alarm: low temperature",
    }
    assert alarm_kinds(r.alarms) == {
        K.CELL_OVER_VOLTAGE,
        K.CHARGE_OVER_CURRENT,
        K.CHARGE_UNDER_TEMP,
        K.DISCHARGE_UNDER_TEMP,
    }
    r = fed(BatteryState(protection={"system_error"}, alarms={"comm"})).reading(100.0)
    assert alarm_kinds(r.alarms) == {K.INTERNAL, K.COMM_LOSS}


def test_charge_and_discharge_enable_are_the_switches() -> None:
    r = fed(BatteryState(charge_enable=False)).reading(100.0)
    assert (r.charge_on, r.discharge_on) == (False, True)


def test_cell_extremes_when_the_battery_sends_0x373() -> None:
    r = fed(BatteryState(cells_mv=(3301, 3345), cells_k=(296, 300))).reading(100.0)
    assert r.cell_range == pytest.approx((3.301, 3.345))
    assert r.temperatures == pytest.approx((24.5, 296 - 273.15, 300 - 273.15))


def test_missing_or_stale_frames_are_no_reading_and_are_named() -> None:
    battery = PylontechCanBattery(0, max_age=5.0)
    for frame_id, data in frames(BatteryState()):
        if frame_id != 0x359:
            battery.on_frame(Frame(frame_id, data), 100.0)
    with pytest.raises(PackError, match="0x359"):
        battery.reading(100.0)
    battery = fed(BatteryState())
    with pytest.raises(PackError, match="0x351, 0x355, 0x356, 0x359"):
        battery.reading(105.1)  # older than max_age: stale, never the last value


def test_a_cut_frame_is_counted_and_not_used() -> None:
    battery = fed(BatteryState())
    assert battery.on_frame(Frame(0x356, b"\x01\x02\x03"), 101.0)
    assert battery.malformed == 1 and "0x356 has 3 bytes" in battery.last_malformed
    assert battery.reading(101.0).voltage == pytest.approx(51.23)  # the last whole one


def test_a_zero_charge_voltage_is_no_limit() -> None:
    assert fed(BatteryState(cvl=0.0)).reading(100.0).limits is None


def test_id_offset_separates_two_batteries_on_one_bus() -> None:
    a = PylontechCanBattery(0)
    b = PylontechCanBattery(0x20)
    for frame_id, data in frames(BatteryState(voltage=50.0)) + frames(
        BatteryState(voltage=52.0), 0x20
    ):
        a.on_frame(Frame(frame_id, data), 1.0)
        b.on_frame(Frame(frame_id, data), 1.0)
    assert a.reading(1.0).voltage == pytest.approx(50.0)
    assert b.reading(1.0).voltage == pytest.approx(52.0)
    assert b.keepalive().id == 0x325


def test_the_link_reads_its_bus_and_answers_with_the_keepalive() -> None:
    channel = "pylon-link-test"
    battery_side = can.Bus(interface="virtual", channel=channel)
    clock = [0.0]
    link = PylontechCanLink(
        {"interface": "virtual", "channel": channel}, clock=lambda: clock[0], max_age=3.0
    )

    async def main() -> None:
        with pytest.raises(PackError, match="no recent 0x351"):
            await link.read()  # opened now: nothing sent yet
        for frame_id, data in frames(BatteryState(current=5.0)):
            battery_side.send(can.Message(arbitration_id=frame_id, data=data, is_extended_id=False))
        clock[0] = 1.0
        reading = await link.read()
        assert reading.current == pytest.approx(5.0)
        clock[0] = 4.5
        with pytest.raises(PackError, match="no recent"):
            await link.read()  # the battery went silent
        await link.close()

    try:
        anyio.run(main)
        keepalives = []
        while (msg := battery_side.recv(0)) is not None:
            keepalives.append(msg)
        assert [m.arbitration_id for m in keepalives] == [0x305, 0x305, 0x305]
        assert all(len(m.data) == 8 for m in keepalives)
    finally:
        battery_side.shutdown()


def test_a_bus_that_cannot_open_is_an_error_then_retried_with_back_off() -> None:
    opened = []

    def open_bus(**kwargs: object) -> can.BusABC:
        opened.append(kwargs)
        raise can.CanInterfaceNotImplementedError("no such interface")

    clock = [0.0]
    link = PylontechCanLink(
        {"interface": "nowhere", "channel": "x"}, open_bus=open_bus, clock=lambda: clock[0]
    )

    async def main() -> None:
        for t in (0.0, 0.5, 1.0, 2.0, 3.0):
            clock[0] = t
            with pytest.raises(PackError):
                await link.read()

    anyio.run(main)
    assert len(opened) == 3  # at 0, 1 (after 1 s) and 3 (after 2 s more)
